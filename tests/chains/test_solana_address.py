"""Solana address parsing: 32-byte base58 keys pass, keypairs are refused without being repeated."""

from __future__ import annotations

import json

import pytest
from solders.keypair import Keypair

from chains.base import InvalidAddress, SecretRefused
from chains.solana.address import parse_address

KEYPAIR = Keypair.from_seed(bytes(range(32)))


def test_it_accepts_a_public_key_and_a_pda():
    parsed = parse_address(f"  {KEYPAIR.pubkey()}\n")
    assert parsed.address == str(KEYPAIR.pubkey()) and parsed.kind == "address" and parsed.networks == ()
    assert parse_address("So11111111111111111111111111111111111111112").address == "So11111111111111111111111111111111111111112"
    assert parse_address("11111111111111111111111111111111").address == "11111111111111111111111111111111"


@pytest.mark.parametrize("text", [
    "", "hello", "0OIl" * 10, "So1111111111111111111111111111111111111111", "z" * 44,
    "0x" + "ab" * 20, str(KEYPAIR.pubkey())[:-1] + "0",
])
def test_it_rejects_what_is_not_32_bytes_of_base58(text):
    with pytest.raises(InvalidAddress) as info:
        parse_address(text)
    assert info.value.permanent and not isinstance(info.value, SecretRefused)


def test_it_refuses_a_base58_keypair_without_repeating_it():
    secret = str(KEYPAIR)  # base58 of the 64-byte keypair, as Phantom exports it
    with pytest.raises(SecretRefused) as info:
        parse_address(secret)
    assert secret not in str(info.value) and secret[:20] not in str(info.value)
    assert info.value.permanent


@pytest.mark.parametrize("length", [64, 32])
def test_it_refuses_a_json_byte_array_keypair(length):
    text = json.dumps(list(bytes(KEYPAIR))[:length])  # solana-keygen's id.json
    with pytest.raises(SecretRefused) as info:
        parse_address(text)
    assert text not in str(info.value) and "[" not in str(info.value)


def test_the_adapter_normalizes_through_the_same_rules(solana_chain_config_offline):
    from chains.solana.adapter import SolanaAdapter

    adapter = SolanaAdapter(solana_chain_config_offline, [])
    assert adapter.normalize_address(str(KEYPAIR.pubkey())).address == str(KEYPAIR.pubkey())
    with pytest.raises(SecretRefused):
        adapter.normalize_address(str(KEYPAIR))


@pytest.fixture
def solana_chain_config_offline():
    from chains.base import ChainConfig

    return ChainConfig(slug="solana", family="solana", native_symbol="SOL", native_decimals=9)
