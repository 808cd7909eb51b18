"""Aave V3: supplied (aToken) and borrowed (variable and stable debt) per reserve, and the account's health."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chains.base import Position, PositionLeg
from chains.evm import abi
from chains.evm.protocols.base import (MAX_UINT256, Batch, EvmProtocol, ProtocolContext, ProtocolDataError, Reads,
                                       address_of, decode_address_array, scaled, words)

GET_RESERVES_LIST = abi.selector("getReservesList()")
GET_RESERVE_DATA = abi.selector("getReserveData(address)")
GET_USER_ACCOUNT_DATA = abi.selector("getUserAccountData(address)")
GET_USER_CONFIGURATION = abi.selector("getUserConfiguration(address)")
RAY = Decimal(10) ** 27
ZERO = "0x0000000000000000000000000000000000000000"


class AaveV3(EvmProtocol):
    """Roles: ``pool`` (the Pool proxy; ``addresses_provider`` and ``data_provider`` are kept for
    reference), optionally ``base_currency_decimals`` (8 for Aave's USD markets).

    Reads: round 1 (with the balances) ``getUserConfiguration`` per wallet and ``getReservesList``;
    round 2 ``getReserveData`` per reserve (aToken, debt tokens, rates, the configuration with LTV /
    liquidation threshold) and ``getUserAccountData`` of the accounts whose configuration is not
    empty; round 3 the aToken and debt-token balances of the reserves a wallet's configuration flags,
    or whose tokens the wallet was seen to hold.
    """

    name = "aave_v3"
    label = "Aave V3"
    settings = ("base_currency_decimals",)
    required = ("pool",)

    def read(self, ctx: ProtocolContext) -> Reads:
        pool = self.address("pool")
        base_decimals = int(self.contracts.get("base_currency_decimals") or 8)
        first = Batch()
        config_i = {w: first.add(pool, abi.call_with_address(GET_USER_CONFIGURATION, w)) for w in ctx.wallets}
        list_i = first.add(pool, GET_RESERVES_LIST)
        results = yield first.calls
        reserves = decode_address_array(results[list_i])
        configs = {w: words(results[i], 1) for w, i in config_i.items()}
        if reserves is None or any(c is None for c in configs.values()):
            ctx.problem(self.name, "position_read_failed", "getReservesList/getUserConfiguration did not answer", pool)
            return []

        # getUserAccountData walks every reserve of the account: only asked of accounts that have one.
        second = Batch()
        account_i = {w: second.add(pool, abi.call_with_address(GET_USER_ACCOUNT_DATA, w)) for w, c in configs.items() if c[0]}
        data_i = {r: second.add(pool, abi.call_with_address(GET_RESERVE_DATA, r)) for r in reserves}
        finish = ctx.plan_assets(second, reserves)
        results = yield second.calls
        assets = finish(results)
        accounts = {w: words(results[i], 6) for w, i in account_i.items()}
        if any(a is None for a in accounts.values()):
            ctx.problem(self.name, "position_read_failed", "getUserAccountData did not answer six words", pool)
            return []
        info: dict[str, dict[str, Any]] = {}
        for reserve, i in data_i.items():
            try:
                info[reserve] = _reserve_data(results[i])
            except ProtocolDataError as exc:
                ctx.problem(self.name, "position_read_failed", f"reserve skipped: {exc}", reserve)
        token_reserve = {token: (reserve, kind) for reserve, d in info.items()
                         for kind in ("a_token", "variable_debt", "stable_debt") if (token := d[kind]) != ZERO}

        third = Batch()
        balance_i: dict[str, dict[str, int]] = {}
        kinds = ("a_token", "variable_debt", "stable_debt")
        reserve_tokens = {r: [t for kind in kinds if (t := d[kind]) != ZERO] for r, d in info.items()}
        reserve_bits = [(r, 2 * d["id"]) for r, d in info.items()]
        for w in ctx.wallets:
            config = configs[w][0]
            flagged = {r for r, bit in reserve_bits if (config >> bit) & 3}
            flagged |= {token_reserve[t][0] for t in ctx.held(w) if t in token_reserve}
            if not flagged:
                continue
            data = abi.call_with_address(abi.BALANCE_OF, w)
            mine = balance_i[w] = {}
            for reserve in sorted(flagged):
                for token in reserve_tokens[reserve]:
                    mine[token] = third.add(token, data)
        results = (yield third.calls) if third.calls else []

        # The rates shown per reserve: the same strings for every wallet, formatted once (when first used).
        reserve_rates: dict[str, dict[str, str]] = {}
        out: list[Position] = []
        for w in ctx.wallets:
            legs: list[PositionLeg] = []
            tokens: list[str] = []
            rates: dict[str, dict[str, str]] = {}
            for token, i in balance_i.get(w, {}).items():
                amount = words(results[i], 1)
                reserve, kind = token_reserve[token]
                if amount is None:
                    ctx.problem(self.name, "position_read_failed", f"balanceOf failed on the {kind.replace('_', ' ')} token", token)
                    continue
                asset = assets.get(reserve)
                if asset is None:
                    ctx.problem(self.name, "position_read_failed", "reserve asset has no usable decimals()", reserve)
                    continue
                if amount[0] == 0:
                    continue
                tokens.append(token)
                if kind == "a_token":
                    legs.append(PositionLeg(asset, amount[0], "supplied"))
                else:
                    legs.append(PositionLeg(asset, amount[0], "borrowed", "variable debt" if kind == "variable_debt" else "stable debt"))
                if reserve not in reserve_rates:
                    d = info[reserve]
                    reserve_rates[reserve] = {"supply_apr": _percent(d["liquidity_rate"]), "variable_borrow_apr": _percent(d["variable_rate"]),
                                              "ltv": _bps(d["ltv"]), "liquidation_threshold": _bps(d["threshold"])}
                rates[asset.symbol] = dict(reserve_rates[reserve])  # each position its own dict
            if not legs:
                continue
            # No configuration bit set (a non-collateral supply only): the account data would be zeros.
            collateral, debt, available, threshold, ltv, hf = accounts.get(w) or (0, 0, 0, 0, 0, MAX_UINT256)
            health = None if hf == MAX_UINT256 or debt == 0 else Decimal(hf).scaleb(-18)
            out.append(Position(
                owner=w, protocol=self.name, kind="lending", ref=pool, label=self.label,
                legs=tuple(sorted(legs, key=lambda leg: (leg.role != "supplied", leg.asset.symbol, leg.label))),
                health_factor=health, accounts_for=tuple(sorted(tokens)),
                details={
                    "pool": pool, "total_collateral_usd": scaled(collateral, base_decimals),
                    "total_debt_usd": scaled(debt, base_decimals), "available_borrows_usd": scaled(available, base_decimals),
                    "ltv": _bps(ltv), "liquidation_threshold": _bps(threshold),
                    "health_factor": str(health) if health is not None else None, "reserves": rates,
                },
            ))
        return out


def _reserve_data(result: Any) -> dict[str, Any]:
    """getReserveData's 15-word struct (v3.0 and the legacy layout of later versions)."""
    w = words(result, 15)
    if w is None:
        raise ProtocolDataError("getReserveData did not answer its 15-word struct")
    config = w[0]
    if w[7] > 127:
        raise ProtocolDataError("reserve id out of range")
    return {"ltv": config & 0xFFFF, "threshold": (config >> 16) & 0xFFFF, "liquidity_rate": w[2], "variable_rate": w[4],
            "id": w[7], "a_token": address_of(w[8]), "stable_debt": address_of(w[9]), "variable_debt": address_of(w[10])}


def _bps(value: int) -> str:
    """Basis points as a percentage string: 8250 -> "82.50"."""
    return str(Decimal(value).scaleb(-2))


def _percent(ray: int) -> str:
    return str((Decimal(ray) / RAY * 100).quantize(Decimal("0.0001")))
