"""EVM address validation: 0x + 40 hex, EIP-55 checksum enforced on mixed case, stored checksummed."""

from __future__ import annotations

import re
from functools import lru_cache

from eth_utils import keccak

from chains.base import InvalidAddress, ParsedAddress, SecretRefused

_HEX40 = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HEX64 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_HEXISH = re.compile(r"^0[xX][0-9a-fA-F]*$")


@lru_cache(maxsize=65536)
def to_checksum(address: str) -> str:
    """EIP-55 checksum of a ``0x`` + 40 hex address (case of the input ignored)."""
    lower = address[2:].lower()
    digest = keccak(text=lower).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(lower))


_CANONICAL: dict[str, str] = {}
_CANONICAL_MAX = 65536


def canonical(address: str) -> str:
    """Checksummed form of an address that should already be checksummed (``AssetRef.address``):
    mixed case is trusted as is, so thousands of token-list entries cost no hashing. Remembered per
    process (up to 65,536 addresses): ``canonical_seen``."""
    known = _CANONICAL.get(address)
    if known is None:
        body = address[2:]
        known = address if body != body.lower() and body != body.upper() else to_checksum(address)
        if len(_CANONICAL) >= _CANONICAL_MAX:
            _CANONICAL.clear()
        _CANONICAL[address] = known
    return known


# ``canonical(address)`` of an address seen before, else None: a plain dict lookup, for loops over a
# token list (an lru_cache hit also relinks its entry, several cache misses more per token).
canonical_seen = _CANONICAL.get


def parse_address(text: str) -> ParsedAddress:
    """Validate an EVM address and return it checksummed (``networks=()``: valid on every EVM chain).

    All-lowercase and all-uppercase inputs are accepted (they carry no checksum); mixed case must
    match its EIP-55 checksum. Raises ``SecretRefused`` for a 64-hex private key (message never repeats
    it) and ``InvalidAddress`` for anything else that is not an address.
    """
    value = (text or "").strip()
    if _HEX64.match(value):
        raise SecretRefused("this looks like a private key, not an address: never paste private keys here")
    if not value.startswith(("0x", "0X")):
        raise InvalidAddress("an EVM address starts with 0x followed by 40 hexadecimal characters")
    value = "0x" + value[2:]
    if len(value) != 42:
        raise InvalidAddress(f"an EVM address has 40 hexadecimal characters after 0x, this one has {len(value) - 2}")
    if not _HEX40.match(value):
        raise InvalidAddress("an EVM address may only contain hexadecimal characters (0-9, a-f) after 0x")
    body = value[2:]
    checksummed = to_checksum(value)
    if body != body.lower() and body != body.upper() and value != checksummed:
        raise InvalidAddress(
            "the address has mixed upper/lower case but its EIP-55 checksum is wrong (a typo?); "
            "check it, or paste it all in lowercase"
        )
    return ParsedAddress(address=checksummed)


def looks_like_ens_name(text: str) -> bool:
    """Whether input is meant as an ENS name (``vitalik.eth``, ``pay.example.xyz``) rather than a
    ``0x`` address: it has a dot and no white space (``0xabc.eth`` is a name too). Resolving it is
    ``chains.evm.ens``'s job; this check imports no web3, so plain addresses never pay for it."""
    value = (text or "").strip()
    return "." in value and not _HEXISH.match(value) and not any(c.isspace() for c in value)
