"""A small Borsh reader for on-chain account layouts; malformed data raises the caller's error type."""

from __future__ import annotations

import struct

from chains.base58 import b58encode


class BorshReader:
    """Reads ``data`` front to back; anything out of bounds or invalid raises ``error`` naming ``what``."""

    def __init__(self, data: bytes, error: type[ValueError], what: str) -> None:
        self.data, self.pos, self.error, self.what = bytes(data), 0, error, what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.error(f"{self.what} is truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def bool(self) -> bool:
        value = self.u8()
        if value > 1:
            raise self.error(f"invalid bool in {self.what}")
        return bool(value)

    def pubkey(self) -> str:
        return b58encode(self.take(32))

    def string(self, limit: int = 1000) -> str:
        n = self.u32()
        if n > limit:
            raise self.error(f"string longer than the {self.what} allows")
        try:
            return self.take(n).decode("utf-8").rstrip("\x00").strip()
        except UnicodeDecodeError:
            raise self.error("string is not UTF-8") from None

    def tag(self, highest: int = 1) -> int:
        """An enum or Option tag (0 = None for an Option); above ``highest`` is invalid."""
        value = self.u8()
        if value > highest:
            raise self.error(f"invalid tag {value} in {self.what}")
        return value
