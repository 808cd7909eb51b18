"""Metaplex Token Metadata accounts: the PDA of a mint and a Borsh parser for MetadataV1."""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey

from chains.solana.borsh import BorshReader

METADATA_PROGRAM_ID = "metaqbxxUerdq28cj1RbAWkYQm3ybzjb6a8bt518x1s"
_PROGRAM = Pubkey.from_string(METADATA_PROGRAM_ID)
KEY_METADATA_V1 = 4
TOKEN_STANDARDS = ("NonFungible", "FungibleAsset", "Fungible", "NonFungibleEdition", "ProgrammableNonFungible",
                   "ProgrammableNonFungibleEdition")


class MetaplexError(ValueError):
    """The account is not a well-formed MetadataV1 account."""


@dataclass(frozen=True)
class Creator:
    address: str
    verified: bool
    share: int


@dataclass(frozen=True)
class MetaplexMetadata:
    """The fields of a MetadataV1 account we use. Strings have Metaplex's NUL padding removed."""

    update_authority: str
    mint: str
    name: str
    symbol: str
    uri: str
    seller_fee_basis_points: int
    creators: tuple[Creator, ...]
    primary_sale_happened: bool
    is_mutable: bool
    token_standard: str | None = None
    collection: str | None = None
    collection_verified: bool = False

    @property
    def verified_collection(self) -> str | None:
        return self.collection if self.collection_verified else None


def metadata_address(mint: str) -> str:
    """The Metadata PDA of ``mint``: seeds ["metadata", program id, mint]. Raises ``ValueError`` for a bad mint."""
    seeds = [b"metadata", bytes(_PROGRAM), bytes(Pubkey.from_string(mint))]
    return str(Pubkey.find_program_address(seeds, _PROGRAM)[0])


def parse_metadata(data: bytes) -> MetaplexMetadata:
    """Parse a MetadataV1 account (Borsh). Fields after ``collection`` (uses, collection details,
    programmable config) are not needed and not read; old accounts that end earlier are accepted.

    Raises ``MetaplexError`` if the account is not MetadataV1 or is malformed.
    """
    r = BorshReader(data, MetaplexError, "metadata account")
    if r.u8() != KEY_METADATA_V1:
        raise MetaplexError("not a MetadataV1 account")
    update_authority, mint = r.pubkey(), r.pubkey()
    name, symbol, uri = r.string(), r.string(), r.string()
    fee = r.u16()
    creators: list[Creator] = []
    if r.tag() == 1:
        count = r.u32()
        if count > 5:
            raise MetaplexError("too many creators")
        for _ in range(count):
            creators.append(Creator(r.pubkey(), r.bool(), r.u8()))
    primary_sale, mutable = r.bool(), r.bool()
    token_standard = collection = None
    verified = False
    # Older accounts stop here (or are zero-padded, which reads as None for every Option below).
    if r.pos < len(r.data):
        if r.tag() == 1:
            r.u8()  # edition_nonce
        if r.pos < len(r.data) and r.tag() == 1:
            index = r.u8()
            token_standard = TOKEN_STANDARDS[index] if index < len(TOKEN_STANDARDS) else None
        if r.pos < len(r.data) and r.tag() == 1:
            verified = r.bool()
            collection = r.pubkey()
    return MetaplexMetadata(update_authority, mint, name, symbol, uri, fee, tuple(creators), primary_sale, mutable,
                            token_standard, collection, verified)
