"""ERC-4626 vaults: registered vaults and any held token answering asset(); shares -> assets via convertToAssets."""

from __future__ import annotations

from chains.base import Position, PositionLeg
from chains.evm import abi
from chains.evm.protocols.base import Batch, EvmProtocol, ProtocolContext, ProtocolDataError, Reads, address_of, ratio, words

ASSET = abi.selector("asset()")
CONVERT_TO_ASSETS = abi.selector("convertToAssets(uint256)")


class Erc4626(EvmProtocol):
    """Roles: ``vaults`` (a list of vault addresses; any other role names one vault too).

    Registered vaults are read for every wallet; any other ERC-20 a wallet holds is asked ``asset()``
    and, when it answers an address, treated as a vault as well. The leg is ``convertToAssets(shares)``,
    the vault's own conversion (what ``redeem`` would pay before fees).
    """

    name = "erc4626"
    label = "ERC-4626 vault"

    def balance_tokens(self) -> set[str]:
        return {a for role in self.contracts for a in self.addresses(role)}

    def read(self, ctx: ProtocolContext) -> Reads:
        registered = sorted(self.balance_tokens())
        first = Batch()
        asset_i = {v: first.add(v, ASSET) for v in registered}
        results = yield first.calls
        vaults: dict[str, str] = {}
        shares: dict[tuple[str, str], int] = {}
        for v, i in asset_i.items():
            try:
                if v in ctx.failed_balances:
                    raise ProtocolDataError("balanceOf failed")
                vaults[v] = _asset(results[i])
            except ProtocolDataError as exc:
                ctx.problem(self.name, "position_read_failed", f"vault skipped: {exc}", v)
                continue
            for w in ctx.wallets:
                if (amount := ctx.held(w).get(v, 0)) > 0:
                    shares[(w, v)] = amount

        # Held tokens that are vaults although nobody registered them: asked asset() (most revert).
        probe = Batch()
        probe_i = {t: probe.add(t, ASSET) for t in sorted(ctx.held_tokens() - set(registered))}
        results = (yield probe.calls) if probe.calls else []
        for token, i in probe_i.items():
            try:
                vaults[token] = _asset(results[i])
            except ProtocolDataError:
                continue  # not a vault
            for w in ctx.wallets:
                if (held := ctx.held(w).get(token, 0)) > 0:
                    shares[(w, token)] = held

        batch = Batch()
        convert_i = {key: batch.add(key[1], abi.call_with_uint(CONVERT_TO_ASSETS, amount)) for key, amount in shares.items()}
        finish = ctx.plan_assets(batch, [vaults[v] for _, v in shares] + [v for _, v in shares])
        results = (yield batch.calls) if batch.calls else []
        assets = finish(results)
        out: list[Position] = []
        shown: dict[str, tuple[str, int | None, int, int]] = {}  # vault -> label, share decimals, scales (per vault, not per wallet)
        for (w, v), i in convert_i.items():
            amount = words(results[i], 1)
            underlying, share_token = assets.get(vaults[v]), assets.get(v)
            if amount is None or underlying is None:
                if v in registered:
                    ctx.problem(self.name, "position_read_failed", "convertToAssets or the asset's decimals() failed", v)
                continue
            if v not in shown:
                share_decimals = share_token.decimals if share_token else None
                shown[v] = (f"{share_token.symbol if share_token else v} vault", share_decimals,
                            10 ** (share_decimals or 0), 10 ** underlying.decimals)
            label, share_decimals, share_scale, asset_scale = shown[v]
            out.append(Position(
                owner=w, protocol=self.name, kind="vault", ref=v, label=label,
                legs=(PositionLeg(underlying, amount[0], "supplied"),), accounts_for=(v,),
                details={"vault": v, "asset": vaults[v], "shares": str(shares[(w, v)]), "share_decimals": share_decimals,
                         "assets_per_share": ratio(amount[0] * share_scale, shares[(w, v)] * asset_scale),
                         "registered": v in registered},
            ))
        return out


def _asset(result) -> str:
    w = words(result, 1)
    if w is None or w[0] == 0:
        raise ProtocolDataError("asset() did not answer an address")
    return address_of(w[0])
