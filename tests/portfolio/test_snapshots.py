"""Snapshots: value points per wallet/chain/asset, totals per wallet and per scope, and downsampling."""

from datetime import datetime, timedelta, timezone as tz
from decimal import Decimal as D

import pytest

from portfolio.models import (
    Asset, Chain, Holding, NftItem, Portfolio, Position, PositionLeg, PricePoint, ScopeValue, ValuePoint, Wallet, WalletChain, WalletValue,
)
from portfolio.services.prices import set_manual_price
from portfolio.services.snapshots import do_downsample, do_snapshot, scope_key

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=tz.utc)
ETH = 10**18


@pytest.fixture
def chain(db):
    return Chain.objects.get(slug="ethereum")


@pytest.fixture
def eth(chain):
    return Asset.objects.get(chain=chain, address="")


@pytest.fixture
def wallets(owner, chain):
    out = []
    for i, label in enumerate(["hot", "cold"]):
        w = Wallet.objects.create(owner=owner, family="evm", address=f"0x{i + 1:040x}", label=label)
        WalletChain.objects.create(wallet=w, chain=chain)
        out.append(w)
    return out


def hold(wallet, asset, amount):
    wc = WalletChain.objects.get(wallet=wallet, chain=asset.chain)
    Holding.objects.update_or_create(wallet_chain=wc, asset=asset, defaults={"amount": amount})


def scope_series(owner, wallets):
    return list(ScopeValue.objects.filter(owner=owner, scope_key=scope_key(w.id for w in wallets)).order_by("at")
                .values_list("value", "flow_value", "market_value"))


def test_it_stores_amount_price_and_value_per_wallet_chain_and_asset(owner, wallets, eth):
    set_manual_price(eth, D("2000"), at=T0 - timedelta(minutes=5))
    hold(wallets[0], eth, 3 * ETH // 2)
    do_snapshot(at=T0 + timedelta(minutes=17))
    point = ValuePoint.objects.get(wallet=wallets[0])
    # 1.5 ETH * 2000 = 3000; the wallet's first point is its opening balance: no flow, no growth.
    assert (point.at, point.amount, point.price, point.value) == (T0 + timedelta(minutes=17), 3 * ETH // 2, D(2000), D(3000))
    assert (point.flow_value, point.market_value, point.opening_value, point.price_source) == (D(0), D(0), D(3000), "manual")
    assert WalletValue.objects.get(wallet=wallets[0], at=T0 + timedelta(minutes=17)).value == D(3000)
    assert WalletValue.objects.get(wallet=wallets[1], at=T0 + timedelta(minutes=17)).value == D(0)


def test_every_snapshot_adds_a_point_and_after_48_hours_one_per_hour_stays(owner, wallets, eth):
    set_manual_price(eth, D("2000"), at=T0 - timedelta(minutes=5))
    hold(wallets[0], eth, ETH)
    do_snapshot(at=T0 + timedelta(minutes=1))
    hold(wallets[0], eth, 2 * ETH)
    do_snapshot(at=T0 + timedelta(minutes=59))
    # Two syncs within the hour: two points (a chart from the second refresh on). Opening 2000, then a
    # deposit of 1 ETH (flow 2000).
    assert scope_series(owner, wallets) == [(D(2000), D(0), D(0)), (D(4000), D(2000), D(0))]
    do_downsample(now=T0 + timedelta(hours=47))
    assert len(scope_series(owner, wallets)) == 2  # still within 48 hours
    do_downsample(now=T0 + timedelta(hours=50))
    kept = ScopeValue.objects.get(owner=owner)
    assert (kept.resolution, kept.value, kept.flow_value, kept.market_value, kept.opening_value) == ("hourly", D(4000), D(2000), D(0), D(2000))


def test_a_transfer_between_own_wallets_is_no_flow_for_all_wallets(owner, wallets, eth):
    set_manual_price(eth, D("1000"), at=T0 - timedelta(minutes=5))
    hold(wallets[0], eth, 4 * ETH)
    do_snapshot(at=T0)
    # hot sends 3 ETH to cold; price 1000 -> 1200.
    set_manual_price(eth, D("1200"), at=T0 + timedelta(minutes=30))
    hold(wallets[0], eth, ETH)
    hold(wallets[1], eth, 3 * ETH)
    do_snapshot(at=T0 + timedelta(hours=1))
    hot = WalletValue.objects.get(wallet=wallets[0], at=T0 + timedelta(hours=1))
    cold = WalletValue.objects.get(wallet=wallets[1], at=T0 + timedelta(hours=1))
    # hot: flow (1-4)*1200 = -3600, market 4*200 = 800; cold: flow +3600, market 0.
    assert (hot.flow_value, hot.market_value, cold.flow_value, cold.market_value) == (D(-3600), D(800), D(3600), D(0))
    # All wallets: 4000 -> 4800, no flow, all market.
    assert scope_series(owner, wallets)[-1] == (D(4800), D(0), D(800))


def test_an_unpriced_asset_keeps_its_amount_and_is_counted_not_valued(owner, wallets, chain):
    token = Asset.objects.create(chain=chain, kind="fungible", address="0x" + "77" * 20, symbol="NOPE", decimals=6)
    hold(wallets[0], token, 5_000_000)
    do_snapshot(at=T0)
    point = ValuePoint.objects.get(asset=token)
    assert (point.amount, point.price, point.value) == (5_000_000, None, None)
    total = ScopeValue.objects.get(owner=owner, scope_key=scope_key(w.id for w in wallets))
    assert (total.value, total.unpriced, total.breakdown["unpriced"]) == (D(0), 1, [token.id])


def test_nfts_count_only_when_priced_and_borrowed_legs_count_negative(owner, wallets, chain, eth):
    usdc = Asset.objects.create(chain=chain, kind="fungible", address="0x" + "aa" * 20, symbol="USDC", decimals=6)
    punks = Asset.objects.create(chain=chain, kind="nft_collection", address="0x" + "bb" * 20, symbol="PUNK", decimals=0)
    set_manual_price(eth, D("2000"), at=T0 - timedelta(minutes=1))
    set_manual_price(usdc, D("1"), at=T0 - timedelta(minutes=1))
    wc = WalletChain.objects.get(wallet=wallets[0], chain=chain)
    NftItem.objects.create(wallet_chain=wc, collection=punks, token_id="7")
    position = Position.objects.create(wallet_chain=wc, protocol="aave-v3", kind="lending", ref="0xpool")
    PositionLeg.objects.create(position=position, asset=eth, amount=ETH, role="supplied")
    PositionLeg.objects.create(position=position, asset=usdc, amount=500 * 10**6, role="borrowed")
    do_snapshot(at=T0)
    total = ScopeValue.objects.get(owner=owner, scope_key=scope_key(w.id for w in wallets))
    # 1 ETH supplied (2000) - 500 USDC borrowed (500) = 1500; the NFT has no floor price: not valued,
    # and counted apart from unpriced tokens.
    assert total.value == D(1500)
    assert (total.breakdown["unpriced"], total.breakdown["nfts_unvalued"], total.unpriced) == ([], 1, 0)
    assert dict(total.breakdown["by_kind"]) == {"defi": "1500"}
    assert ValuePoint.objects.get(asset=usdc).amount == -500 * 10**6
    # An admin price on the collection makes it count: 1 item * 300.
    set_manual_price(punks, D("300"), at=T0 + timedelta(minutes=30))
    do_snapshot(at=T0 + timedelta(hours=1))
    assert ScopeValue.objects.get(owner=owner, scope_key=total.scope_key, at=T0 + timedelta(hours=1)).value == D(1800)


def test_a_new_portfolio_gets_the_history_of_its_wallets(owner, wallets, eth):
    set_manual_price(eth, D("1000"), at=T0 - timedelta(minutes=5))
    hold(wallets[1], eth, ETH)
    do_snapshot(at=T0)
    cold_only = Portfolio.objects.create(owner=owner, name="cold storage")
    cold_only.wallets.add(wallets[1])
    do_snapshot(at=T0 + timedelta(hours=1))
    assert scope_series(owner, [wallets[1]]) == [(D(1000), D(0), D(0)), (D(1000), D(0), D(0))]


def test_downsampling_keeps_the_last_point_of_each_day_and_attribution_stays_exact(owner, wallets, eth):
    start = datetime(2026, 1, 1, 0, 0, tzinfo=tz.utc)
    # Day 1: 1 ETH at 1000; at 06:00 price 1100; at 12:00 deposit 1 ETH; at 23:00 price 1050.
    set_manual_price(eth, D("1000"), at=start - timedelta(minutes=1))
    hold(wallets[0], eth, ETH)
    for hour in range(24):
        at = start + timedelta(hours=hour)
        if hour == 6:
            set_manual_price(eth, D("1100"), at=at)
        if hour == 12:
            hold(wallets[0], eth, 2 * ETH)
        if hour == 23:
            set_manual_price(eth, D("1050"), at=at)
        do_snapshot(at=at)
    do_snapshot(at=start + timedelta(days=1, hours=5))  # day 2 (one point)
    report = do_downsample(now=start + timedelta(days=30))
    assert report.value_points_removed == 23 and report.wallet_values_removed == 23 * 2
    # Prices are thinned too: of the 06:00 and 23:00 prices of day 1, the 23:00 one stays.
    assert report.prices_removed == 1
    assert list(PricePoint.objects.filter(at__date=start.date()).values_list("price", flat=True)) == [D(1050)]
    kept = ValuePoint.objects.get(wallet=wallets[0], at=start + timedelta(hours=23))
    # Value 0 -> 2 ETH * 1050 = 2100 over day 1.
    # Opening 1000 (first point, 1 ETH at 1000); flow 1100 (1 ETH deposited at 1100);
    # market: +100 (06:00, 1 ETH) - 100 (23:00, 2 ETH * -50) = 0. 1000 + 1100 + 0 = 2100.
    assert (kept.resolution, kept.value, kept.flow_value, kept.market_value, kept.opening_value) == ("daily", D(2100), D(1100), D(0), D(1000))
    series = scope_series(owner, wallets)
    assert len(series) == 2
    assert series[0] == (D(2100), D(1100), D(0))
    # Each kept point still explains its change from the previous kept point.
    assert series[1][0] - series[0][0] == series[1][1] + series[1][2]


def test_each_owner_gets_their_own_totals(owner, outsider, wallets, chain, eth):
    set_manual_price(eth, D("1000"), at=T0 - timedelta(minutes=5))
    theirs = Wallet.objects.create(owner=outsider, family="evm", address="0x" + "99" * 20)
    WalletChain.objects.create(wallet=theirs, chain=chain)
    hold(wallets[0], eth, ETH)
    hold(theirs, eth, 5 * ETH)
    report = do_snapshot(at=T0)
    assert report.wallets == 3 and report.scopes == 2
    assert ScopeValue.objects.get(owner=owner).value == D(1000)
    assert ScopeValue.objects.get(owner=outsider).value == D(5000)
    # A sync of the outsider's wallet snapshots only the outsider.
    assert do_snapshot([theirs.pk], at=T0 + timedelta(hours=1)).wallets == 1
