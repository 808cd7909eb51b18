"""SPL Token / Token-2022 mint accounts: base fields and the TLV extensions (metadata pointer, TokenMetadata)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from chains.base58 import b58encode

MINT_BASE_SIZE = 82
ACCOUNT_BASE_SIZE = 165  # extensions start after the (padded) account base and one account-type byte
ACCOUNT_TYPE_MINT = 1
EXT_METADATA_POINTER = 18
EXT_TOKEN_METADATA = 19


class MintError(ValueError):
    """The account is not a well-formed token mint."""


@dataclass(frozen=True)
class TokenMetadata:
    """The TokenMetadata extension (spl-token-metadata-interface), stored in the mint itself."""

    update_authority: str | None
    mint: str
    name: str
    symbol: str
    uri: str
    additional: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MintInfo:
    decimals: int
    supply: int
    is_initialized: bool
    mint_authority: str | None
    freeze_authority: str | None
    extensions: dict[int, bytes] = field(default_factory=dict)

    @property
    def metadata_pointer(self) -> str | None:
        """Where the metadata lives according to the MetadataPointer extension (None if absent)."""
        raw = self.extensions.get(EXT_METADATA_POINTER)
        if raw is None or len(raw) < 64 or raw[32:64] == bytes(32):
            return None
        return b58encode(raw[32:64])

    def token_metadata(self) -> TokenMetadata | None:
        """The TokenMetadata extension, if present. Raises ``MintError`` if it is malformed."""
        raw = self.extensions.get(EXT_TOKEN_METADATA)
        return None if raw is None else parse_token_metadata(raw)


def _coption_pubkey(data: bytes, offset: int) -> str | None:
    (tag,) = struct.unpack_from("<I", data, offset)
    return b58encode(data[offset + 4 : offset + 36]) if tag == 1 else None


def parse_mint(data: bytes) -> MintInfo:
    """Parse a Token or Token-2022 mint account, extensions included.

    Raises ``MintError`` if the data is too short, is a token account, or has a broken TLV area.
    """
    data = bytes(data)
    if len(data) < MINT_BASE_SIZE:
        raise MintError("account is too short for a mint")
    extensions: dict[int, bytes] = {}
    if len(data) > MINT_BASE_SIZE:
        if len(data) <= ACCOUNT_BASE_SIZE or data[ACCOUNT_BASE_SIZE] != ACCOUNT_TYPE_MINT:
            raise MintError("account is not a mint")
        pos = ACCOUNT_BASE_SIZE + 1
        while pos + 4 <= len(data):
            ext_type, length = struct.unpack_from("<HH", data, pos)
            if ext_type == 0 and length == 0:
                break  # zero padding
            if pos + 4 + length > len(data):
                raise MintError("extension runs past the end of the account")
            extensions[ext_type] = data[pos + 4 : pos + 4 + length]
            pos += 4 + length
    return MintInfo(
        decimals=data[44],
        supply=struct.unpack_from("<Q", data, 36)[0],
        is_initialized=bool(data[45]),
        mint_authority=_coption_pubkey(data, 0),
        freeze_authority=_coption_pubkey(data, 46),
        extensions=extensions,
    )


def parse_token_metadata(raw: bytes) -> TokenMetadata:
    """Parse the TokenMetadata TLV value: update authority (OptionalNonZeroPubkey), mint, then Borsh
    strings name, symbol, uri and a Vec<(String, String)>. Raises ``MintError`` if malformed."""
    pos = 64

    def string() -> str:
        nonlocal pos
        if pos + 4 > len(raw):
            raise MintError("token metadata is truncated")
        (n,) = struct.unpack_from("<I", raw, pos)
        if pos + 4 + n > len(raw):
            raise MintError("token metadata is truncated")
        try:
            text = raw[pos + 4 : pos + 4 + n].decode("utf-8")
        except UnicodeDecodeError:
            raise MintError("token metadata string is not UTF-8") from None
        pos += 4 + n
        return text.strip("\x00").strip()

    if len(raw) < 64:
        raise MintError("token metadata is truncated")
    name, symbol, uri = string(), string(), string()
    extra: list[tuple[str, str]] = []
    if pos + 4 <= len(raw):
        (count,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        for _ in range(min(count, 64)):
            extra.append((string(), string()))
    authority = None if raw[:32] == bytes(32) else b58encode(raw[:32])
    return TokenMetadata(authority, b58encode(raw[32:64]), name, symbol, uri, tuple(extra))
