"""The chain families: family name -> adapter class. Adding a family is one folder under chains/ and
one line here; the models' choices, the API schemas, the Celery queues and the demo derive from it."""

from __future__ import annotations

from typing import Sequence

from chains.base import ChainAdapter, ChainConfig, EndpointConfig, ParsedAddress, RateLimiter, UnsupportedChain
from chains.bitcoin.adapter import BitcoinAdapter
from chains.evm.adapter import EvmAdapter
from chains.evm.protocols import PROTOCOLS as EVM_PROTOCOLS
from chains.secrets import refuse_secrets
from chains.solana.adapter import SolanaAdapter
from chains.solana.protocols import PROTOCOLS as SOLANA_PROTOCOLS

FAMILIES: dict[str, type[ChainAdapter]] = {
    "evm": EvmAdapter,
    "bitcoin": BitcoinAdapter,
    "solana": SolanaAdapter,
}

FAMILY_CHOICES: list[tuple[str, str]] = [(name, cls.label) for name, cls in FAMILIES.items()]

# DeFi protocols per family (each family's protocols/ registry): what admins can configure on a chain.
PROTOCOLS: dict[str, dict[str, type]] = {"evm": EVM_PROTOCOLS}
PROTOCOL_CHOICES: list[tuple[str, str]] = sorted(
    {(name, getattr(cls, "label", name)) for registry in PROTOCOLS.values() for name, cls in registry.items()})


# Every protocol a position can name (those above plus Solana's, which need no deployment row): display names.
_PROTOCOL_LABELS: dict[str, str] = {
    name: getattr(cls, "label", name) for registry in (EVM_PROTOCOLS, SOLANA_PROTOCOLS) for name, cls in registry.items()}


def protocol_label(name: str) -> str:
    """A protocol's display name (``aave_v3`` -> ``Aave V3``); an unknown slug made readable."""
    return _PROTOCOL_LABELS.get(name) or name.replace("_", " ").replace("-", " ").strip().capitalize() or "Other"


def adapter_class(family: str) -> type[ChainAdapter]:
    """The adapter class of ``family``. Raises ``UnsupportedChain`` for an unknown family."""
    try:
        return FAMILIES[family]
    except KeyError:
        raise UnsupportedChain(f"unsupported chain family {family!r}") from None


def parse_address(family: str, text: str) -> ParsedAddress:
    """Validate a watch-only address or extended public key of ``family`` (no network access).

    Raises ``SecretRefused`` for anything that looks like a private key or seed phrase, whatever the
    family (the message never repeats the input), ``UnsupportedChain`` for an unknown family and
    ``InvalidAddress`` for anything else invalid.
    """
    refuse_secrets(text)
    return adapter_class(family).parse_address(text.strip())


def adapter_for(
    chain: ChainConfig, endpoints: Sequence[EndpointConfig] = (), *, limiter: RateLimiter | None = None
) -> ChainAdapter:
    """Build the adapter for ``chain``. Raises ``UnsupportedChain`` for an unknown family."""
    return adapter_class(chain.family)(chain, endpoints, limiter=limiter)
