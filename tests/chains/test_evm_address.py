"""EVM address parsing: EIP-55 checksums, lowercase accepted and stored checksummed, bad input refused."""

from __future__ import annotations

import pytest

from chains.base import InvalidAddress, SecretRefused
from chains.evm import address
from chains.evm.address import canonical, canonical_seen, parse_address

ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_it_accepts_a_checksummed_address():
    parsed = parse_address(ALICE)
    assert parsed.address == ALICE
    assert parsed.kind == "address" and parsed.networks == ()


def test_it_stores_lowercase_and_uppercase_input_checksummed():
    assert parse_address(ALICE.lower()).address == ALICE
    assert parse_address("0x" + ALICE[2:].upper()).address == ALICE
    assert parse_address(f"  {ALICE.lower()}\n").address == ALICE


def test_it_rejects_a_bad_checksum_with_a_clear_message():
    typo = ALICE.replace("C51812", "c51812")
    with pytest.raises(InvalidAddress, match="checksum"):
        parse_address(typo)


@pytest.mark.parametrize("text", [
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C",  # 39 hex
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8aa",  # 42 hex
    "0x70997970C51812dc3A010C7d01b50e0d17dc79Zz",  # not hex
    "70997970C51812dc3A010C7d01b50e0d17dc79C8",  # no 0x
    "",
    "vitalik.eth",
])
def test_it_rejects_wrong_length_and_non_hex(text):
    with pytest.raises(InvalidAddress):
        parse_address(text)


def test_it_refuses_a_private_key_without_echoing_it():
    key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
    with pytest.raises(SecretRefused) as info:
        parse_address(key)
    assert key[2:12] not in str(info.value)


def test_a_token_lists_addresses_are_checksummed_once_and_then_looked_up(monkeypatch):
    monkeypatch.setattr(address, "_CANONICAL_MAX", 3)
    address._CANONICAL.clear()
    upper = "0x" + ALICE[2:].upper()
    assert canonical_seen(ALICE.lower()) is None
    assert canonical(ALICE.lower()) == canonical(upper) == ALICE  # no checksum to trust: computed
    assert canonical("0x70997970c51812DC3A010C7D01B50E0D17DC79c8") == "0x70997970c51812DC3A010C7D01B50E0D17DC79c8"  # mixed: trusted
    assert canonical_seen(ALICE.lower()) == canonical_seen(upper) == ALICE
    canonical("0x" + "12" * 20)  # a fourth address: the memo starts over instead of growing
    assert canonical_seen(ALICE.lower()) is None and canonical_seen("0x" + "12" * 20) == "0x" + "12" * 20
