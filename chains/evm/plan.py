"""What one read of many wallets plans at one block: the deduplicated calls and their results, and each wallet's state."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from chains.evm import abi
from chains.evm.multicall import CallResult
from chains.evm.protocols.base import Batch


class BalanceRow(NamedTuple):
    """One wallet's ``balanceOf`` calls in a plan: ``tokens[k]`` was planned at index ``start + k``."""

    owner: str
    tokens: list[str]
    start: int


class Plan(Batch):
    """The reads of one fetch, deduplicated: equal (target, calldata) pairs are called once."""

    def __init__(self) -> None:
        super().__init__()
        self.results: Sequence[CallResult] = []

    def add_unique(self, target: str, data: bytes) -> int:
        """Append a call known not to repeat (one balanceOf per wallet and token): no hashing."""
        self.calls.append((target, data))
        return len(self.calls) - 1

    def add_unique_many(self, calls: Iterable[tuple[str, bytes]]) -> int:
        """Append calls known not to repeat; returns the index of the first."""
        start = len(self.calls)
        self.calls.extend(calls)
        return start

    def add_balances_of(self, owner: str, tokens: list[str]) -> BalanceRow:
        """One ``balanceOf(owner)`` per token (``tokens`` must not repeat), appended at C speed (20,000
        tokens are 20,000 calls), all with the same calldata."""
        return BalanceRow(owner, tokens, self.add_unique_many(zip(tokens, repeat(abi.call_with_address(abi.BALANCE_OF, owner)))))

    def __getitem__(self, i: int) -> CallResult:
        return self.results[i]


@dataclass
class WalletState:
    """One wallet during a fetch: what its cursor said plus what the scan found."""

    ref_key: str  # WalletRef.address as the caller gave it (cursor key)
    address: str  # checksummed
    cursor: Mapping[str, Any]
    from_block: int | None = None
    scanned_to: int | None = None
    erc20: set[str] = field(default_factory=set)
    erc721: dict[str, set[int]] = field(default_factory=dict)
    erc1155: dict[str, set[int]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    nft_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
