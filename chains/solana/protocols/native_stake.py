"""Native stake accounts (StakeStateV2, bincode) as positions whose legs say what the lamports are.

Legs: ``staked`` (delegated and active), ``activating`` / ``deactivating`` (delegated, changing state this
epoch), ``inactive`` (undelegated, fully deactivated, or lamports above the delegation: withdrawable)
and ``rent_reserve`` (the rent-exempt minimum that stays in the account). Never "rewards": earned
rewards are already part of the delegation. The state is decided from the activation and deactivation
epochs against the current epoch (``getEpochInfo``); the cluster-wide warm-up/cool-down rate limit,
which can stretch a very large (de)activation over several epochs, is not modelled.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from chains.base import Position, PositionLeg, Problem
from chains.base58 import b58encode
from chains.solana.accounts import RawAccount, parse_keyed_accounts
from chains.solana.protocols.base import PositionContext, SolanaProtocol
from chains.solana.rpc import Call

STAKE_PROGRAM_ID = "Stake11111111111111111111111111111111111111"
STAKER_OFFSET = 12  # u32 state tag + u64 rent_exempt_reserve
WITHDRAWER_OFFSET = 44
U64_MAX = 2**64 - 1


class StakeError(ValueError):
    """The account is not a well-formed stake account."""


@dataclass(frozen=True)
class StakeAccount:
    """``state`` is ``initialized`` (not delegated) or ``delegated``; epochs are None when unset
    (deactivation_epoch is u64::MAX while the stake is not deactivating)."""

    state: str
    rent_exempt_reserve: int
    staker: str
    withdrawer: str
    lockup_unix_timestamp: int
    lockup_epoch: int
    lockup_custodian: str
    vote_account: str | None = None
    delegated: int = 0
    activation_epoch: int | None = None
    deactivation_epoch: int | None = None


def parse_stake(data: bytes) -> StakeAccount | None:
    """Parse a stake account; None for Uninitialized and RewardsPool accounts.

    Raises ``StakeError`` for an unknown state or truncated data.
    """
    data = bytes(data)
    if len(data) < 4:
        raise StakeError("stake account is too short")
    (tag,) = struct.unpack_from("<I", data, 0)
    if tag in (0, 3):
        return None
    if tag not in (1, 2):
        raise StakeError(f"unknown stake state {tag}")
    if len(data) < 124 or (tag == 2 and len(data) < 196):
        raise StakeError("stake account is truncated")
    reserve = struct.unpack_from("<Q", data, 4)[0]
    staker, withdrawer = b58encode(data[12:44]), b58encode(data[44:76])
    ts, epoch = struct.unpack_from("<qQ", data, 76)
    custodian = b58encode(data[92:124])
    if tag == 1:
        return StakeAccount("initialized", reserve, staker, withdrawer, ts, epoch, custodian)
    vote = b58encode(data[124:156])
    delegated, activation, deactivation = struct.unpack_from("<QQQ", data, 156)
    return StakeAccount("delegated", reserve, staker, withdrawer, ts, epoch, custodian, vote, delegated,
                        None if activation == U64_MAX else activation,
                        None if deactivation == U64_MAX else deactivation)


# Leg roles (PositionLeg.role), at most 12 characters (the stored column).
STAKED, ACTIVATING, DEACTIVATING, INACTIVE, RENT_RESERVE = "staked", "activating", "deactivating", "inactive", "rent_reserve"
_ROLE_ORDER = (STAKED, ACTIVATING, DEACTIVATING, INACTIVE, RENT_RESERVE)


def activation_state(stake: StakeAccount, epoch: int) -> str:
    """``active`` | ``activating`` | ``deactivating`` | ``inactive`` at ``epoch`` (StakeStateV2 rules:
    stake is effective from the epoch after ``activation_epoch`` and stops after ``deactivation_epoch``;
    u64::MAX activation marks bootstrap stake, active from genesis)."""
    if stake.state != "delegated":
        return "inactive"
    if stake.deactivation_epoch is not None:
        if stake.deactivation_epoch == stake.activation_epoch or epoch > stake.deactivation_epoch:
            return "inactive"
        return "deactivating"
    if stake.activation_epoch is None or epoch > stake.activation_epoch:
        return "active"
    return "activating"


def stake_legs(lamports: int, stake: StakeAccount, epoch: int) -> dict[str, int]:
    """Split an account's ``lamports`` into roles; the parts always add up to ``lamports`` exactly."""
    reserve = min(stake.rent_exempt_reserve, lamports)
    delegated = min(stake.delegated, lamports - reserve)
    state = activation_state(stake, epoch)
    role = {"active": STAKED, "activating": ACTIVATING, "deactivating": DEACTIVATING}.get(state, INACTIVE)
    parts = {role: delegated}
    parts[INACTIVE] = parts.get(INACTIVE, 0) + lamports - reserve - delegated
    parts[RENT_RESERVE] = reserve
    return {r: parts[r] for r in _ROLE_ORDER if parts.get(r)}


class NativeStake(SolanaProtocol):
    """Stake accounts whose staker or withdrawer authority is the wallet (two ``getProgramAccounts`` per
    wallet, memcmp on the authority offsets)."""

    name = "solana-stake"
    label = "Solana native staking"

    def __init__(self, chain: Any) -> None:
        super().__init__(chain)
        self._accounts: dict[str, dict[str, RawAccount]] = {}

    def wallet_calls(self, address: str) -> list[Call]:
        return [Call("getProgramAccounts", [STAKE_PROGRAM_ID, {"encoding": "base64", "filters": [
            {"memcmp": {"offset": offset, "bytes": address}}]}], parse_keyed_accounts, optional=True)
            for offset in (STAKER_OFFSET, WITHDRAWER_OFFSET)]

    def take_wallet(self, address: str, answers: list[Any]) -> None:
        if self.failed(answers, address):
            return
        found = self._accounts.setdefault(address, {})
        for answer in answers:
            for key, account in answer:
                found.setdefault(key, account)

    def positions(self, ctx: PositionContext, problems: list[Problem]) -> list[Position]:
        problems.extend(self.problems)
        out = []
        for owner, accounts in self._accounts.items():
            for ref in sorted(accounts):
                account = accounts[ref]
                try:
                    stake = parse_stake(account.data)
                except StakeError as exc:
                    problems.append(Problem("stake_unparseable", str(exc), ref))
                    continue
                if stake is None:
                    continue
                legs = stake_legs(account.lamports, stake, ctx.epoch)
                out.append(Position(
                    owner=owner, protocol=self.name, kind="staking", ref=ref,
                    legs=tuple(PositionLeg(ctx.native, amount, role) for role, amount in legs.items()),
                    label=f"Stake account {ref[:4]}…{ref[-4:]}",
                    details={"vote_account": stake.vote_account, "state": stake.state,
                             "activation": activation_state(stake, ctx.epoch), "epoch": ctx.epoch,
                             "delegated_stake": stake.delegated, "staker": stake.staker,
                             "withdrawer": stake.withdrawer, "rent_exempt_reserve": stake.rent_exempt_reserve,
                             "activation_epoch": stake.activation_epoch, "deactivation_epoch": stake.deactivation_epoch},
                ))
        return out
