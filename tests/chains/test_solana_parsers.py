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


def test_stake_legs_are_named_for_what_the_lamports_are():
    from chains.solana.protocols.native_stake import activation_state, stake_legs

    reserve, sol = 2_282_880, 10**9

    def delegated(activation, deactivation=2**64 - 1, amount=5 * sol):
        return parse_stake(stake_account(staker=A, withdrawer=A, rent_reserve=reserve, vote=C, delegated=amount,
                                         activation_epoch=activation, deactivation_epoch=deactivation))

    lamports = reserve + 5 * sol + 7
    assert stake_legs(lamports, delegated(3), 10) == {"staked": 5 * sol, "inactive": 7, "rent_reserve": reserve}
    assert stake_legs(lamports, delegated(10), 10) == {"activating": 5 * sol, "inactive": 7, "rent_reserve": reserve}
    assert stake_legs(lamports, delegated(3, 10), 10) == {"deactivating": 5 * sol, "inactive": 7, "rent_reserve": reserve}
    assert stake_legs(lamports, delegated(3, 9), 10) == {"inactive": 5 * sol + 7, "rent_reserve": reserve}
    assert activation_state(delegated(2**64 - 1), 0) == "active"  # bootstrap stake (activation u64::MAX)
    assert activation_state(delegated(4, 4), 4) == "inactive"  # deactivated in its activation epoch
    undelegated = parse_stake(stake_account(staker=A, withdrawer=B, rent_reserve=reserve))
    assert stake_legs(reserve + sol, undelegated, 10) == {"inactive": sol, "rent_reserve": reserve}
    # A delegation above the balance (never on a real chain) still adds up to the lamports held.
    assert sum(stake_legs(reserve + 1, delegated(3), 10).values()) == reserve + 1


def _stake_pool_bytes(*, total=1_100_000_000_000, supply=1_000_000_000_000, options=b"", tail_tag=0):
    """A StakePool laid out by hand from spl-stake-pool's state.rs field list (not through our writer)."""
    fee = struct.pack("<QQ", 1000, 1)  # Fee { denominator, numerator }: 0.1%
    head = bytes([1]) + bytes(A) * 3 + bytes([254]) + bytes(B) * 2 + bytes(C) + bytes(B) + bytes(A)
    assert len(head) == 258  # total_lamports starts here (1 + 3*32 + 1 + 5*32)
    body = head + struct.pack("<QQQ", total, supply, 12) + bytes(48) + fee
    body += bytes([2]) + fee  # next_epoch_fee: FutureEpoch::Two(fee)
    body += options or (bytes([1]) + bytes(C) + bytes([0]))  # preferred deposit Some(C), withdraw None
    body += fee + fee + bytes([0, 5]) + bytes([0]) + fee + bytes([5]) + bytes([0]) + fee + bytes([tail_tag])
    body += struct.pack("<QQ", supply, total)
    return body.ljust(611, b"\0")


def test_stake_pool_layout_and_rate():
    from chains.solana.protocols.stake_pool import POOL_MINT_OFFSET, parse_stake_pool

    raw = _stake_pool_bytes()
    assert raw[POOL_MINT_OFFSET:POOL_MINT_OFFSET + 32] == bytes(C)
    pool = parse_stake_pool(raw)
    assert (pool.pool_mint, pool.manager, pool.token_program_id, pool.last_update_epoch) == (str(C), str(A), str(A), 12)
    assert (pool.total_lamports, pool.pool_token_supply, str(pool.sol_withdrawal_fee)) == (1_100_000_000_000, 10**12, "1/1000")
    # calc_lamports_withdraw_amount: floor(tokens * total / supply); 3 tokens -> 3 (3.3 floored)
    assert pool.lamports_for(10**9) == 1_100_000_000 and pool.lamports_for(3) == 3
    assert parse_stake_pool(_stake_pool_bytes(supply=0)).lamports_for(5) == 0
    # The scenario's writer produces the same layout.
    from devnet.solana.scenario import stake_pool_account

    written = parse_stake_pool(stake_pool_account(address=A, manager=A, validator_list=B, reserve=B, pool_mint=C, fee_account=B,
                                                  total_lamports=7, pool_token_supply=5, last_update_epoch=1, withdraw_bump=255))
    assert (written.pool_mint, written.total_lamports, written.pool_token_supply) == (str(C), 7, 5)


@pytest.mark.parametrize("raw", [
    bytes(611),  # uninitialised (account type 0)
    bytes([2]) + bytes(610),  # a validator list, not a pool
    _stake_pool_bytes()[:300],  # truncated
    _stake_pool_bytes(options=bytes([7])),  # an option tag that is neither None nor Some
    _stake_pool_bytes()[:274 + 8 + 48] + struct.pack("<QQ", 1, 2) + _stake_pool_bytes()[274 + 8 + 48 + 16:],  # fee 200%
])
def test_stake_pool_garbage_is_refused(raw):
    from chains.solana.protocols.stake_pool import StakePoolError, parse_stake_pool

    with pytest.raises(StakePoolError):
        parse_stake_pool(raw)
