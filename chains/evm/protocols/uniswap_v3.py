"""Uniswap V3 positions (NonfungiblePositionManager NFTs): amounts at the pool's price, uncollected fees, range."""

from __future__ import annotations

from decimal import Decimal, localcontext
from functools import lru_cache
from typing import Any

from eth_utils import keccak

from chains.base import Position, PositionLeg
from chains.evm import abi
from chains.evm.protocols import v3math
from chains.evm.protocols.base import (Batch, EvmProtocol, ProtocolContext, ProtocolDataError, Reads, address_of, signed,
                                       unsigned, words)

POSITIONS = abi.selector("positions(uint256)")
TOKEN_OF_OWNER_BY_INDEX = abi.selector("tokenOfOwnerByIndex(address,uint256)")
SLOT0 = abi.selector("slot0()")
FEE_GROWTH_GLOBAL0 = abi.selector("feeGrowthGlobal0X128()")
FEE_GROWTH_GLOBAL1 = abi.selector("feeGrowthGlobal1X128()")
TICKS = abi.selector("ticks(int24)")
# keccak of UniswapV3Pool's creation code (v3-core 1.0.x): the same on every chain Uniswap deployed to.
POOL_INIT_CODE_HASH = "0xe34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"
MAX_POSITIONS_PER_WALLET = 1000
PRICE_DIGITS = 18


def pool_address(factory: str, token0: str, token1: str, fee: int, init_code_hash: str = POOL_INIT_CODE_HASH) -> str:
    """PoolAddress.computeAddress: the CREATE2 address of the (token0, token1, fee) pool."""
    salt = keccak(abi.address_word(token0) + abi.address_word(token1) + abi.uint_word(fee))
    digest = keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + bytes.fromhex(init_code_hash[2:]))
    return address_of(int.from_bytes(digest[12:], "big"))


def _tick_word(tick: int) -> bytes:
    return (tick % (1 << 256)).to_bytes(32, "big")


class UniswapV3(EvmProtocol):
    """Roles: ``position_manager`` (NonfungiblePositionManager), ``factory``, optionally
    ``pool_init_code_hash`` (a fork's pool creation-code hash).

    Position ids come from the wallets' Transfer logs (the adapter's scan and cursor) and, when the
    manager's ``balanceOf`` says there are more, from ``tokenOfOwnerByIndex``. Amounts are what a
    burn of the whole liquidity would pay at the pool's current price (UniswapV3Pool's own integer
    maths); fees are ``tokensOwed`` plus the fee growth inside the range since the last update.
    """

    name = "uniswap_v3"
    label = "Uniswap V3"
    settings = ("pool_init_code_hash",)
    required = ("position_manager", "factory")

    def __init__(self, contracts: Any) -> None:
        super().__init__(contracts)
        self._pools: dict[tuple[str, str, int], str] = {}
        self._npm = self.address("position_manager")  # checksummed once, not per position

    def nft_contracts(self) -> set[str]:
        return {self.address("position_manager")}

    def read(self, ctx: ProtocolContext) -> Reads:
        npm = self.address("position_manager")
        first = Batch()
        count_i = {w: first.add(npm, abi.call_with_address(abi.BALANCE_OF, w)) for w in ctx.wallets}
        known = {w: {token_id: (first.add(npm, abi.call_with_uint(abi.OWNER_OF, token_id)),
                                first.add(npm, abi.call_with_uint(POSITIONS, token_id)))
                     for token_id in sorted(ctx.nft_ids.get(w, {}).get(npm, set()))} for w in ctx.wallets}
        results = yield first.calls

        positions: dict[int, tuple[str, dict[str, Any]]] = {}
        to_enumerate: dict[str, int] = {}
        for w in ctx.wallets:
            ids = ctx.nft_ids.setdefault(w, {}).setdefault(npm, set())
            for token_id, (own_i, pos_i) in known[w].items():
                holder = abi.decode_address(results[own_i].data) if results[own_i].ok else None
                if holder != w.lower():
                    ids.discard(token_id)  # moved away or burned
                    continue
                self._parse_position(ctx, w, token_id, results[pos_i], positions)
            count = words(results[count_i[w]], 1)
            if count is None:
                ctx.problem(self.name, "position_read_failed", "balanceOf of the position manager failed", npm)
                continue
            if count[0] > len(ids):
                to_enumerate[w] = min(count[0], MAX_POSITIONS_PER_WALLET)

        # Later rounds: enumerate ids the logs did not show, read their positions, then their pools.
        pools: dict[str, dict[str, Any]] = {}
        new_ids: dict[int, str] = {}
        while True:
            batch = Batch()
            enum_i = {(w, i): batch.add(npm, TOKEN_OF_OWNER_BY_INDEX + abi.address_word(w) + abi.uint_word(i))
                      for w, n in to_enumerate.items() for i in range(n)}
            pos_i = {token_id: batch.add(npm, abi.call_with_uint(POSITIONS, token_id)) for token_id in new_ids}
            members: dict[str, list[dict[str, Any]]] = {}
            for _, p in positions.values():
                if p["pool"] not in pools:
                    members.setdefault(p["pool"], []).append(p)
            pool_i = {pool: self._plan_pool(batch, pool, group) for pool, group in members.items()}
            finish = ctx.plan_assets(batch, [t for _, p in positions.values() for t in (p["token0"], p["token1"])])
            if not batch.calls:
                break
            results = yield batch.calls
            assets = finish(results)
            for token_id, i in pos_i.items():
                self._parse_position(ctx, new_ids[token_id], token_id, results[i], positions)
            new_ids = {}
            for (w, _), i in enum_i.items():
                token_id = words(results[i], 1)
                if token_id is None:
                    ctx.problem(self.name, "position_read_failed", "tokenOfOwnerByIndex failed", npm)
                    continue
                ctx.nft_ids[w][npm].add(token_id[0])
                if token_id[0] not in positions:
                    new_ids[token_id[0]] = w
            to_enumerate = {}
            for pool, idx in pool_i.items():
                pools[pool] = self._parse_pool(ctx, pool, idx, results)
        assets = finish([])
        return [p for token_id, (w, data) in sorted(positions.items())
                if (p := self._position(ctx, w, token_id, data, pools.get(data["pool"]), assets)) is not None]

    # ------------------------------------------------------------------ steps

    def _parse_position(self, ctx: ProtocolContext, wallet: str, token_id: int, result: Any,
                        out: dict[int, tuple[str, dict[str, Any]]]) -> None:
        w = words(result, 12)
        try:
            if w is None:
                raise ProtocolDataError("positions() did not answer 12 words")
            data = {
                "token0": address_of(w[2]), "token1": address_of(w[3]), "fee": unsigned(w[4], 24),
                "tick_lower": signed(w[5], 24), "tick_upper": signed(w[6], 24), "liquidity": unsigned(w[7], 128),
                "inside0_last": w[8], "inside1_last": w[9], "owed0": unsigned(w[10], 128), "owed1": unsigned(w[11], 128),
            }
            if not v3math.MIN_TICK <= data["tick_lower"] < data["tick_upper"] <= v3math.MAX_TICK:
                raise ProtocolDataError("tick range out of order")
        except ProtocolDataError as exc:
            ctx.problem(self.name, "position_read_failed", f"position {token_id}: {exc}", self.address("position_manager"))
            return
        key = (data["token0"], data["token1"], data["fee"])
        if key not in self._pools:  # one keccak per pool, not per position
            self._pools[key] = pool_address(self.address("factory"), *key,
                                            str(self.contracts.get("pool_init_code_hash") or POOL_INIT_CODE_HASH))
        data["pool"] = self._pools[key]
        out[token_id] = (wallet, data)

    def _plan_pool(self, batch: Batch, pool: str, members: list[dict[str, Any]]) -> dict[str, Any]:
        ticks = sorted({t for p in members for t in (p["tick_lower"], p["tick_upper"])})
        return {"slot0": batch.add(pool, SLOT0), "g0": batch.add(pool, FEE_GROWTH_GLOBAL0),
                "g1": batch.add(pool, FEE_GROWTH_GLOBAL1),
                "ticks": {t: batch.add(pool, TICKS + _tick_word(t)) for t in ticks}}

    def _parse_pool(self, ctx: ProtocolContext, pool: str, idx: dict[str, Any], results: list[Any]) -> dict[str, Any] | None:
        try:
            slot0, g0, g1 = words(results[idx["slot0"]], 7), words(results[idx["g0"]], 1), words(results[idx["g1"]], 1)
            if slot0 is None or g0 is None or g1 is None:
                raise ProtocolDataError("slot0/feeGrowthGlobal did not answer")
            ticks = {}
            for tick, i in idx["ticks"].items():
                info = words(results[i], 8)
                if info is None:
                    raise ProtocolDataError(f"ticks({tick}) did not answer")
                ticks[tick] = (info[2], info[3])
            sqrt_price, tick = unsigned(slot0[0], 160), signed(slot0[1], 24)
            if sqrt_price == 0:
                raise ProtocolDataError("pool is not initialised")
            return {"sqrt_price": sqrt_price, "tick": tick, "g0": g0[0], "g1": g1[0], "ticks": ticks}
        except ProtocolDataError as exc:
            ctx.problem(self.name, "position_read_failed", f"pool skipped: {exc}", pool)
            return None

    def _position(self, ctx: ProtocolContext, wallet: str, token_id: int, p: dict[str, Any], pool: dict[str, Any] | None,
                  assets: dict[str, Any]) -> Position | None:
        a0, a1 = assets.get(p["token0"]), assets.get(p["token1"])
        if pool is None:
            return None  # reported with the pool
        if a0 is None or a1 is None:
            ctx.problem(self.name, "position_read_failed", f"position {token_id}: a token has no usable decimals()", p["pool"])
            return None
        lower, upper, liquidity = p["tick_lower"], p["tick_upper"], p["liquidity"]
        amount0, amount1 = v3math.amounts_for_liquidity(pool["tick"], pool["sqrt_price"], lower, upper, liquidity)
        fees = []
        tick, ticks_lower, ticks_upper = pool["tick"], pool["ticks"][lower], pool["ticks"][upper]
        for side, glob, last, owed in ((0, pool["g0"], p["inside0_last"], p["owed0"]), (1, pool["g1"], p["inside1_last"], p["owed1"])):
            inside = v3math.fee_growth_inside(lower, upper, tick, glob, ticks_lower[side], ticks_upper[side])
            fees.append(v3math.uncollected_fees(inside, last, liquidity, owed))
        if liquidity == 0 and not any(fees):
            return None  # a closed position: an empty NFT
        legs = [PositionLeg(a0, amount0, "supplied"), PositionLeg(a1, amount1, "supplied")]
        legs += [PositionLeg(asset, fee, "fees") for asset, fee in ((a0, fees[0]), (a1, fees[1])) if fee]
        in_range = lower <= pool["tick"] < upper
        npm = self._npm
        return Position(
            owner=wallet, protocol=self.name, kind="liquidity", ref=str(token_id),
            label=f"{self.label} {a0.symbol}/{a1.symbol} {_fee_percent(p['fee'])}% #{token_id}",
            legs=tuple(legs), accounts_for=(f"{npm}:{token_id}",),
            details={
                "token_id": str(token_id), "position_manager": npm, "pool": p["pool"], "fee_tier": p["fee"],
                "liquidity": str(liquidity), "tick_lower": lower, "tick_upper": upper, "tick_current": pool["tick"],
                "in_range": in_range, "uncollected_fees0": str(fees[0]), "uncollected_fees1": str(fees[1]),
                **_range_prices(pool["sqrt_price"], lower, upper, a0.decimals, a1.decimals, a0.symbol, a1.symbol),
            },
        )


@lru_cache(maxsize=256)
def _fee_percent(fee: int) -> str:
    """A fee tier in hundredths of a bip as a percentage: 3000 -> "0.3"."""
    return str(Decimal(fee) / 10000)


@lru_cache(maxsize=4096)  # many positions share a pool's price and a popular range
def _range_prices(sqrt_price: int, lower: int, upper: int, decimals0: int, decimals1: int, symbol0: str, symbol1: str) -> dict[str, str]:
    """The range and the current price in human units, quoted the way round that reads as a number
    above 1 (2,000 USDC per WETH rather than 0.0005 WETH per USDC)."""
    current = v3math.price_at_sqrt(sqrt_price, decimals0, decimals1, PRICE_DIGITS)
    low = v3math.price_at_sqrt(v3math.sqrt_ratio_at_tick(lower), decimals0, decimals1, PRICE_DIGITS)
    high = v3math.price_at_sqrt(v3math.sqrt_ratio_at_tick(upper), decimals0, decimals1, PRICE_DIGITS)
    base, quote = symbol0, symbol1
    if current < 1:
        with localcontext() as ctx:
            ctx.prec = PRICE_DIGITS
            current, low, high = 1 / current, 1 / high, 1 / low
        base, quote = symbol1, symbol0
    return {"price_current": str(current), "price_lower": str(low), "price_upper": str(high),
            "price_unit": f"{quote} per {base}"}
