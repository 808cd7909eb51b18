"""Uniswap V3's integer maths (TickMath, SqrtPriceMath, Tick.getFeeGrowthInside) ported exactly to Python ints."""

from __future__ import annotations

from decimal import Decimal, localcontext
from functools import lru_cache

MIN_TICK = -887272
MAX_TICK = 887272
Q96 = 1 << 96
Q128 = 1 << 128
U256 = 1 << 256
MAX_U256 = U256 - 1

# TickMath.getSqrtRatioAtTick: ratio multipliers for each bit of |tick| (v3-core 1.0.1, unchanged).
_TICK_FACTORS = (
    (0x2, 0xfff97272373d413259a46990580e213a),
    (0x4, 0xfff2e50f5f656932ef12357cf3c7fdcc),
    (0x8, 0xffe5caca7e10e4e61c3624eaa0941cd0),
    (0x10, 0xffcb9843d60f6159c9db58835c926644),
    (0x20, 0xff973b41fa98c081472e6896dfb254c0),
    (0x40, 0xff2ea16466c96a3843ec78b326b52861),
    (0x80, 0xfe5dee046a99a2a811c461f1969c3053),
    (0x100, 0xfcbe86c7900a88aedcffc83b479aa3a4),
    (0x200, 0xf987a7253ac413176f2b074cf7815e54),
    (0x400, 0xf3392b0822b70005940c7a398e4b70f3),
    (0x800, 0xe7159475a2c29b7443b29c7fa6e889d9),
    (0x1000, 0xd097f3bdfd2022b8845ad8f792aa5825),
    (0x2000, 0xa9f746462d870fdf8a65dc1f90e061e5),
    (0x4000, 0x70d869a156d2a1b890bb3df62baf32f7),
    (0x8000, 0x31be135f97d08fd981231505542fcfa6),
    (0x10000, 0x9aa508b5b7a84e1c677de54f3e99bc9),
    (0x20000, 0x5d6af8dedb81196699c329225ee604),
    (0x40000, 0x2216e584f5fa1ea926041bedfe98),
    (0x80000, 0x48a170391f7dc42444e8fa2),
)


@lru_cache(maxsize=65536)  # positions share their range bounds; the result is an int, safe to share
def sqrt_ratio_at_tick(tick: int) -> int:
    """TickMath.getSqrtRatioAtTick: sqrt(1.0001^tick) * 2^96, rounded up. Raises ValueError outside the tick range."""
    abs_tick = abs(tick)
    if abs_tick > MAX_TICK:
        raise ValueError(f"tick {tick} out of range")
    ratio = 0xfffcb933bd6fad37aa2d162d1a594001 if abs_tick & 0x1 else 0x100000000000000000000000000000000
    for bit, factor in _TICK_FACTORS:
        if abs_tick & bit:
            ratio = (ratio * factor) >> 128
    if tick > 0:
        ratio = MAX_U256 // ratio
    return (ratio >> 32) + (0 if ratio % (1 << 32) == 0 else 1)


def amount0_delta(sqrt_a: int, sqrt_b: int, liquidity: int) -> int:
    """SqrtPriceMath.getAmount0Delta(..., roundUp=false): what a burn pays out in token0."""
    if sqrt_a > sqrt_b:
        sqrt_a, sqrt_b = sqrt_b, sqrt_a
    if sqrt_a == 0:
        raise ValueError("zero sqrt price")
    return ((liquidity << 96) * (sqrt_b - sqrt_a) // sqrt_b) // sqrt_a


def amount1_delta(sqrt_a: int, sqrt_b: int, liquidity: int) -> int:
    """SqrtPriceMath.getAmount1Delta(..., roundUp=false): what a burn pays out in token1."""
    if sqrt_a > sqrt_b:
        sqrt_a, sqrt_b = sqrt_b, sqrt_a
    return liquidity * (sqrt_b - sqrt_a) // Q96


def amounts_for_liquidity(tick_current: int, sqrt_price: int, tick_lower: int, tick_upper: int, liquidity: int) -> tuple[int, int]:
    """Token amounts of ``liquidity`` in [tick_lower, tick_upper) as UniswapV3Pool._modifyPosition pays
    them on a burn: decided by the pool's current *tick*, priced at its current sqrtPriceX96."""
    sqrt_lower, sqrt_upper = sqrt_ratio_at_tick(tick_lower), sqrt_ratio_at_tick(tick_upper)
    if tick_current < tick_lower:
        return amount0_delta(sqrt_lower, sqrt_upper, liquidity), 0
    if tick_current < tick_upper:
        return amount0_delta(sqrt_price, sqrt_upper, liquidity), amount1_delta(sqrt_lower, sqrt_price, liquidity)
    return 0, amount1_delta(sqrt_lower, sqrt_upper, liquidity)


def fee_growth_inside(tick_lower: int, tick_upper: int, tick_current: int, global_x128: int,
                      lower_outside_x128: int, upper_outside_x128: int) -> int:
    """Tick.getFeeGrowthInside for one token, with Solidity 0.7's wrapping uint256 subtraction."""
    below = lower_outside_x128 if tick_current >= tick_lower else (global_x128 - lower_outside_x128) % U256
    above = upper_outside_x128 if tick_current < tick_upper else (global_x128 - upper_outside_x128) % U256
    return (global_x128 - below - above) % U256


def uncollected_fees(inside_now_x128: int, inside_last_x128: int, liquidity: int, tokens_owed: int) -> int:
    """NonfungiblePositionManager's tokensOwed after a poke: owed + mulDiv(growth since last, liquidity, Q128),
    truncated to uint128 as the contract does."""
    return tokens_owed + ((((inside_now_x128 - inside_last_x128) % U256) * liquidity // Q128) % (1 << 128))


def price_at_sqrt(sqrt_price_x96: int, decimals0: int, decimals1: int, digits: int = 40) -> Decimal:
    """Human price of token0 in token1 units: (sqrtP / 2^96)^2 * 10^(decimals0 - decimals1)."""
    with localcontext() as ctx:
        ctx.prec = digits + 40
        value = (Decimal(sqrt_price_x96) * Decimal(sqrt_price_x96) / Decimal(1 << 192)).scaleb(decimals0 - decimals1)
        ctx.prec = digits
        return +value


def price_at_tick(tick: int, decimals0: int, decimals1: int) -> Decimal:
    """Human price of token0 in token1 at a tick boundary (from the exact sqrt ratio of the tick)."""
    return price_at_sqrt(sqrt_ratio_at_tick(tick), decimals0, decimals1)
