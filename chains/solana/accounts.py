"""Account answers of Solana JSON-RPC (base64 encoding) as small frozen values, checked for shape."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawAccount:
    """An account as the RPC returns it: ``owner`` program (base58), ``lamports`` and raw ``data``."""

    lamports: int
    owner: str
    data: bytes


def _uint(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} is not an unsigned integer")
    return value


def parse_account(obj: Any) -> RawAccount | None:
    """One account object (``None`` when the account does not exist). Raises ``ValueError``/``TypeError``
    when the object is not an account in base64 encoding."""
    if obj is None:
        return None
    data = obj["data"]
    if not (isinstance(data, list) and len(data) == 2 and data[1] == "base64" and isinstance(data[0], str)):
        raise ValueError("account data is not [base64, 'base64']")
    try:
        raw = base64.b64decode(data[0], validate=True)
    except binascii.Error:
        raise ValueError("account data is not base64") from None
    owner = obj["owner"]
    if not isinstance(owner, str):
        raise TypeError("account owner is not a string")
    return RawAccount(_uint(obj["lamports"], "lamports"), owner, raw)


def parse_keyed_accounts(result: Any) -> list[tuple[str, RawAccount]]:
    """``getProgramAccounts`` (without context) or the ``value`` of a by-owner query: pubkey + account."""
    if not isinstance(result, list):
        raise TypeError("expected a list of accounts")
    out = []
    for item in result:
        key, account = item["pubkey"], parse_account(item["account"])
        if not isinstance(key, str) or account is None:
            raise ValueError("keyed account without a pubkey or an account")
        out.append((key, account))
    return out


def parse_multiple_accounts(result: Any, expected: int) -> list[RawAccount | None]:
    """``getMultipleAccounts`` in base64: one account (or None) per key asked."""
    value = result["value"]
    if not isinstance(value, list) or len(value) != expected:
        raise ValueError("getMultipleAccounts answered a different number of accounts")
    return [parse_account(v) for v in value]
