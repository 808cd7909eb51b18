"""Queries the pages use: scope, holdings, dashboard summary (hand-worked figures), NFTs, positions,
and a query count that does not grow with the number of wallets and holdings."""

from datetime import datetime, timedelta, timezone as tz
from decimal import Decimal as D

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from portfolio import queries
from portfolio.holdings import holding_parts, holdings_rows
from portfolio.models import Asset, Chain, FxRate, Holding, NftItem, Portfolio, Position, PositionLeg, Wallet, WalletChain
from portfolio.services.prices import set_manual_price
from portfolio.services.snapshots import do_snapshot

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=tz.utc)
ETH = 10**18


@pytest.fixture
def chain(db):
    return Chain.objects.get(slug="ethereum")


@pytest.fixture
def eth(chain):
    return Asset.objects.get(chain=chain, address="")


def make_wallet(owner, chain, n, label=""):
    w = Wallet.objects.create(owner=owner, family="evm", address=f"0x{n:040x}", label=label)
    WalletChain.objects.create(wallet=w, chain=chain, last_ok_at=T0, height=100 + n)
    return w


def hold(wallet, asset, amount):
    wc = WalletChain.objects.get(wallet=wallet, chain=asset.chain)
    Holding.objects.update_or_create(wallet_chain=wc, asset=asset, defaults={"amount": amount, "height": 123})


@pytest.fixture
def history(owner, chain, eth):
    """Two wallets over three hours:
    00:00  hot 2 ETH at 1000                              value 2000 (first point: opening balance)
    01:00  deposit 1 ETH to hot, price 1100               value 3300 (flow 1100, market 200)
    02:00  withdraw 2 ETH from hot, send 0 to cold, 990   value  990 (flow -1980, market -330)
    plus cold holds 10 unpriced NOPE all along."""
    hot, cold = make_wallet(owner, chain, 1, "hot"), make_wallet(owner, chain, 2, "cold")
    nope = Asset.objects.create(chain=chain, kind="fungible", address="0x" + "77" * 20, symbol="NOPE", decimals=0)
    hold(cold, nope, 10)
    set_manual_price(eth, D("1000"), at=T0 - timedelta(minutes=1))
    hold(hot, eth, 2 * ETH)
    do_snapshot(at=T0)
    set_manual_price(eth, D("1100"), at=T0 + timedelta(minutes=59))
    hold(hot, eth, 3 * ETH)
    do_snapshot(at=T0 + timedelta(hours=1))
    set_manual_price(eth, D("990"), at=T0 + timedelta(hours=1, minutes=59))
    hold(hot, eth, ETH)
    do_snapshot(at=T0 + timedelta(hours=2))
    return {"hot": hot, "cold": cold, "nope": nope}


def test_scope_is_the_users_wallets_or_one_of_their_portfolios(owner, outsider, chain):
    mine = make_wallet(owner, chain, 1)
    make_wallet(outsider, chain, 2)
    theirs = Portfolio.objects.create(owner=outsider, name="theirs")
    assert queries.scope_wallet_ids(owner) == [mine.pk]
    with pytest.raises(Http404):
        queries.scope_wallet_ids(owner, theirs.pk)


def test_the_dashboard_figures_match_the_hand_worked_history(owner, history):
    ids = queries.scope_wallet_ids(owner)
    s = queries.dashboard_summary(owner, ids, "USD", "24h", now=T0 + timedelta(hours=2, minutes=10))
    # Range starts at -24h, before the first point: the figures start there (the opening balance of
    # 2000 is the starting point, neither a flow nor growth), and the page says "since" it.
    assert s.net_worth == D(990) and s.as_of == T0 + timedelta(hours=2) and s.since == T0
    assert [v for _, v in s.series] == [D(2000), D(3300), D(990)]
    # change 990 - 2000 = -1010; flows 1100 - 1980 = -880; profit -1010 + 880 = -130 = 200 - 330.
    assert (s.change, s.net_flows, s.profit) == (D(-1010), D(-880), D(-130))
    # TWR: 200/2000 = 0.1 and -330/3300 = -0.1: 1.1*0.9-1 = -0.01; pct -1010/2000.
    assert s.twr == D("-0.01") and s.pct == D("-0.505")
    assert s.unpriced_count == 1 and s.unpriced[0].symbol == "NOPE"
    assert [(x.label, x.value, x.share) for x in s.allocation["wallet"]] == [("hot", D(990), D(1))]
    assert [(x.key, x.value) for x in s.allocation["kind"]] == [("token", D(990))]
    assert s.allocation["asset"][0].label == "ETH · Ethereum"
    assert [(f.chain.slug, f.wallets, f.height) for f in s.freshness] == [("ethereum", 2, 102)]


def test_a_range_starting_after_the_first_point_uses_it_as_the_base(owner, history):
    s = queries.dashboard_summary(owner, queries.scope_wallet_ids(owner), "USD", "24h", now=T0 + timedelta(hours=24, minutes=30))
    # Base = the 00:00 point (2000): change 990 - 2000 = -1010, pct -0.505, flows 1100 - 1980 = -880.
    assert (s.change, s.pct, s.net_flows, s.profit, s.twr) == (D(-1010), D("-0.505"), D(-880), D(-130), D("-0.01"))
    assert s.series[0] == (T0, D(2000))


def test_values_in_euros_use_the_rate_of_each_moment(owner, chain, eth):
    w = make_wallet(owner, chain, 1)
    FxRate.objects.create(currency="EUR", rate=D("0.9"), source="manual", at=T0 - timedelta(minutes=5))
    set_manual_price(eth, D("1000"), at=T0 - timedelta(minutes=1))
    hold(w, eth, ETH)
    do_snapshot(at=T0)
    FxRate.objects.create(currency="EUR", rate=D("0.8"), source="manual", at=T0 + timedelta(minutes=30))
    do_snapshot(at=T0 + timedelta(hours=1))
    s = queries.dashboard_summary(owner, [w.pk], "EUR", "all", now=T0 + timedelta(hours=1))
    # 1000 USD was 900 EUR then and is 800 EUR now: history is not re-priced at today's rate.
    assert s.currency == "EUR" and [v for _, v in s.series] == [D(900), D(800)]
    # The first point is the opening balance; the FX move (-100 EUR) is the market part: profit -100.
    assert (s.change, s.net_flows, s.profit) == (D(-100), D(0), D(-100))
    assert queries.dashboard_summary(owner, [w.pk], "JPY", "all").fx_missing is True


def test_holdings_are_one_row_per_asset_with_wallet_parts_and_unpriced_last(owner, history, eth):
    now = T0 + timedelta(hours=25, minutes=30)
    set_manual_price(eth, D("1089"), at=now - timedelta(minutes=1))
    hold(history["cold"], eth, ETH // 2)
    rows = holdings_rows(owner, queries.scope_wallet_ids(owner), "USD", now=now, pnl_range="all")
    assert [r.asset.symbol for r in rows] == ["ETH", "NOPE"]
    eth_row, nope_row = rows
    # 1 + 0.5 ETH at 1089 = 1633.5; price 24h ago (01:00 point) 1100: -11/1100 = -0.01.
    assert (eth_row.amount, eth_row.price, eth_row.value, eth_row.price_source) == (D("1.5"), D(1089), D("1633.5"), "manual")
    assert eth_row.change_24h == D("-0.01") and eth_row.share == D(1)
    parts = holding_parts(owner, queries.scope_wallet_ids(owner), [eth.pk], "USD")[eth.pk]
    assert sorted((str(w.wallet), w.amount, w.height) for w in parts) == [("cold", D("0.5"), 123), ("hot", D(1), 123)]
    # Market PnL over all snapshots: 200 - 330 = -130.
    assert eth_row.market_pnl == D(-130)
    assert nope_row.unpriced and nope_row.value is None and nope_row.share is None


def test_outsiders_wallet_ids_are_ignored(owner, outsider, history):
    ids = queries.scope_wallet_ids(owner)
    assert holdings_rows(outsider, ids, "USD") == []
    assert queries.dashboard_summary(outsider, ids, "USD", "7d").net_worth == 0
    assert list(queries.nft_items(outsider, ids)) == []
    assert queries.positions(outsider, ids, "USD") == []


def test_positions_value_debt_as_negative(owner, chain, eth):
    w = make_wallet(owner, chain, 1)
    usdc = Asset.objects.create(chain=chain, kind="fungible", address="0x" + "aa" * 20, symbol="USDC", decimals=6)
    set_manual_price(eth, D("2000"))
    set_manual_price(usdc, D("1"))
    p = Position.objects.create(wallet_chain=w.wallet_chains.get(), protocol="aave-v3", kind="lending", ref="0xpool",
                                health_factor=D("1.5"))
    PositionLeg.objects.create(position=p, asset=eth, amount=ETH, role="supplied")
    PositionLeg.objects.create(position=p, asset=usdc, amount=500 * 10**6, role="borrowed")
    [row] = queries.positions(owner, [w.pk], "USD")
    # 1 ETH * 2000 - 500 USDC * 1 = 1500
    assert (row.value, row.borrowed[0].value, row.supplied[0].amount, row.health_factor) == (D(1500), D(-500), D(1), D("1.5"))


def test_nft_items_are_the_users(owner, chain):
    w = make_wallet(owner, chain, 1)
    coll = Asset.objects.create(chain=chain, kind="nft_collection", address="0x" + "bb" * 20, symbol="PUNK", name="Punks")
    NftItem.objects.create(wallet_chain=w.wallet_chains.get(), collection=coll, token_id="7", name="Punk 7")
    assert [i.name for i in queries.nft_items(owner, [w.pk])] == ["Punk 7"]


def build(owner, chain, eth, wallets: int, tokens: int, hours: int, base: int):
    assets = [Asset.objects.create(chain=chain, kind="fungible", address=f"0x{base * 1000 + i:040x}", symbol=f"T{i}", decimals=6)
              for i in range(tokens)]
    for a in assets[::2]:
        set_manual_price(a, D("2"), at=T0 - timedelta(hours=1))
    set_manual_price(eth, D("1000"), at=T0 - timedelta(hours=1))
    for n in range(wallets):
        w = make_wallet(owner, chain, base * 1000 + n)
        hold(w, eth, ETH)
        for a in assets:
            hold(w, a, 10**6)
    for h in range(hours):
        do_snapshot(at=T0 + timedelta(hours=h))


def count_queries(fn):
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def test_the_dashboard_query_count_does_not_grow_with_wallets_or_holdings(owner, outsider, chain, eth):
    build(owner, chain, eth, wallets=1, tokens=1, hours=2, base=1)
    build(outsider, chain, eth, wallets=6, tokens=8, hours=3, base=2)
    now = T0 + timedelta(hours=3)
    small, large = queries.scope_wallet_ids(owner), queries.scope_wallet_ids(outsider)
    for rk in ("24h", "all"):
        n_small = count_queries(lambda: queries.dashboard_summary(owner, small, "EUR", rk, now=now))
        n_large = count_queries(lambda: queries.dashboard_summary(outsider, large, "EUR", rk, now=now))
        assert n_small == n_large
    assert count_queries(lambda: holdings_rows(owner, small, "USD", now=now)) == \
        count_queries(lambda: holdings_rows(outsider, large, "USD", now=now))
    s = queries.dashboard_summary(outsider, large, "USD", "all", now=now)
    # 6 wallets * (1 ETH * 1000 + 4 priced tokens * 1 * 2) = 6048; 4 unpriced tokens.
    assert s.net_worth == D(6048) and s.unpriced_count == 4


def test_a_portfolio_whose_series_is_not_built_yet_shows_its_current_totals_at_once(owner, history):
    p = Portfolio.objects.create(owner=owner, name="hot only")
    p.wallets.add(history["hot"])
    ids = queries.scope_wallet_ids(owner, p.pk)
    s = queries.dashboard_summary(owner, ids, "USD", "all", now=T0 + timedelta(hours=3))
    # No multi-second read of the wallets' history: the latest totals, and the series once built.
    assert s.history == "pending" and s.series == [] and s.change is None
    assert s.net_worth == D(990) and s.allocation["wallet"][0].label == "hot"
    assert count_queries(lambda: queries.dashboard_summary(owner, ids, "USD", "all", now=T0 + timedelta(hours=3))) <= 12


def test_materialising_a_new_portfolio_gives_the_same_series(owner, history):
    from portfolio.services.snapshots import do_materialise_scopes

    p = Portfolio.objects.create(owner=owner, name="hot only")
    p.wallets.add(history["hot"])
    ids = queries.scope_wallet_ids(owner, p.pk)
    assert do_materialise_scopes([owner.pk]) == 1
    after = queries.dashboard_summary(owner, ids, "USD", "all", now=T0 + timedelta(hours=3))
    assert after.history == "materialised"
    # The hot wallet alone: 2000 (opening) -> 3300 (deposit 1100, market 200) -> 990 (withdrawal 1980, market -330).
    assert [v for _, v in after.series] == [D(2000), D(3300), D(990)]
    assert (after.profit, after.twr, after.net_flows) == (D(-130), D("-0.01"), D(-880))


def test_the_pages_show_snapshot_figures(owner, owner_client, history):
    from django.urls import reverse

    page = owner_client.get(reverse("dashboard") + "?range=all")
    assert page.status_code == 200
    assert "990" in page.content.decode()
    holdings = owner_client.get(reverse("holdings"))
    assert holdings.status_code == 200 and "NOPE" in holdings.content.decode()


def test_creating_a_portfolio_has_a_worker_build_its_series(owner, history, django_capture_on_commit_callbacks, settings):
    from portfolio.celery import app
    from portfolio.services.wallets import do_create_portfolio

    app.conf.task_always_eager = True  # the task itself is what is under test here, not the broker
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            p = do_create_portfolio(owner, "hot only", [history["hot"]])
    finally:
        app.conf.task_always_eager = False
    assert len(callbacks) == 1
    s = queries.dashboard_summary(owner, queries.scope_wallet_ids(owner, p.pk), "USD", "all", now=T0 + timedelta(hours=3))
    assert s.history == "materialised"
    assert [v for _, v in s.series] == [D(2000), D(3300), D(990)]
