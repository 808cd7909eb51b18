"""Bitcoin address and extended-key parsing: every type per network, checksums, secrets refused."""

from __future__ import annotations

import pytest

from chains.base import InvalidAddress, SecretRefused
from chains.bitcoin.address import encode_address, parse_address
from chains.bitcoin.codec import b58decode_check, b58encode_check, encode_segwit, _convertbits, _hrp_expand, _polymod, BECH32_CHARSET

ZPUB = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
XPUB = "xpub6BosfCnifzxcFwrSzQiqu2DBVTshkCXacvNsWGYJVVhhawA7d4R5WSWGFNbi8Aw6ZRc1brxMyWMzG3DSSSSoekkudhUd9yLb6qx39T9nMdj"
YPUB = "ypub6Ww3ibxVfGzLrAH1PNcjyAWenMTbbAosGNB6VvmSEgytSER9azLDWCxoJwW7Ke7icmizBMXrzBx9979FfaHxHcrArf3zbeJJJUZPf663zsP"
XPRV = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"
PUB = bytes.fromhex("0330d54fd0dd420a6e5f8d3624f5f3482cae350f79d5f0753bf5beef9c2d91af3c")


def reversion(key: str, version_hex: str) -> str:
    return b58encode_check(bytes.fromhex(version_hex) + b58decode_check(key)[4:])


def bech32_with_wrong_constant(hrp: str, version: int, program: bytes) -> str:
    """Encode with the constant the version must NOT use (bech32m for v0, bech32 for v1)."""
    data = [version] + _convertbits(program, 8, 5, True)
    const = 0x2BC830A3 if version == 0 else 1
    polymod = _polymod(_hrp_expand(hrp) + data + [0] * 6) ^ const
    return hrp + "1" + "".join(BECH32_CHARSET[d] for d in data + [(polymod >> 5 * (5 - i)) & 31 for i in range(6)])


@pytest.mark.parametrize(
    "text, networks, script_type",
    [
        ("1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA", ("mainnet",), "p2pkh"),
        ("37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf", ("mainnet",), "p2sh"),
        ("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", ("mainnet",), "p2wpkh"),
        ("bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3", ("mainnet",), "p2wsh"),
        ("bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr", ("mainnet",), "p2tr"),
        ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", ("testnet",), "p2wsh"),
        ("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", ("testnet", "regtest"), "p2pkh"),
        ("2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc", ("testnet", "regtest"), "p2sh"),
    ],
)
def test_it_accepts_each_address_type(text, networks, script_type):
    parsed = parse_address(text)
    assert (parsed.address, parsed.kind, parsed.networks, parsed.script_type) == (text, "address", networks, script_type)


@pytest.mark.parametrize("network, hrp", [("mainnet", "bc"), ("testnet", "tb"), ("regtest", "bcrt")])
@pytest.mark.parametrize("script_type", ["p2pkh", "p2sh-p2wpkh", "p2wpkh", "p2tr"])
def test_it_round_trips_addresses_it_encodes(network, hrp, script_type):
    address = encode_address(PUB, script_type, network)
    parsed = parse_address(address)
    assert network in parsed.networks
    assert parsed.script_type == {"p2sh-p2wpkh": "p2sh"}.get(script_type, script_type)
    if script_type in ("p2wpkh", "p2tr"):
        assert address.startswith(hrp + "1")


def test_it_lowercases_bech32():
    assert parse_address("BC1QCR8TE4KR609GCAWUTMRZA0J4XV80JY8Z306FYU").address == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"


@pytest.mark.parametrize(
    "text, message",
    [
        ("1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabB", "checksum"),
        ("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyv", "checksum"),
        ("bcrt1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "checksum"),
        ("Bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "mixed"),
        ("ltc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", ""),
        ("0x52908400098527886E0F7030069857D2E4169EE7", ""),
        ("", "empty"),
        ("hello", ""),
    ],
)
def test_it_rejects_invalid_addresses(text, message):
    with pytest.raises(InvalidAddress) as err:
        parse_address(text)
    assert not isinstance(err.value, SecretRefused)
    assert message in str(err.value)


def test_it_rejects_unknown_prefixes():
    with pytest.raises(InvalidAddress, match="unknown bech32 prefix"):
        parse_address(encode_segwit("xy", 0, bytes(20)))
    with pytest.raises(InvalidAddress, match="unknown version prefix"):
        parse_address(b58encode_check(b"\x30" + bytes(20)))  # Litecoin P2PKH


def test_it_rejects_bech32_and_bech32m_mixups():
    with pytest.raises(InvalidAddress, match="must use bech32m"):
        parse_address(bech32_with_wrong_constant("bc", 1, bytes(range(32))))
    with pytest.raises(InvalidAddress, match="must use bech32, not bech32m"):
        parse_address(bech32_with_wrong_constant("bcrt", 0, bytes(20)))


@pytest.mark.parametrize(
    "version, prefix, networks, script_type",
    [
        ("0488b21e", "xpub", ("mainnet",), "p2pkh"),
        ("049d7cb2", "ypub", ("mainnet",), "p2sh-p2wpkh"),
        ("04b24746", "zpub", ("mainnet",), "p2wpkh"),
        ("043587cf", "tpub", ("testnet", "regtest"), "p2pkh"),
        ("044a5262", "upub", ("testnet", "regtest"), "p2sh-p2wpkh"),
        ("045f1cf6", "vpub", ("testnet", "regtest"), "p2wpkh"),
    ],
)
def test_it_accepts_extended_public_keys(version, prefix, networks, script_type):
    key = reversion(ZPUB, version)
    assert key.startswith(prefix)
    parsed = parse_address(key)
    assert (parsed.address, parsed.kind, parsed.networks, parsed.script_type) == (key, "extended_key", networks, script_type)


def test_it_rejects_an_extended_key_with_a_bad_checksum():
    with pytest.raises(InvalidAddress, match="checksum"):
        parse_address(ZPUB[:-1] + ("t" if ZPUB[-1] != "t" else "u"))


@pytest.mark.parametrize(
    "version", ["0488ade4", "049d7878", "04b2430c", "04358394", "044a4e28", "045f18bc"]
)
def test_it_refuses_extended_private_keys_without_repeating_them(version):
    key = reversion(XPRV, version)
    with pytest.raises(SecretRefused) as err:
        parse_address(key)
    assert key not in str(err.value) and key[4:20] not in str(err.value)
    # even with a broken checksum it is still treated as a secret
    with pytest.raises(SecretRefused) as err:
        parse_address(key[:-2] + "zz")
    assert key[4:20] not in str(err.value)


def test_it_refuses_private_key_material_behind_a_public_prefix():
    payload = b58decode_check(XPRV)
    key = b58encode_check(bytes.fromhex("0488b21e") + payload[4:])  # "xpub..." carrying 0x00||privkey
    assert key.startswith("xpub")
    with pytest.raises(SecretRefused) as err:
        parse_address(key)
    assert key not in str(err.value)
