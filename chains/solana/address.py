"""Solana addresses: base58 text that decodes to exactly 32 bytes; 64-byte keypairs are refused."""

from __future__ import annotations

import json
import re

from chains.base import InvalidAddress, ParsedAddress, SecretRefused
from chains.base58 import b58decode, b58encode

_JSON_ARRAY = re.compile(r"^\[[\d\s,]*\]$")

SECRET_MESSAGE = (
    "This looks like a Solana private key (a 64-byte keypair). This app is watch-only: never paste private "
    "keys or seed phrases anywhere. Enter the wallet's public address instead."
)


def parse_address(text: str) -> ParsedAddress:
    """Validate a Solana address (any 32-byte public key, on or off the ed25519 curve: PDAs are valid).

    Raises ``SecretRefused`` for a 64-byte keypair in base58 or as a JSON byte array (the message never
    contains the input), and ``InvalidAddress`` for anything else that is not 32 bytes of base58.
    """
    text = (text or "").strip()
    if _JSON_ARRAY.match(text):
        try:
            values = json.loads(text)
        except ValueError:
            values = None
        if isinstance(values, list) and len(values) in (32, 64) and all(isinstance(v, int) and 0 <= v <= 255 for v in values):
            raise SecretRefused(SECRET_MESSAGE)  # solana-keygen files; a 32-byte array is a bare secret seed
        raise InvalidAddress("not a Solana address (expected base58 text)")
    if not 32 <= len(text) <= 44:
        if 80 <= len(text) <= 90:
            try:
                if len(b58decode(text)) == 64:
                    raise SecretRefused(SECRET_MESSAGE)
            except ValueError:
                pass
        raise InvalidAddress("not a Solana address (expected 32 to 44 base58 characters)")
    try:
        raw = b58decode(text)
    except ValueError:
        raise InvalidAddress("not a Solana address (contains characters outside base58)") from None
    if len(raw) != 32:
        raise InvalidAddress(f"not a Solana address (decodes to {len(raw)} bytes, expected 32)")
    return ParsedAddress(address=b58encode(raw), kind="address", networks=())
