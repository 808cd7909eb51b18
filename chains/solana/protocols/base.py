"""What a Solana protocol module implements, and the context the adapter hands it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from chains.base import AssetRef, ChainConfig, Position, Problem
from chains.solana.accounts import RawAccount
from chains.solana.rpc import Call, CallFailed


@dataclass
class PositionContext:
    """What the adapter read for the whole fetch, given to every protocol after the last round.

    ``epoch``: the cluster's current epoch; ``holdings``: owner -> mint -> amount of fungible tokens
    (non-zero); ``assets``: mint -> its AssetRef; ``accounts``: the accounts the protocols asked for in
    ``account_keys`` (None when absent on chain).
    """

    native: AssetRef
    epoch: int
    holdings: Mapping[str, Mapping[str, int]]
    assets: Mapping[str, AssetRef]
    accounts: Mapping[str, RawAccount | None] = field(default_factory=dict)


class SolanaProtocol:
    """One DeFi or staking protocol. The adapter runs, for every fetch with positions:

    1. ``wallet_calls(address)`` for each wallet and ``fetch_calls()`` once: merged into the adapter's
       first round of batched calls; the parsed answers come back through ``take_wallet`` / ``take_fetch``.
    2. ``account_keys(ctx)``: accounts to read in the second round, with the token mints.
    3. ``positions(ctx, problems)``: the positions, in base units. A protocol account that cannot be
       decoded is a ``Problem`` for this protocol, never an exception: balances still load.
    Calls made ``optional`` come back as ``CallFailed`` when the endpoint refuses them (some providers
    disable ``getProgramAccounts``); ``failed`` turns those into this protocol's problems.
    """

    name = ""

    def __init__(self, chain: ChainConfig) -> None:
        self.chain = chain
        self.problems: list[Problem] = []

    def failed(self, answers: list[Any], subject: str) -> bool:
        """Record a ``protocol_unreadable`` problem if any of ``answers`` failed; True if one did."""
        failures = [a for a in answers if isinstance(a, CallFailed)]
        if failures:
            self.problems.append(Problem("protocol_unreadable", f"{self.name}: {failures[0].reason}"[:300], subject))
        return bool(failures)

    def wallet_calls(self, address: str) -> list[Call]:
        return []

    def take_wallet(self, address: str, answers: list[Any]) -> None:
        pass

    def fetch_calls(self) -> list[Call]:
        return []

    def take_fetch(self, answers: list[Any]) -> None:
        pass

    def account_keys(self, ctx: PositionContext) -> list[str]:
        return []

    def positions(self, ctx: PositionContext, problems: list[Problem]) -> list[Position]:
        raise NotImplementedError
