"""What one read of many wallets plans at one block: the deduplicated calls and their results, and each wallet's state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from chains.base import AssetRef
from chains.evm import abi
from chains.evm.abi import CallRuns, SameCalldata
from chains.evm.multicall import CallResult
from chains.evm.protocols.base import Batch


class BalanceRow(NamedTuple):
    """One wallet's ``balanceOf`` calls in a plan: ``tokens[k]`` was planned at index ``start + k``;
    ``assets[k]``, when given, is its listed ``AssetRef`` (every token of the row is listed)."""

    owner: str
    tokens: list[str]
    start: int
    assets: Sequence[AssetRef] | None = None


class CallList(CallRuns):
    """A plan's calls in order, as they were added: runs of single ``(target, calldata)`` pairs, and
    whole ``SameCalldata`` runs (a wallet's 20,000 ``balanceOf`` calls are one object, not 20,000
    pairs). A slice within one run is a slice of that run (a chunk of ``balanceOf`` calls stays a
    ``SameCalldata``, which the encoder lays out at C speed); a slice across runs is a ``CallRuns``,
    laid out run by run."""

    __slots__ = ()

    def append(self, call: tuple[str, bytes]) -> None:
        if not self._runs or isinstance(self._runs[-1], SameCalldata):
            self._runs.append([])
            self._starts.append(self._len)
        self._runs[-1].append(call)  # type: ignore[union-attr]
        self._len += 1

    def extend(self, calls: Iterable[tuple[str, bytes]]) -> None:
        if isinstance(calls, SameCalldata):
            if calls:
                self._runs.append(calls)
                self._starts.append(self._len)
                self._len += len(calls)
            return
        for call in calls:
            self.append(call)


class Plan(Batch):
    """The reads of one fetch, deduplicated: equal (target, calldata) pairs are called once."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: CallList = CallList()  # type: ignore[assignment]
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

    def add_balances_of(self, owner: str, tokens: list[str], assets: Sequence[AssetRef] | None = None) -> BalanceRow:
        """One ``balanceOf(owner)`` per token (``tokens`` must not repeat), all with the same calldata:
        kept as one ``SameCalldata`` run (20,000 tokens are 20,000 calls, and no pair each).
        ``assets``: the tokens' listed ``AssetRef``s in the same order, when all are listed."""
        calls = SameCalldata(tokens, abi.call_with_address(abi.BALANCE_OF, owner))
        return BalanceRow(owner, tokens, self.add_unique_many(calls), assets)

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
