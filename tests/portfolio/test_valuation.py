"""Valuation math on hand-worked examples: every expected number is derived in a comment."""

from decimal import Decimal as D

from portfolio.templatetags.money import amount
from portfolio.valuation import (
    Period,
    allocation,
    exact_text,
    range_figures,
    split_change,
    time_weighted_return,
    to_units,
    value_of,
)


def test_it_converts_base_units_exactly():
    assert to_units(1_500_000, 6) == D("1.5")
    assert to_units(2**256 - 1, 18) == D("115792089237316195423570985008687907853269984665640564039457.584007913129639935")
    assert exact_text(to_units(10**18 + 5 * 10**17, 18)) == "1.5"
    assert exact_text(to_units(100 * 10**8, 8)) == "100"
    assert exact_text(to_units(1, 18)) == "0.000000000000000001"
    assert amount(to_units(123456789, 8), 4) == "1.2345"


def test_a_deposit_is_all_flow():
    # 2 ETH at 1000 -> 3 ETH at 1000: value 2000 -> 3000.
    # flow = (3-2)*1000 = 1000; market = 2*(1000-1000) = 0.
    change = split_change(D(2), D(1000), D(3), D(1000))
    assert (change.flow, change.market) == (D(1000), D(0))


def test_a_withdrawal_is_a_negative_flow():
    # 5 SOL at 100 -> 1 SOL at 100: value 500 -> 100. flow = (1-5)*100 = -400; market = 0.
    change = split_change(D(5), D(100), D(1), D(100))
    assert (change.flow, change.market) == (D(-400), D(0))


def test_a_price_move_is_all_market():
    # 2 ETH at 1000 -> 2 ETH at 1100: flow = 0; market = 2*(1100-1000) = 200.
    change = split_change(D(2), D(1000), D(2), D(1100))
    assert (change.flow, change.market) == (D(0), D(200))


def test_deposit_withdrawal_and_price_moves_together_split_exactly():
    # Start: 2 ETH at 1000 = 2000.
    # Hour 1: deposit 1 ETH, price 1100: value 3*1100 = 3300.
    #   flow = (3-2)*1100 = 1100; market = 2*(1100-1000) = 200; 1100 + 200 = 3300 - 2000 = 1300.
    # Hour 2: withdraw 2 ETH, price 990: value 1*990 = 990.
    #   flow = (1-3)*990 = -1980; market = 3*(990-1100) = -330; -1980 - 330 = 990 - 3300 = -2310.
    h1 = split_change(D(2), D(1000), D(3), D(1100))
    h2 = split_change(D(3), D(1100), D(1), D(990))
    assert (h1.flow, h1.market) == (D(1100), D(200))
    assert (h2.flow, h2.market) == (D(-1980), D(-330))
    periods = [Period(D(3300), h1.flow, h1.market), Period(D(990), h2.flow, h2.market)]
    figures = range_figures(D(2000), periods)
    # change = 990 - 2000 = -1010; net flows = 1100 - 1980 = -880; profit = -1010 - (-880) = -130
    # (= market 200 - 330). TWR: r1 = 200/2000 = 0.1; r2 = -330/3300 = -0.1;
    # (1.1)(0.9) - 1 = -0.01.
    assert figures.change == D(-1010)
    assert figures.net_flows == D(-880)
    assert figures.profit == D(-130) == figures.market
    assert figures.twr == D("-0.01")
    # pct = -1010 / 2000 = -0.505
    assert figures.pct == D("-0.505")


def test_an_internal_transfer_between_two_wallets_cancels_at_portfolio_level():
    # Wallet A: 4 ETH -> 1 ETH, wallet B: 0 -> 3 ETH (A sent 3 to B); price 1000 -> 1200.
    # A: flow = (1-4)*1200 = -3600; market = 4*200 = 800.
    # B: flow = (3-0)*1200 = +3600; market = 0*200 = 0.
    # Portfolio: flow = 0; market = 800 = 4 ETH * 200, value 4000 -> 4800.
    a = split_change(D(4), D(1000), D(1), D(1200))
    b = split_change(D(0), D(1000), D(3), D(1200))
    assert (a.flow, a.market, b.flow, b.market) == (D(-3600), D(800), D(3600), D(0))
    portfolio = Period(D(4800), a.flow + b.flow, a.market + b.market)
    figures = range_figures(D(4000), [portfolio])
    assert figures.net_flows == 0
    assert figures.profit == D(800)
    assert figures.twr == D("0.2")  # 800 / 4000


def test_a_sub_period_without_capital_contributes_nothing_to_the_return():
    # Empty portfolio, then a deposit of 1000 (flow), then +10% market move.
    # r1: previous value 0 -> skipped; r2 = 100/1000 = 0.1 -> TWR 0.1; profit = 1100 - 0 - 1000 = 100.
    periods = [Period(D(1000), D(1000), D(0)), Period(D(1100), D(0), D(100))]
    assert time_weighted_return(D(0), periods) == D("0.1")
    figures = range_figures(D(0), periods)
    assert figures.profit == D(100)
    assert figures.pct is None
    assert time_weighted_return(D(0), [Period(D(0))]) is None


def test_an_asset_that_gains_or_loses_its_price_moves_value_as_flow_not_return():
    # 10 XYZ unpriced -> priced at 2: 20 enters as flow, market 0 (no return invented).
    gained = split_change(D(10), None, D(10), D(2))
    assert (gained.flow, gained.market) == (D(20), D(0))
    lost = split_change(D(10), D(2), D(10), None)
    assert (lost.flow, lost.market) == (D(-20), D(0))
    assert split_change(D(10), None, D(12), None).total == 0


def test_allocation_shares_add_up_and_unpriced_is_left_out():
    # ETH 3000 + 1000 (two wallets) = 4000, BTC 1000, XYZ unpriced: total 5000 -> 0.8 / 0.2.
    slices = allocation([("eth", "ETH", D(3000)), ("btc", "BTC", D(1000)), ("eth", "ETH", D(1000)), ("xyz", "XYZ", None)])
    assert [(s.key, s.value, s.share) for s in slices] == [("eth", D(4000), D("0.8")), ("btc", D(1000), D("0.2"))]


def test_values_of_uint256_amounts_are_not_rounded():
    # (2**256 - 1) wei at 3 per ETH = 3 * 115792089237316195423570985008687907853269984665640564039457.584007913129639935
    assert value_of(2**256 - 1, 18, D(3)) == D("347376267711948586270712955026063723559809953996921692118372.752023739388919805")
