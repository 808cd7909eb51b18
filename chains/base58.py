"""Base58 (the Bitcoin alphabet, also Solana's): one encoder and decoder for every family."""

from __future__ import annotations

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def b58decode(text: str) -> bytes:
    """Base58 text to bytes (leading ``1``s are zero bytes). Raises ``ValueError`` on a character
    outside the alphabet."""
    num = 0
    for ch in text:
        try:
            num = num * 58 + _INDEX[ch]
        except KeyError:
            raise ValueError("not base58") from None
    body = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    return b"\x00" * (len(text) - len(text.lstrip("1"))) + body


def b58encode(raw: bytes) -> str:
    """Bytes to base58 text (leading zero bytes become ``1``s)."""
    num = int.from_bytes(raw, "big")
    out = []
    while num:
        num, rem = divmod(num, 58)
        out.append(ALPHABET[rem])
    return "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + "".join(reversed(out))
