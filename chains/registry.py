"""Chain family -> adapter class. Adding a family is one folder under chains/ and one line here."""

from __future__ import annotations

from importlib import import_module
from typing import Sequence

from chains.base import ChainAdapter, ChainConfig, EndpointConfig, ParsedAddress, RateLimiter, UnsupportedChain

ADAPTERS: dict[str, str] = {
    "evm": "chains.evm.adapter.EvmAdapter",
    "bitcoin": "chains.bitcoin.adapter.BitcoinAdapter",
    "solana": "chains.solana.adapter.SolanaAdapter",
}


def adapter_class(family: str) -> type:
    try:
        dotted = ADAPTERS[family]
    except KeyError:
        raise UnsupportedChain(f"unsupported chain family {family!r}") from None
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(module), name)


def parse_address(family: str, text: str) -> ParsedAddress:
    """Validate a watch-only address or extended public key of ``family`` (no network access).

    Raises ``SecretRefused`` for anything that looks like a private key or seed phrase, whatever the
    family (the message never repeats the input), and ``InvalidAddress`` for anything else invalid.
    """
    from chains.secrets import refuse_secrets

    refuse_secrets(text)
    if family not in ADAPTERS:
        raise UnsupportedChain(f"unsupported chain family {family!r}")
    module = import_module(f"chains.{family}.address")
    return module.parse_address(text.strip())


def adapter_for(
    chain: ChainConfig, endpoints: Sequence[EndpointConfig] = (), *, limiter: RateLimiter | None = None
) -> ChainAdapter:
    """Build the adapter for ``chain``. Raises ``UnsupportedChain`` for an unknown family."""
    return adapter_class(chain.family)(chain, endpoints, limiter=limiter)
