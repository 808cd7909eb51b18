"""Our own parsers of on-chain layouts: Metaplex MetadataV1, Token-2022 TLV extensions, StakeStateV2."""

from __future__ import annotations

import struct

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from chains.solana.metaplex import MetaplexError, metadata_address, parse_metadata
from chains.solana.protocols.native_stake import STAKER_OFFSET, WITHDRAWER_OFFSET, StakeError, parse_stake
from chains.solana.token2022 import MintError, parse_mint
from devnet.solana.scenario import metadata_pda, metaplex_metadata, stake_account

A, B, C = (Keypair.from_seed(bytes([i]) * 32).pubkey() for i in (1, 2, 3))


def test_metadata_pda_matches_the_program_derivation():
    assert metadata_address(str(A)) == str(metadata_pda(A))
    # A well-known mainnet pair: USDC's metadata account.
    assert metadata_address("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v") == "5x38Kp4hvdomTCnCrAny4UtMUt5rQBdB6px2K1Ui45Wq"


def test_metaplex_metadata_with_a_verified_collection():
    raw = metaplex_metadata(update_authority=A, mint=B, name="Demo #1", symbol="DEMO", uri="https://x.invalid/1.json",
                            token_standard=0, collection=C, creator=A)
    meta = parse_metadata(raw)
    assert (meta.mint, meta.name, meta.symbol, meta.uri) == (str(B), "Demo #1", "DEMO", "https://x.invalid/1.json")
    assert meta.verified_collection == str(C) and meta.token_standard == "NonFungible"
    assert meta.creators[0].address == str(A) and meta.creators[0].share == 100


def test_metaplex_unverified_collection_and_old_short_accounts():
    raw = bytearray(metaplex_metadata(update_authority=A, mint=B, name="X", symbol="X", uri="", token_standard=2, collection=C))
    idx = raw.index(bytes(C)) - 1
    raw[idx] = 0  # verified = false
    assert parse_metadata(bytes(raw)).verified_collection is None
    short = bytes([4]) + bytes(A) + bytes(B) + b"".join(struct.pack("<I", 1) + b"Z" for _ in range(3)) + struct.pack("<H", 0) + bytes([0, 0, 1])
    assert parse_metadata(short).name == "Z" and parse_metadata(short).collection is None


@pytest.mark.parametrize("raw", [b"", bytes([1]) + bytes(100), bytes([4]) + bytes(A) + bytes(B) + struct.pack("<I", 5000)])
def test_metaplex_rejects_malformed_accounts(raw):
    with pytest.raises(MetaplexError):
        parse_metadata(raw)


def test_plain_mint_and_token_account_sizes():
    mint = struct.pack("<I", 1) + bytes(A) + struct.pack("<Q", 10**15) + bytes([6, 1]) + struct.pack("<I", 0) + bytes(32)
    info = parse_mint(mint)
    assert (info.decimals, info.supply, info.mint_authority, info.freeze_authority, info.extensions) == (6, 10**15, str(A), None, {})
    with pytest.raises(MintError):
        parse_mint(bytes(165))  # a token account, not a mint
    with pytest.raises(MintError):
        parse_mint(bytes(40))


def test_token_2022_metadata_extension():
    def s(text):
        return struct.pack("<I", len(text)) + text.encode()

    base = struct.pack("<I", 1) + bytes(A) + struct.pack("<Q", 5) + bytes([9, 1]) + struct.pack("<I", 0) + bytes(32)
    pointer = struct.pack("<HH", 18, 64) + bytes(A) + bytes(B)
    value = bytes(A) + bytes(B) + s("Name") + s("SYM") + s("https://u") + struct.pack("<I", 1) + s("k") + s("v")
    tlv = struct.pack("<HH", 19, len(value)) + value
    info = parse_mint(base.ljust(165, b"\0") + bytes([1]) + pointer + tlv)
    assert info.metadata_pointer == str(B) and info.decimals == 9
    meta = info.token_metadata()
    assert (meta.name, meta.symbol, meta.uri, meta.mint, meta.additional) == ("Name", "SYM", "https://u", str(B), (("k", "v"),))
    with pytest.raises(MintError):
        parse_mint(base.ljust(165, b"\0") + bytes([1]) + struct.pack("<HH", 19, 500) + b"short")


def test_stake_accounts_initialized_and_delegated():
    assert bytes(stake_account(staker=A, withdrawer=B, rent_reserve=1))[STAKER_OFFSET:STAKER_OFFSET + 32] == bytes(A)
    assert bytes(stake_account(staker=A, withdrawer=B, rent_reserve=1))[WITHDRAWER_OFFSET:WITHDRAWER_OFFSET + 32] == bytes(B)
    init = parse_stake(stake_account(staker=A, withdrawer=B, rent_reserve=2_282_880))
    assert (init.state, init.staker, init.withdrawer, init.rent_exempt_reserve, init.vote_account) == (
        "initialized", str(A), str(B), 2_282_880, None)
    stake = parse_stake(stake_account(staker=A, withdrawer=A, rent_reserve=1, vote=C, delegated=7, activation_epoch=3))
    assert (stake.state, stake.vote_account, stake.delegated, stake.activation_epoch, stake.deactivation_epoch) == (
        "delegated", str(C), 7, 3, None)
    assert parse_stake(bytes(200)) is None
    with pytest.raises(StakeError):
        parse_stake(struct.pack("<I", 9) + bytes(196))
    with pytest.raises(StakeError):
        parse_stake(struct.pack("<I", 2) + bytes(100))


def test_no_solana_types_leak_out_of_the_parsers():
    meta = parse_metadata(metaplex_metadata(update_authority=A, mint=B, name="n", symbol="s", uri="u", token_standard=0))
    assert all(isinstance(v, (str, int, bool, tuple, type(None))) for v in vars(meta).values())
    assert not isinstance(meta.mint, Pubkey)
