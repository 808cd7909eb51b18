"""Uniswap V3 integer maths ported to Python: the library's own boundary values and a real mainnet pool address."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chains.evm.protocols import v3math
from chains.evm.protocols.uniswap_v3 import pool_address


def test_sqrt_ratio_at_the_tick_bounds_equals_tickmath_constants():
    # TickMath.MIN_SQRT_RATIO / MAX_SQRT_RATIO, and tick 0 is exactly 1.0 in Q64.96.
    assert v3math.sqrt_ratio_at_tick(v3math.MIN_TICK) == 4295128739
    assert v3math.sqrt_ratio_at_tick(v3math.MAX_TICK) == 1461446703485210103287273052203988822378723970342
    assert v3math.sqrt_ratio_at_tick(0) == v3math.Q96
    with pytest.raises(ValueError):
        v3math.sqrt_ratio_at_tick(v3math.MAX_TICK + 1)


def test_fee_growth_inside_wraps_like_solidity():
    # Below the range: growth inside is lower.outside - upper.outside, even when that underflows.
    inside = v3math.fee_growth_inside(10, 20, 5, global_x128=100, lower_outside_x128=30, upper_outside_x128=50)
    assert inside == (30 - 50) % 2**256
    assert v3math.uncollected_fees(inside, inside - 2**128, liquidity=3, tokens_owed=7) == 7 + 3


def test_price_of_a_tick_in_human_units():
    assert v3math.price_at_tick(0, 18, 6) == Decimal("1E+12")


def test_pool_address_is_the_create2_address_of_the_real_usdc_weth_pool():
    usdc, weth = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
    factory = "0x1F98431c8aD98523631AE4a59f267346ea31F984"
    assert pool_address(factory, usdc, weth, 3000) == "0x8ad599c3A0ff1De082011EFDDc58f1908eb6e6D8"
