"""The lists of wallets and portfolios read kept values (portfolio/pair_values.py) and each portfolio's
kept freshness (portfolio/freshness.py): a second view reads no holding and counts no WalletChain, and
what they show is what each wallet's holdings API and the wallets API show, after syncs that change
holdings, new prices, a price turning stale, an edited asset and membership changes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portfolio import pair_values
from portfolio.models import Asset, PairValueCache, PairValueChange, Portfolio, PricePoint, Wallet, WalletChain
from portfolio.services.prices import stale_after
from portfolio.services.wallets import do_delete_wallet
from tests.portfolio.test_sync_writes import _reload, _result, _sync, _token, _wallet_chains
from tests.portfolio.test_wallet_pages import queries_of

pytestmark = pytest.mark.django_db
API = "/api/v1"


def price(address: str, usd: str, *, source: str = "manual", age: timedelta = timedelta(minutes=1)) -> None:
    for asset in Asset.objects.filter(address=address.lower()):
        PricePoint.objects.create(asset=asset, price=D(usd), currency="USD", source=source, at=timezone.now() - age)


def listed(client) -> dict[int, D]:
    """Each wallet's value as the wallets API lists it (the wallets page's own figures)."""
    return {w["id"]: D(w["value"]) for w in client.get(f"{API}/wallets?limit=100").json()["items"]}


def on_their_own(client, wallet_ids) -> dict[int, D]:
    """Each wallet's net worth read from its own holdings (the holdings API narrowed to the wallet)."""
    return {w: D(client.get(f"{API}/holdings?wallet_id={w}&currency=USD").json()["net_worth"]) for w in wallet_ids}


def reads(client, url: str, table: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return sum(f'"{table}"' in q["sql"] or f" {table} " in q["sql"] for q in ctx.captured_queries)


def freshness_counts(client, url: str) -> int:
    """The page's queries counting WalletChains for freshness (their oldest good read)."""
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return sum('MIN("portfolio_walletchain"."last_ok_at")' in q["sql"] for q in ctx.captured_queries)


@pytest.fixture
def synced(owner):
    """Three synced EVM wallets with ETH and three tokens, two of them priced; a portfolio of two."""
    wcs = _wallet_chains(owner, 3)
    _sync(wcs, _result(wcs, 3, 10))
    price("", "2000")
    price(_token(0).address, "1.5")
    price(_token(1).address, "0.25")
    Portfolio.objects.create(owner=owner, name="two").wallets.set([wc.wallet for wc in wcs[:2]])
    return _reload(wcs)


def assert_lists_agree(client, owner) -> None:
    ids = sorted(Wallet.objects.filter(owner=owner).values_list("pk", flat=True))
    assert listed(client) == on_their_own(client, ids)
    net_worth = D(client.get(f"{API}/holdings?currency=USD").json()["net_worth"])
    for p in Portfolio.objects.filter(owner=owner):
        expected = D(client.get(f"{API}/holdings?portfolio_id={p.pk}&currency=USD").json()["net_worth"])
        page = client.get(reverse("portfolios")).content.decode()
        assert f'data-testid="portfolio-value">${expected:,.2f}' in page
    assert f'data-testid="wallets-total">${net_worth:,.2f}' in client.get(reverse("wallets")).content.decode()


def test_a_second_view_of_the_lists_reads_no_holding_and_counts_no_portfolio_wallet_chain(owner_client, owner, synced):
    for url in (reverse("wallets"), reverse("portfolios"), f"{API}/wallets"):
        owner_client.get(url)
        assert reads(owner_client, url, "portfolio_holding") == 0, url
    assert_lists_agree(owner_client, owner)


def test_a_sync_that_changes_a_holding_recomputes_only_its_pair(owner_client, owner, synced):
    before = listed(owner_client)
    w0 = synced[0].wallet
    _sync(synced, _result(synced, 3, 11, amount=lambda w, t: 5 * 10**18 if (w, t) == (0, 0) else 10**18 * (t + 1) + w))
    assert list(PairValueChange.objects.filter(owner=owner).values_list("wallet_id", flat=True)) == [w0.pk]
    after = listed(owner_client)
    assert after[w0.pk] == before[w0.pk] + (5 * 10**18 - 10**18) / D(10**18) * D("1.5")
    assert {w: v for w, v in after.items() if w != w0.pk} == {w: v for w, v in before.items() if w != w0.pk}
    assert not PairValueChange.objects.filter(owner=owner).exists()
    assert_lists_agree(owner_client, owner)
    _sync(_reload(synced), _result(synced, 3, 12, amount=lambda w, t: 5 * 10**18 if (w, t) == (0, 0) else 10**18 * (t + 1) + w))
    assert not PairValueChange.objects.filter(owner=owner).exists(), "a sync that changes nothing marks nothing"


def test_new_prices_a_price_turning_stale_and_an_edited_asset_revalue_the_lists(owner_client, owner, synced):
    listed(owner_client)
    price(_token(2).address, "3", source="coingecko", age=stale_after() - timedelta(seconds=30))  # stale in 30 s
    assert_lists_agree(owner_client, owner)
    cache = PairValueCache.objects.get(owner=owner)
    assert cache.valid_until <= timezone.now() + timedelta(seconds=30)
    now = pair_values.holding_values(owner.pk, "USD", {}, D(1))
    later = pair_values.holding_values(owner.pk, "USD", {}, D(1), now=timezone.now() + timedelta(seconds=31))
    assert {p: now[p] - later[p] for p in now} == {(wc.wallet_id, wc.chain_id): D(3) * (3 * 10**18 + n) / 10**18 for n, wc in enumerate(synced)}
    token = Asset.objects.get(address=_token(0).address)
    token.is_spam = True
    token.save()  # an admin's edit: every pair is recomputed
    assert_lists_agree(owner_client, owner)


def test_adding_removing_and_regrouping_wallets_shows_on_the_next_view(owner_client, owner, synced):
    listed(owner_client)
    portfolio = Portfolio.objects.get(owner=owner)
    portfolio.wallets.add(synced[2].wallet)
    assert_lists_agree(owner_client, owner)
    portfolio.wallets.remove(synced[0].wallet)
    assert_lists_agree(owner_client, owner)
    do_delete_wallet(synced[1].wallet)
    assert_lists_agree(owner_client, owner)


def test_the_portfolio_dashboard_reads_its_freshness_from_one_row_whatever_its_size(owner, outsider, owner_client, outsider_client):
    from tests.portfolio.test_pages_at_scale import build

    for user, n in ((owner, 2), (outsider, 30)):
        wallets = build(user, wallets=n, assets=2, base=7 if user == owner else 8, failed=1)
        Portfolio.objects.create(owner=user, name="p").wallets.set(wallets)
    counts = []
    for user, client in ((owner, owner_client), (outsider, outsider_client)):
        url = reverse("portfolio_dashboard", args=[Portfolio.objects.get(owner=user).pk])
        first = queries_of(client, url)[0]
        assert freshness_counts(client, url) == 0
        counts.append((first, queries_of(client, url)[0]))
    assert counts[0] == counts[1], counts
    portfolio = Portfolio.objects.get(owner=owner)
    url = reverse("portfolio_dashboard", args=[portfolio.pk])
    WalletChain.objects.filter(wallet__owner=owner).update(status=WalletChain.FAILED)
    from portfolio import freshness
    freshness.changed(wallet_chain_ids=WalletChain.objects.filter(wallet__owner=owner).values_list("pk", flat=True))
    assert "2 failed" in owner_client.get(url).content.decode()
    portfolio.wallets.remove(Wallet.objects.filter(owner=owner).order_by("pk").first())
    page = owner_client.get(url).content.decode()
    assert "1 failed" in page and "2 failed" not in page
    lists = owner_client.get(reverse("portfolios")).content.decode()
    assert "1 failed" in lists
    assert freshness_counts(owner_client, reverse("portfolios")) == 0


@pytest.mark.parametrize("attrs", [{"id": "id_wallets"}, {"id": "id_wallets", "class": "c"}, None])
def test_the_portfolio_forms_wallet_checkboxes_are_djangos_markup_built_faster(attrs):
    from django import forms

    from portfolio.forms import QuickCheckboxSelectMultiple

    choices = [(1, "a <b>"), (2, "hot & cold"), (3, "x")]
    assert (QuickCheckboxSelectMultiple(choices=choices).render("wallets", [2, 3], attrs)
            == forms.CheckboxSelectMultiple(choices=choices).render("wallets", [2, 3], attrs))


def test_the_price_task_revalues_the_lists_viewed_lately_so_their_next_view_reads_no_holding(owner_client, owner, outsider, synced):
    from portfolio.tasks import refresh_prices_task

    owner_client.get(reverse("wallets"))
    PairValueCache.objects.create(owner=outsider, currency="USD")  # never viewed: left alone
    price(_token(2).address, "3")
    refresh_prices_task()  # (no CoinGecko URL in tests: only the revaluation does something)
    assert PairValueCache.objects.get(owner=outsider).computed_at is None
    assert reads(owner_client, reverse("wallets"), "portfolio_holding") == 0
    assert_lists_agree(owner_client, owner)
