"""Liquid staking on EVM: rebasing tokens (stETH: the balance is the ETH) and exchange-rate tokens (wstETH, rETH)."""

from __future__ import annotations

from chains.base import Position, PositionLeg
from chains.evm import abi
from chains.evm.protocols.base import Batch, EvmProtocol, ProtocolContext, Reads, ratio, words

# Role -> the token's own conversion to the staked native coin (None: rebasing, balance is the amount).
# wstETH converts to stETH, which is one-for-one claim on pooled ETH, so its leg is ETH as well.
RATE_FUNCTIONS = {
    "steth": None,
    "wsteth": abi.selector("getStETHByWstETH(uint256)"),
    "reth": abi.selector("getEthValue(uint256)"),
}
LABELS = {"steth": "Lido stETH", "wsteth": "Lido wstETH", "reth": "Rocket Pool rETH"}


class LiquidStaking(EvmProtocol):
    """Roles: ``steth`` (rebasing), ``wsteth`` and ``reth`` (exchange-rate tokens); each an address or a
    list. Legs are the native coin, ``staked``: the balance itself for a rebasing token, the token's own
    rate function applied to the balance otherwise."""

    name = "liquid_staking"
    label = "Liquid staking"

    def _tokens(self) -> dict[str, str]:
        return {t: role for role in RATE_FUNCTIONS for t in self.addresses(role)}

    def balance_tokens(self) -> set[str]:
        return set(self._tokens())

    def read(self, ctx: ProtocolContext) -> Reads:
        tokens = self._tokens()
        first = Batch()
        finish = ctx.plan_assets(first, tokens)
        assets = finish((yield first.calls))
        for t in sorted(ctx.failed_balances & set(tokens)):
            ctx.problem(self.name, "position_read_failed", "balanceOf failed", t)
        held = {(w, t): amount for w in ctx.wallets for t, amount in ctx.held(w).items()
                if t in tokens and t not in ctx.failed_balances}

        batch = Batch()
        rate_i = {key: batch.add(key[1], RATE_FUNCTIONS[tokens[key[1]]] + abi.uint_word(amount))
                  for key, amount in held.items() if RATE_FUNCTIONS[tokens[key[1]]] is not None}
        results = (yield batch.calls) if batch.calls else []
        out: list[Position] = []
        shown: dict[str, tuple[str, str, str, int]] = {}  # token -> label, symbol, model, scale (the same for every wallet)
        native_scale = 10 ** ctx.native.decimals
        for (w, t), amount in held.items():
            if t not in shown:
                role, token = tokens[t], assets.get(t)
                symbol = token.symbol if token else role
                shown[t] = (f"{LABELS[role]} ({symbol})", symbol, "rebasing" if RATE_FUNCTIONS[role] is None else "exchange rate",
                            10 ** (token.decimals if token else 18))
            if (w, t) in rate_i:
                value = words(results[rate_i[(w, t)]], 1)
                if value is None:
                    ctx.problem(self.name, "position_read_failed", "the rate function failed", t)
                    continue
                staked = value[0]
            else:
                staked = amount
            label, symbol, model, scale = shown[t]
            out.append(Position(
                owner=w, protocol=self.name, kind="staking", ref=t, label=label,
                legs=(PositionLeg(ctx.native, staked, "staked"),), accounts_for=(t,),
                details={"token": t, "token_symbol": symbol, "token_balance": str(amount), "model": model,
                         "rate": ratio(staked * scale, amount * native_scale)},
            ))
        return out
