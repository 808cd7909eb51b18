"""ENS names for EVM wallets: resolve a typed name at add time, keep wallets' verified reverse names fresh."""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterable

from django.core.exceptions import ValidationError

from chains.base import ChainError, InvalidAddress
from portfolio.ratelimit import shared_limiter
from portfolio.models import Chain, Wallet, WalletChain

log = logging.getLogger(__name__)

# Resolving in a web request: each RPC call waits at most this long, on at most this many endpoints,
# so a dead endpoint costs the user seconds, not the endpoint's own (sync) timeout.
LOOKUP_TIMEOUT_S = 4.0
LOOKUP_ENDPOINTS = 2


def ens_chain() -> Chain | None:
    """The chain names are resolved on: the first enabled EVM chain (by sort order) with an ENS registry."""
    return Chain.objects.filter(family="evm", enabled=True).exclude(ens_registry="").order_by("sort_order", "name").first()


def _client(chain: Chain, *, for_request: bool):
    # web3 takes seconds to import: only processes that meet an ENS name pay for it.
    from chains.evm.ens import EnsClient

    endpoints = chain.endpoint_configs()
    if for_request:
        endpoints = [dataclasses.replace(e, timeout_s=min(e.timeout_s, LOOKUP_TIMEOUT_S)) for e in endpoints[:LOOKUP_ENDPOINTS]]
    # The same per-endpoint budget as the syncs (Redis when the broker is): names are read from the same node.
    return EnsClient(chain.to_config(), endpoints, limiter=shared_limiter())


def check_name(text: str) -> str:
    """The ENSIP-15 normal form of a typed name, without asking any chain. Raises ``ValidationError``
    (code ``invalid``) naming what is wrong."""
    from chains.evm.ens import normalize_name

    try:
        return normalize_name(text)
    except InvalidAddress as exc:
        raise ValidationError(_sentence(exc.detail), code="invalid") from None


def resolve_name(text: str) -> tuple[str, str]:
    """``(address, normal name)`` for a typed ENS name, read now on the ENS chain: one bounded lookup
    (registry, then resolver) meant for a web request.

    Raises ``ValidationError``: ``invalid`` (malformed, unknown, no address), ``no_chain`` (no enabled
    EVM chain has an ENS registry), ``ens_unavailable`` (its RPC endpoints did not answer)."""
    name = check_name(text)
    chain = ens_chain()
    if chain is None:
        raise ValidationError(
            "ENS names need an enabled EVM chain with an ENS registry (Ethereum has one): "
            "an administrator has to enable one, or paste the address instead.", code="no_chain")
    try:
        return _client(chain, for_request=True).address(name), name
    except InvalidAddress as exc:
        raise ValidationError(_sentence(exc.detail), code="invalid") from None
    except ChainError as exc:
        log.warning("ENS lookup failed", extra={"chain": chain.slug, "error": exc.detail})
        raise ValidationError(
            f"Could not look up {name}: {chain.name}'s RPC endpoint did not answer. "
            "Nothing was saved; try again in a moment, or paste the address instead.", code="ens_unavailable") from None


def do_refresh_primary_names(wallets: Iterable[Wallet]) -> int:
    """Store each EVM address wallet's verified ENS reverse name (empty when it has none, or its name
    does not resolve back to it), read on the ENS chain in a few calls for all of them. Returns how
    many wallets changed; none without an ENS chain.

    Raises ``ChainError`` when the ENS chain cannot be read (a sync should log it and go on)."""
    evm = [w for w in wallets if w.family == "evm" and w.kind == Wallet.ADDRESS]
    chain = ens_chain() if evm else None
    if chain is None:
        return 0
    names = _client(chain, for_request=False).names({w.address for w in evm})
    changed = []
    for wallet in evm:
        name = names.get(wallet.address) or ""
        if wallet.primary_name != name:
            wallet.primary_name = name
            changed.append(wallet)
    Wallet.objects.bulk_update(changed, ["primary_name"])
    return len(changed)


def refresh_after_sync(wallet_chains: Iterable[WalletChain]) -> int:
    """The sync's hook: after WalletChains of one chain were synced, refresh their wallets' ENS names
    when that chain is the ENS chain (a few more calls for the whole group; other chains: nothing).
    Never raises for the chain: a failure is logged and the names stay as they were. Returns how many
    wallets changed."""
    wallet_chains = list(wallet_chains)
    if not wallet_chains or not wallet_chains[0].chain.ens_registry or ens_chain() != wallet_chains[0].chain:
        return 0
    try:
        return do_refresh_primary_names([wc.wallet for wc in wallet_chains])
    except ChainError as exc:
        log.warning("ENS names not refreshed", extra={"chain": wallet_chains[0].chain.slug, "error": exc.detail})
        return 0


def _sentence(message: str) -> str:
    message = (message or "not a valid ENS name").strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
