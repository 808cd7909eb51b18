"""Values stay exact at any size: $10**15 totals with 18 places and uint256 amounts times prices are
stored and summed without an error or a silently rounded digit, whatever the thread's decimal context."""

from __future__ import annotations

from datetime import datetime, timezone as tz
from decimal import Decimal as D, localcontext

import pytest

from portfolio.models import Asset, Chain, Holding, ScopeValue, ValuePoint, Wallet, WalletChain, WalletValue
from portfolio.services.prices import set_manual_price
from portfolio.services.snapshots import do_snapshot
from portfolio.valuation import exact, to_units

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=tz.utc)
UINT256_MAX = 2**256 - 1


@pytest.fixture
def wallet(owner):
    w = Wallet.objects.create(owner=owner, family="evm", address="0x" + "ab" * 20, label="whale")
    WalletChain.objects.create(wallet=w, chain=Chain.objects.get(slug="ethereum"))
    return w


def _token(symbol: str, decimals: int) -> Asset:
    return Asset.objects.create(chain=Chain.objects.get(slug="ethereum"), kind="fungible", address=f"0x{symbol.encode().hex():0>40}",
                                symbol=symbol, decimals=decimals, standard="erc20")


def _hold(wallet, asset, amount: int) -> None:
    Holding.objects.create(wallet_chain=wallet.wallet_chains.get(), asset=asset, amount=amount)


def test_a_ten_to_the_fifteen_dollar_total_with_18_places_is_stored_to_the_last_digit(wallet):
    # 10**15 whole units plus one base unit, at a price with 18 places: the value has 36 places and is
    # rounded to the column's 18 (half-even), the sum of 34 significant digits is kept.
    token = _token("BIG", 18)
    _hold(wallet, token, 10**15 * 10**18 + 1)
    price = D("1.000000000000000001")
    set_manual_price(token, price, at=T0)
    do_snapshot([wallet.id], at=T0)
    with exact():
        expected = to_units(10**15 * 10**18 + 1, 18) * price
    assert expected.as_tuple().exponent == -36
    stored = ValuePoint.objects.get(wallet=wallet).value
    assert stored == D("1000000000000000.001000000000000001")  # 10**15 + 1e-3 + 1e-18 (+ 1e-36 rounded off)
    assert WalletValue.objects.get(wallet=wallet, at=T0).value == stored
    assert ScopeValue.objects.filter(owner=wallet.owner, at=T0).values_list("value", flat=True).get() == stored


def test_uint256_max_base_units_are_valued_and_summed_exactly(wallet):
    token = _token("MAX", 0)
    _hold(wallet, token, UINT256_MAX)
    set_manual_price(token, D("0.25"), at=T0)
    do_snapshot([wallet.id], at=T0)
    with exact():
        expected = D(UINT256_MAX) / 4  # 78 digits and 2 places
    assert str(expected).endswith("9983.75")
    point = ValuePoint.objects.get(wallet=wallet)
    assert point.amount == UINT256_MAX and point.value == expected
    assert WalletValue.objects.get(wallet=wallet, at=T0).value == expected


def test_rounding_to_the_column_does_not_depend_on_the_callers_context(wallet):
    token = _token("ODD", 18)
    with exact():
        third = D(10**15) / 3  # 300 significant digits
    with localcontext() as ctx:
        ctx.prec = 28  # the default a worker thread starts with
        point = ValuePoint.objects.create(wallet=wallet, chain=token.chain, asset=token, at=T0, amount=1, value=third,
                                          flow_value=third, market_value=D(0))
    point.refresh_from_db()
    assert point.value == D("333333333333333.333333333333333333")
