"""Uniswap V2 (and exact forks): LP tokens held by the wallets -> two legs at the pair's reserves, pool share."""

from __future__ import annotations

from chains.base import Position, PositionLeg
from chains.evm import abi
from chains.evm.address import to_checksum
from chains.evm.protocols.base import Batch, EvmProtocol, ProtocolContext, ProtocolDataError, Reads, address_of, ratio, scaled, unsigned, words

FACTORY = abi.selector("factory()")
TOKEN0 = abi.selector("token0()")
TOKEN1 = abi.selector("token1()")
GET_RESERVES = abi.selector("getReserves()")
TOTAL_SUPPLY = abi.selector("totalSupply()")


class UniswapV2(EvmProtocol):
    """Roles: ``factory`` (and any further ``factory_<fork>`` roles, e.g. a SushiSwap factory).

    An ERC-20 a wallet holds is an LP token of this protocol when its ``factory()`` answers one of
    those factories. Legs are ``lp * reserve / totalSupply`` per token (the pair's own burn maths at
    the current reserves), both ``supplied``.
    """

    name = "uniswap_v2"
    label = "Uniswap V2"
    required = ("factory",)

    def read(self, ctx: ProtocolContext) -> Reads:
        factories = {a for role in self.contracts if role.startswith("factory") for a in self.addresses(role)}
        yield []  # nothing before the balances: LP tokens are found among the tokens held
        candidates = sorted(ctx.held_tokens())
        batch = Batch()
        idx = {t: tuple(batch.add(t, sel) for sel in (FACTORY, TOKEN0, TOKEN1, GET_RESERVES, TOTAL_SUPPLY)) for t in candidates}
        results = yield batch.calls
        pairs: dict[str, tuple[str, str, int, int, int]] = {}
        for token, (f_i, t0_i, t1_i, r_i, s_i) in idx.items():
            factory = abi.decode_address(results[f_i].data) if results[f_i].ok else None
            if factory is None or to_checksum(factory) not in factories:
                continue  # not a pair of ours (most tokens revert here)
            try:
                t0, t1, supply = words(results[t0_i], 1), words(results[t1_i], 1), words(results[s_i], 1)
                reserves = words(results[r_i], 3)
                if None in (t0, t1, supply, reserves):
                    raise ProtocolDataError("token0/token1/getReserves/totalSupply did not answer")
                pairs[token] = (address_of(t0[0]), address_of(t1[0]), unsigned(reserves[0], 112),
                                unsigned(reserves[1], 112), supply[0])
            except ProtocolDataError as exc:
                ctx.problem(self.name, "position_read_failed", f"pair skipped: {exc}", token)
        meta_batch = Batch()
        finish = ctx.plan_assets(meta_batch, [t for p in pairs.values() for t in p[:2]])
        assets = finish((yield meta_batch.calls) if meta_batch.calls else [])
        out: list[Position] = []
        for pair, (t0, t1, r0, r1, supply) in pairs.items():
            a0, a1 = assets.get(t0), assets.get(t1)
            if a0 is None or a1 is None:
                ctx.problem(self.name, "position_read_failed", "a pair token has no usable decimals()", pair)
                continue
            if supply == 0:
                continue
            for wallet in ctx.wallets:
                lp = ctx.held(wallet).get(pair, 0)
                if lp <= 0:
                    continue
                amount0, amount1 = lp * r0 // supply, lp * r1 // supply
                out.append(Position(
                    owner=wallet, protocol=self.name, kind="liquidity", ref=pair,
                    label=f"{self.label} {a0.symbol}/{a1.symbol}",
                    legs=(PositionLeg(a0, amount0, "supplied"), PositionLeg(a1, amount1, "supplied")),
                    details={"pair": pair, "lp_balance": str(lp), "total_supply": str(supply),
                             "pool_share": ratio(lp, supply), "reserve0": scaled(r0, a0.decimals),
                             "reserve1": scaled(r1, a1.decimals), "token0": t0, "token1": t1},
                    accounts_for=(pair,),
                ))
        return out
