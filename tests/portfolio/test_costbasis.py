"""Cost basis and unrealised profit, worked by hand: buys at two prices, a partial sale with its network fee,
an internal transfer, an airdrop with no price; the scope decides what is internal; incomplete histories
say so instead of a figure; money in the quote currency at the FX rate of each moment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as tz
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portfolio import totals
from portfolio.activity import add_cost_basis
from portfolio.costbasis import Movement, average_cost, cost_basis
from portfolio.holdings import scope_holdings
from portfolio.models import (
    Asset, Backfill, Chain, FxRate, Holding, PricePoint, Transfer, Wallet, WalletChain,
)

T0 = datetime(2026, 3, 1, tzinfo=tz.utc)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
ETH = 10**18
EXTERNAL = "0x" + "ee" * 20


# --------------------------------------------------------------------------- the pure maths


def test_average_cost_of_two_buys_a_partial_sale_and_a_fee():
    ledger = average_cost([
        Movement(T0, D(2), True, D(100)),            # 2 at 100: cost 200
        Movement(T0 + DAY, D(2), True, D(200)),      # 2 at 200: 4 units, cost 600, average 150
        Movement(T0 + 2 * DAY, D(1), False),         # sell 1: 3 units, cost 450 (average unchanged)
        Movement(T0 + 2 * DAY, D("0.01"), False),    # fee: 2.99 units, cost 448.5
    ])
    assert ledger.units == D("2.99") and ledger.cost == D("448.5") and not ledger.unpriced
    basis = cost_basis(ledger, D("2.99"), D(300))
    assert basis.complete and basis.average_cost == D(150) and basis.cost == D("448.5")
    assert basis.unrealised == D("448.5") and basis.unrealised_pct == D(1)  # 897 now for 448.5: +100%


def test_an_unpriced_airdrop_or_a_history_short_of_the_balance_gives_no_figure():
    airdrop = cost_basis(average_cost([Movement(T0, D(5), True, None)]), D(5), D(1))
    assert not airdrop.complete and airdrop.cost is None and airdrop.unrealised is None
    assert airdrop.incomplete == "cost basis incomplete: no price on the day of 1 inflow (first 2026-03-01)"
    short = cost_basis(average_cost([Movement(T0, D(1), True, D(10))]), D(3), D(10))
    assert short.cost is None and "adds up to 1, not the balance of 3" in short.incomplete
    oversold = cost_basis(average_cost([Movement(T0, D(1), True, D(10)), Movement(T0 + DAY, D(2), False)]), D(0), D(10))
    assert oversold.cost is None and "more left than the history brought in" in oversold.incomplete


def test_a_receive_and_a_send_at_the_same_moment_are_not_an_oversale():
    ledger = average_cost([Movement(T0, D(1), False), Movement(T0, D(1), True, D(10))])
    assert ledger.units == 0 and ledger.cost == 0 and not ledger.oversold


# --------------------------------------------------------------------------- from the stored history


def _wallet(owner, chain, n, label):
    w = Wallet.objects.create(owner=owner, family="evm", address=f"0x{n:040x}", label=label)
    wc = WalletChain.objects.create(wallet=w, chain=chain, last_ok_at=T0 + 3 * DAY, first_ok_at=T0 + 3 * DAY, height=900)
    Backfill.objects.create(wallet_chain=wc, status=Backfill.DONE, complete_from=T0 - DAY, days_total=4, days_done=4)
    return w, wc


def transfer(wc, asset, direction, amount, at, tx, counterparty=EXTERNAL, fee=0, key="0"):
    return Transfer.objects.create(wallet_chain=wc, asset=asset, direction=direction, amount=amount, at=at, tx=tx,
                                   key=key, counterparty=counterparty, fee=fee, height=100)


@pytest.fixture
def book(owner, outsider):
    return make_book(owner, outsider)


def make_book(owner, outsider) -> dict:
    """hot buys 2 ETH at 100 (day 0) and 2 at 200 (day 1), sells 1 at 300 paying a 0.01 ETH fee and sends
    1 to cold (day 2), and receives 5 AIR (an airdrop nobody prices). Balances now: hot 1.99 ETH and
    5 AIR, cold 1 ETH; ETH is at 300. The outsider buys ETH at 1 (never in alice's figures)."""
    chain = Chain.objects.get(slug="ethereum")
    eth = Asset.objects.get(chain=chain, address="")
    air = Asset.objects.create(chain=chain, kind=Asset.FUNGIBLE, address="0x" + "a1" * 20, symbol="AIR", decimals=0)
    for at, price in ((T0, "100"), (T0 + DAY, "200"), (T0 + 2 * DAY, "300")):
        PricePoint.objects.create(asset=eth, at=at, price=D(price), currency="USD", source="coingecko")
    PricePoint.objects.create(asset=eth, at=T0 + 3 * DAY, price=D(300), currency="USD", source="manual")
    hot, hot_wc = _wallet(owner, chain, 1, "hot")
    cold, cold_wc = _wallet(owner, chain, 2, "cold")
    transfer(hot_wc, eth, "in", 2 * ETH, T0 + HOUR, "0xb1")
    transfer(hot_wc, eth, "in", 2 * ETH, T0 + DAY + HOUR, "0xb2")
    transfer(hot_wc, eth, "out", ETH, T0 + 2 * DAY + HOUR, "0xs1", fee=ETH // 100)
    transfer(hot_wc, eth, "out", ETH, T0 + 2 * DAY + 2 * HOUR, "0xi1", counterparty=cold.address)
    transfer(cold_wc, eth, "in", ETH, T0 + 2 * DAY + 2 * HOUR, "0xi1", counterparty=hot.address)
    transfer(hot_wc, air, "in", 5, T0 + 2 * DAY + 3 * HOUR, "0xa1")
    Holding.objects.create(wallet_chain=hot_wc, asset=eth, amount=ETH * 199 // 100)
    Holding.objects.create(wallet_chain=hot_wc, asset=air, amount=5)
    Holding.objects.create(wallet_chain=cold_wc, asset=eth, amount=ETH)
    _, their_wc = _wallet(outsider, chain, 9, "theirs")
    transfer(their_wc, eth, "in", 7 * ETH, T0 + HOUR, "0xb1")  # the same tx hash as alice's first buy
    Holding.objects.create(wallet_chain=their_wc, asset=eth, amount=7 * ETH)
    return {"hot": hot, "cold": cold, "eth": eth, "air": air, "hot_wc": hot_wc, "cold_wc": cold_wc}


def basis_of(owner, wallet_ids, currency="USD"):
    rows = scope_holdings(owner, wallet_ids, currency, with_positions=False).rows
    add_cost_basis(owner, wallet_ids, rows, currency)
    return {r.asset.symbol: r.cost_basis for r in rows}


def test_all_wallets_average_cost_leaves_the_internal_transfer_out(owner, book):
    basis = basis_of(owner, [book["hot"].pk, book["cold"].pk])
    eth = basis["ETH"]
    assert eth.complete, eth.incomplete
    assert (eth.average_cost, eth.cost, eth.unrealised, eth.unrealised_pct) == (D(150), D("448.5"), D("448.5"), D(1))
    assert basis["AIR"].incomplete == "cost basis incomplete: no price on the day of 1 inflow (first 2026-03-03)"
    assert basis["AIR"].cost is None


def test_a_portfolio_holding_one_side_counts_the_internal_transfer_as_leaving_or_unknown(owner, book):
    hot_only = basis_of(owner, [book["hot"].pk])["ETH"]
    # 2.99 ETH at 448.5 before 1 ETH left for cold: 1.99 ETH at 298.5, still 150 a unit.
    assert (hot_only.average_cost, hot_only.cost, hot_only.unrealised) == (D(150), D("298.5"), D("298.5"))
    cold_only = basis_of(owner, [book["cold"].pk])["ETH"]
    assert cold_only.cost is None
    assert cold_only.incomplete == "cost basis incomplete: received 2026-03-03 from your wallet outside this scope"


def test_a_history_not_read_or_read_only_from_after_the_first_holding_is_incomplete(owner, book):
    Backfill.objects.filter(wallet_chain=book["cold_wc"]).update(status=Backfill.RUNNING)
    assert "history not read yet" in basis_of(owner, [book["hot"].pk, book["cold"].pk])["ETH"].incomplete
    Backfill.objects.filter(wallet_chain=book["cold_wc"]).update(status=Backfill.PARTIAL, complete_from=T0 + 5 * DAY)
    assert basis_of(owner, [book["hot"].pk, book["cold"].pk])["ETH"].incomplete == (
        "cost basis incomplete: history complete only from 2026-03-06")
    Backfill.objects.filter(wallet_chain=book["cold_wc"]).delete()
    assert "history not read yet" in basis_of(owner, [book["hot"].pk, book["cold"].pk])["ETH"].incomplete


def test_a_transfer_after_the_history_was_read_makes_it_incomplete_not_wrong(owner, book):
    # A bulk update outside the sync: the scope totals are rebuilt as for any such write (totals.rebuild).
    Holding.objects.filter(wallet_chain=book["hot_wc"], asset=book["eth"]).update(amount=ETH * 299 // 100)
    totals.rebuild(owner.pk)
    eth = basis_of(owner, [book["hot"].pk, book["cold"].pk])["ETH"]
    assert eth.cost is None and "adds up to 2.99, not the balance of 3.99" in eth.incomplete


def test_costs_are_in_the_quote_currency_at_the_rate_of_each_moment(owner, book):
    FxRate.objects.create(at=T0 - HOUR, currency="EUR", rate=D("0.5"), source="manual")
    FxRate.objects.create(at=T0 + DAY + 2 * HOUR, currency="EUR", rate=D("0.8"), source="manual")
    FxRate.objects.create(at=T0 + 3 * DAY, currency="EUR", rate=D("0.9"), source="manual")
    eth = basis_of(owner, [book["hot"].pk, book["cold"].pk], "EUR")["ETH"]
    # 2 at 100 USD x 0.5 = 100 EUR; 2 at 200 USD x 0.5 (the later rate came after) = 200 EUR: 300 EUR for 4,
    # 75 a unit; 2.99 held cost 224.25 EUR; worth 2.99 x 300 x 0.9 = 807.3 EUR now.
    assert (eth.average_cost, eth.cost, eth.unrealised) == (D(75), D("224.25"), D("583.05"))


def test_the_outsiders_history_never_reaches_the_owners_figures(owner, outsider, book):
    theirs = list(Wallet.objects.filter(owner=outsider).values_list("pk", flat=True))
    assert basis_of(owner, theirs) == {}
    mine = basis_of(owner, [book["hot"].pk, book["cold"].pk])["ETH"]
    assert mine.cost == D("448.5")


def test_cost_basis_reads_a_fixed_number_of_queries_whatever_the_history(owner, book):
    ids = [book["hot"].pk, book["cold"].pk]
    rows = scope_holdings(owner, ids, "USD", with_positions=False).rows
    with CaptureQueriesContext(connection) as few:
        add_cost_basis(owner, ids, rows, "USD")
    for i in range(40):
        transfer(book["hot_wc"], book["air"], "in", 1, T0 + 2 * DAY + 4 * HOUR + i * HOUR, f"0xm{i}")
    rows = scope_holdings(owner, ids, "USD", with_positions=False).rows
    with CaptureQueriesContext(connection) as many:
        add_cost_basis(owner, ids, rows, "USD")
    assert len(many) == len(few)


def test_a_second_view_reads_no_history_and_a_new_transfer_price_or_wallet_shows_at_once(owner, book):
    """The ledgers are kept per scope and stamp: an unchanged history is not read again (no transfer, no
    past price), and a transfer, a price of a past day, a wallet or a re-read backfill page shows on the
    next view, as it does on /activity."""
    ids = [book["hot"].pk, book["cold"].pk]
    assert basis_of(owner, ids)["ETH"].cost == D("448.5")
    with CaptureQueriesContext(connection) as again:
        assert basis_of(owner, ids)["ETH"].cost == D("448.5")
    reads = [q["sql"] for q in again.captured_queries]
    history = ('SELECT "portfolio_transfer"', 'SELECT "portfolio_pricepoint"."asset_id"')  # the transfers, past prices
    assert not [q for q in reads if q.startswith(history)]
    # Today's price (after every transfer: no acquisition's price of the day) reads no history either.
    PricePoint.objects.create(asset=book["eth"], at=datetime.now(tz.utc), price=D(3000), currency="USD",
                              source="manual")
    with CaptureQueriesContext(connection) as priced:
        assert basis_of(owner, ids)["ETH"].cost == D("448.5")
    assert not [q["sql"] for q in priced.captured_queries if q["sql"].startswith(history)]
    # A buy of 1 ETH on day 1 (200): 5 in, 4 held after the sale's share; the balance follows.
    transfer(book["hot_wc"], book["eth"], "in", ETH, T0 + DAY + 2 * HOUR, "0xb3")
    Holding.objects.filter(wallet_chain=book["hot_wc"], asset=book["eth"]).update(amount=ETH * 299 // 100)
    totals.rebuild(owner.pk)
    assert basis_of(owner, ids)["ETH"].average_cost == D(160)  # (200 + 400 + 200) / 5
    # A price of day 0 stored later (a backfill's oracle read): the first buy's price is now 50.
    PricePoint.objects.create(asset=book["eth"], at=T0 + HOUR, price=D(50), currency="USD", source="coingecko")
    assert basis_of(owner, ids)["ETH"].average_cost == D(140)  # (2 x 50 + 400 + 200) / 5
    # A wallet added that sent the day-1 buy: it is internal now (and the history no longer adds up).
    other, _ = _wallet(owner, Chain.objects.get(slug="ethereum"), 3, "other")
    Transfer.objects.filter(tx="0xb3").update(counterparty=other.address)
    assert "received 2026-03-02 from your wallet outside this scope" in basis_of(owner, ids)["ETH"].incomplete
