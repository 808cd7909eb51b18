"""Backends the Bitcoin adapter reads address balances from: bcoin's HTTP API (batched) and Esplora."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence


@dataclass(frozen=True)
class ChainTx:
    """A confirmed transaction as history needs it: block ``height`` and block ``time`` (unix), and
    ``inputs`` (the spent coins) and ``outputs`` as ``(address or "", satoshis)``; a coinbase has no
    inputs. Addresses are in the form the app uses (``bcrt1p...`` in bech32m)."""

    txid: str
    height: int
    time: int
    inputs: tuple[tuple[str, int], ...]
    outputs: tuple[tuple[str, int], ...]


@dataclass
class AddressStats:
    """What one address holds: confirmed sats, pending change from the mempool (may be negative),
    unspent outputs (mempool included), and the ids of the transactions touching it (``txids``) or,
    when the backend only gives a count, ``tx_count``."""

    confirmed: int = 0
    unconfirmed: int = 0
    utxo_count: int = 0
    txids: set[str] | None = field(default_factory=set)
    tx_count: int = 0

    @property
    def has_history(self) -> bool:
        return bool(self.txids) or self.tx_count > 0


class Backend(Protocol):
    """Reads chain state for many addresses. Every method raises ``ChainError`` (transient when no
    endpoint answered properly) and never returns partial results."""

    label: str
    request_count: int
    batched: bool  # many addresses per request (bcoin) or one (Esplora)

    def tip_height(self) -> int: ...

    def address_stats(self, addresses: Sequence[str]) -> dict[str, AddressStats]:
        """Stats for every address asked (an address without history gets empty stats)."""
        ...

    def address_txs(self, addresses: Sequence[str]) -> list[ChainTx]:
        """Every confirmed transaction touching any of ``addresses`` (each once, mempool left out)."""
        ...
