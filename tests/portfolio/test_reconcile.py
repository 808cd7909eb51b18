"""Every page reconciles: on one generated portfolio (tokens, a stale and an unpriced token, spam, an NFT, a
lending position with debt, and a Bitcoin address also reached through an xpub wallet) the holdings page,
the API, the CSV, the dashboard and /summary show the net worth computed independently in the test."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import timezone

from portfolio.models import Asset, Chain, Holding, NftItem, Position, PositionLeg, PricePoint, Wallet, WalletChain
from portfolio.services.prices import NFT_NOT_VALUED, PRICED, SPAM, UNPRICED, latest_prices, price_status

pytestmark = pytest.mark.django_db
API = "/api/v1"
BTC_ADDRESS = "bcrt1qexampleaddressalsoderivedbyxpub0000"


def price(asset, usd, *, source="manual", age=timedelta(minutes=1)):
    PricePoint.objects.create(asset=asset, price=D(usd), currency="USD", source=source, at=timezone.now() - age)


def wallet_on(owner, chain, address, *, label, kind=Wallet.ADDRESS, cursors=None):
    wallet = Wallet.objects.create(owner=owner, family=chain.family, kind=kind, address=address, label=label)
    wc = WalletChain.objects.create(wallet=wallet, chain=chain, status=WalletChain.OK, last_ok_at=timezone.now(),
                                    height=100, cursors=cursors or {})
    return wallet, wc


def token(chain, symbol, n, **kw):
    return Asset.objects.create(chain=chain, kind=kw.pop("kind", Asset.FUNGIBLE), address=f"0x{n:040x}", symbol=symbol,
                                decimals=kw.pop("decimals", 6), **kw)


@pytest.fixture
def world(owner):
    """The portfolio and, computed by hand, what it is worth."""
    evm = Chain.objects.filter(family="evm").order_by("pk").first()
    btc_chain = Chain.objects.filter(family="bitcoin").order_by("pk").first()
    eth, _ = Asset.objects.update_or_create(chain=evm, address="", defaults={"kind": Asset.NATIVE, "symbol": "ETH", "decimals": 18})
    btc, _ = Asset.objects.update_or_create(chain=btc_chain, address="", defaults={"kind": Asset.NATIVE, "symbol": "BTC", "decimals": 8})
    usdc = token(evm, "USDC", 1)
    old = token(evm, "OLD", 2)  # a coingecko price from two days ago: stale, so unpriced
    nope = token(evm, "NOPE", 3)  # no price at all
    spam = token(evm, "FREE", 4, is_spam=True, decimals=0)
    apes = token(evm, "APE", 5, kind=Asset.NFT_COLLECTION, decimals=0)
    price(eth, "1500")
    price(usdc, "1")
    price(old, "7", source="coingecko", age=timedelta(days=2))
    price(spam, "5")
    price(btc, "40000")

    hot, hot_wc = wallet_on(owner, evm, "0x" + "11" * 20, label="hot")
    Holding.objects.create(wallet_chain=hot_wc, asset=eth, amount=2 * 10**18, height=100)
    Holding.objects.create(wallet_chain=hot_wc, asset=usdc, amount=100_500_000, height=100)
    Holding.objects.create(wallet_chain=hot_wc, asset=old, amount=10 * 10**6, height=100)
    Holding.objects.create(wallet_chain=hot_wc, asset=nope, amount=3 * 10**6, height=100)
    Holding.objects.create(wallet_chain=hot_wc, asset=spam, amount=1000, height=100)
    NftItem.objects.create(wallet_chain=hot_wc, collection=apes, token_id="7")
    lending = Position.objects.create(wallet_chain=hot_wc, protocol="aave-v3", kind="lending", ref="0xpool")
    PositionLeg.objects.create(position=lending, asset=eth, amount=10**18, role="supplied")
    PositionLeg.objects.create(position=lending, asset=usdc, amount=200 * 10**6, role="borrowed")

    cursor = {"v": 1, "receive": {"addresses": [BTC_ADDRESS]}, "change": {"addresses": []}}
    _, xpub_wc = wallet_on(owner, btc_chain, "tpubD6NzVbkrYhZ4Xexample", label="cold xpub", kind=Wallet.EXTENDED_KEY,
                           cursors=cursor)
    single, single_wc = wallet_on(owner, btc_chain, BTC_ADDRESS, label="one address")
    Holding.objects.create(wallet_chain=xpub_wc, asset=btc, amount=50_000_000, height=100)
    Holding.objects.create(wallet_chain=single_wc, asset=btc, amount=10_000_000, height=100)  # inside the xpub's 0.5

    # 2 ETH * 1500 + 100.5 USDC + (1 ETH * 1500 - 200 USDC) + 0.5 BTC * 40000; OLD, NOPE, FREE and APE add nothing.
    net_worth = D(3000) + D("100.5") + (D(1500) - D(200)) + D(20000)
    return {"net_worth": net_worth, "holdings": D(3000) + D("100.5") + D(20000), "positions": D(1300), "unpriced": 2,
            "nfts": 1, "btc": btc, "single": single, "assets": {"old": old, "nope": nope, "spam": spam, "apes": apes, "eth": eth}}


def money_in(html: str, testid: str) -> D:
    match = re.search(rf'data-testid="{testid}">\$([0-9,]+\.[0-9]{{2}})', html)
    assert match, f"no {testid} on the page"
    return D(match.group(1).replace(",", ""))


def test_the_holdings_page_api_and_csv_show_the_same_net_worth(owner_client, world):
    page = owner_client.get(reverse("holdings")).content.decode()
    assert money_in(page, "holdings-net-worth") == world["net_worth"]
    assert money_in(page, "holdings-value") == world["holdings"]
    assert money_in(page, "positions-value") == world["positions"]
    assert 'data-testid="holdings-unpriced">2 unpriced' in page and "1 NFT not valued" in page

    body = owner_client.get(f"{API}/holdings?currency=USD").json()
    assert D(body["net_worth"]) == world["net_worth"] and D(body["positions_value"]) == world["positions"]
    assert (body["unpriced_count"], body["nfts_not_valued"]) == (world["unpriced"], world["nfts"])
    assert D(body["holdings_value"]) == sum(D(i["value"]) for i in body["items"] if i["value"] is not None)

    rows = list(csv.DictReader(io.StringIO(owner_client.get(reverse("holdings_csv")).content.decode())))
    assert sum(D(r["value_USD"]) for r in rows if r["value_USD"]) == world["net_worth"]
    shares = [r["share_pct"] for r in rows if r["share_pct"]]
    assert all(re.fullmatch(r"-?\d+\.\d{2}", s) for s in shares) and abs(sum(D(s) for s in shares) - 100) <= D("0.05")


def test_an_account_reached_through_two_wallets_counts_once_but_shows_in_both(owner_client, world):
    body = owner_client.get(f"{API}/holdings?currency=USD&include=wallets").json()
    [btc] = [i for i in body["items"] if i["symbol"] == "BTC"]
    assert btc["amount"] == "0.5" and btc["value"] == "20000"
    parts = {p["wallet"]: p for p in btc["wallets"]}
    assert parts["one address"]["amount"] == "0.1" and parts["one address"]["also_in"] is not None
    fragment = owner_client.get(reverse("holding_wallets", args=[world["btc"].pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "also in cold xpub" in fragment
    # The single address alone (its own scope) still shows what it holds.
    alone = owner_client.get(reverse("holdings") + f"?wallet={world['single'].pk}").content.decode()
    assert money_in(alone, "holdings-net-worth") == D(4000)


def test_one_definition_of_unpriced(world):
    a = world["assets"]
    prices = latest_prices([x.pk for x in a.values()])
    assert price_status(a["old"].kind, a["old"].is_spam, prices.get(a["old"].pk)) == UNPRICED  # stale
    assert price_status(a["nope"].kind, a["nope"].is_spam, prices.get(a["nope"].pk)) == UNPRICED
    assert price_status(a["spam"].kind, a["spam"].is_spam, prices.get(a["spam"].pk)) == SPAM  # priced, still out
    assert price_status(a["apes"].kind, a["apes"].is_spam, None) == NFT_NOT_VALUED
    assert price_status(a["eth"].kind, a["eth"].is_spam, prices.get(a["eth"].pk)) == PRICED


def test_the_dashboard_shows_the_same_net_worth_once_its_series_is_built(owner_client, world):
    from portfolio.services.snapshots import do_snapshot

    do_snapshot()
    dashboard = owner_client.get(reverse("dashboard")).content.decode()
    assert money_in(dashboard, "net-worth") == world["net_worth"]
    summary = owner_client.get(f"{API}/summary?currency=USD").json()
    assert D(summary["net_worth"]) == world["net_worth"] and summary["unpriced_count"] == world["unpriced"]


# --------------------------------------------------------------------------- random portfolios

from hypothesis import HealthCheck, Phase, given, settings as hsettings, strategies as st  # noqa: E402

HOLDING = st.tuples(st.integers(0, 3), st.integers(0, 10**24), st.sampled_from(["fresh", "stale", "none", "spam"]))
LOAN = st.tuples(st.integers(0, 10**20), st.integers(0, 10**9))  # ETH supplied (wei), USDC borrowed (base units)


@hsettings(max_examples=10, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(holdings=st.lists(st.tuples(st.integers(0, 2), HOLDING), max_size=8), loans=st.lists(st.tuples(st.integers(0, 2), LOAN), max_size=2),
       eth_price=st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2))
def test_every_page_and_endpoint_agrees_with_an_independent_sum(owner, owner_client, holdings, loans, eth_price):
    """A random mix of wallets, tokens (fresh, stale, unpriced, spam), huge amounts and loans: the holdings
    page, the API, the CSV, the wallets' values and the dashboard after a snapshot all show the sum the
    test computes."""
    from portfolio.services.snapshots import do_snapshot

    Wallet.objects.filter(owner=owner).delete()
    Asset.objects.filter(address__startswith="0x00000000000000000000000000000000000000f").delete()
    evm = Chain.objects.filter(family="evm").order_by("pk").first()
    eth, _ = Asset.objects.update_or_create(chain=evm, address="", defaults={"kind": Asset.NATIVE, "symbol": "ETH", "decimals": 18})
    PricePoint.objects.filter(asset=eth).delete()
    price(eth, eth_price)
    usdc = token(evm, "USDC", 0xF0, decimals=6)
    price(usdc, "1")
    tokens = []
    for i, kind in enumerate(["fresh", "stale", "none", "spam"]):
        t = token(evm, f"T{i}", 0xF1 + i, decimals=18, is_spam=kind == "spam")
        if kind in ("fresh", "spam"):
            price(t, "0.25")
        elif kind == "stale":
            price(t, "9", source="coingecko", age=timedelta(days=3))
        tokens.append((t, kind))
    wallets = [wallet_on(owner, evm, f"0x{0xA0 + w:040x}", label=f"w{w}")[1] for w in range(3)]
    expected = D(0)
    amounts: dict[tuple[int, int], int] = {}
    for w, (t, amount, _kind) in holdings:
        amounts[(w, t)] = amounts.get((w, t), 0) + amount
    for (w, t), amount in amounts.items():
        asset, kind = tokens[t]
        Holding.objects.create(wallet_chain=wallets[w], asset=asset, amount=amount, height=100)
        if kind == "fresh":
            expected += D(amount) / 10**18 * D("0.25")
    for n, (w, (supplied, borrowed)) in enumerate(loans):
        p = Position.objects.create(wallet_chain=wallets[w], protocol="aave-v3", kind="lending", ref=f"0xpool{n}")
        PositionLeg.objects.create(position=p, asset=eth, amount=supplied, role="supplied")
        PositionLeg.objects.create(position=p, asset=usdc, amount=borrowed, role="borrowed")
        expected += D(supplied) / 10**18 * eth_price - D(borrowed) / 10**6

    cents = expected.quantize(D("0.01"))
    page = owner_client.get(reverse("holdings")).content.decode()
    if cents >= D("0.01"):  # the page writes "< $0.01" and "-$…" otherwise
        assert money_in(page, "holdings-net-worth") == cents
    body = owner_client.get(f"{API}/holdings?currency=USD").json()
    assert D(body["net_worth"]) == expected
    rows = list(csv.DictReader(io.StringIO(owner_client.get(reverse("holdings_csv")).content.decode())))
    assert abs(sum(D(r["value_USD"]) for r in rows if r["value_USD"]) - expected) <= D("0.01") * (len(rows) + 1)
    per_wallet = owner_client.get(f"{API}/wallets?limit=100").json()["items"]  # the wallets list's values
    assert sum(D(w["value"]) for w in per_wallet) == expected
    do_snapshot()
    summary = owner_client.get(f"{API}/summary?currency=USD").json()
    # Snapshots store each point's value to 18 decimal places: their sum may differ past the 16th.
    assert abs(D(summary["net_worth"]) - expected) < D("1e-16")
