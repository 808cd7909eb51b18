"""Native stake accounts (StakeStateV2, bincode): who may stake/withdraw, and what is delegated where."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from chains.base58 import b58encode

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
