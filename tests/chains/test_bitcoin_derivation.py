"""Watch-only derivation matches the published BIP-44/49/84/86 test vectors ("abandon ... about")."""

from __future__ import annotations

import pytest

from chains.base import InvalidAddress, SecretRefused
from chains.bitcoin.codec import b58decode_check, b58encode_check
from chains.bitcoin.derivation import AccountKey

# Account keys and first addresses, copied from the BIPs (mnemonic "abandon abandon ... about").
BIP44_XPUB = "xpub6BosfCnifzxcFwrSzQiqu2DBVTshkCXacvNsWGYJVVhhawA7d4R5WSWGFNbi8Aw6ZRc1brxMyWMzG3DSSSSoekkudhUd9yLb6qx39T9nMdj"
BIP49_YPUB = "ypub6Ww3ibxVfGzLrAH1PNcjyAWenMTbbAosGNB6VvmSEgytSER9azLDWCxoJwW7Ke7icmizBMXrzBx9979FfaHxHcrArf3zbeJJJUZPf663zsP"
BIP84_ZPUB = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
BIP86_XPUB = "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ"


@pytest.mark.parametrize(
    "key, script_type, receive0, receive1, change0",
    [
        (BIP44_XPUB, None, "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA", "1Ak8PffB2meyfYnbXZR9EGfLfFZVpzJvQP", "1J3J6EvPrv8q6AC3VCjWV45Uf3nssNMRtH"),
        (BIP49_YPUB, None, "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf", None, "34K56kSjgUCUSD8GTtuF7c9Zzwokbs6uZ7"),
        (BIP84_ZPUB, None, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g", "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"),
        (BIP86_XPUB, "p2tr", "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr", "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh", "bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7"),
    ],
)
def test_it_derives_the_bip_test_vectors(key, script_type, receive0, receive1, change0):
    account = AccountKey(key, "mainnet", script_type)
    assert account.address(0, 0) == receive0
    if receive1:
        assert account.address(0, 1) == receive1
    assert account.address(1, 0) == change0


def test_an_explicit_script_type_overrides_the_prefix():
    """An xpub exported for a BIP-84 account: the wallet says p2wpkh, so we derive bech32 addresses."""
    as_xpub = b58encode_check(bytes.fromhex("0488b21e") + b58decode_check(BIP84_ZPUB)[4:])
    account = AccountKey(as_xpub, "mainnet", "p2wpkh")
    assert account.address(0, 0) == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"


def test_a_vpub_derives_regtest_and_testnet_addresses():
    vpub = b58encode_check(bytes.fromhex("045f1cf6") + b58decode_check(BIP84_ZPUB)[4:])
    assert AccountKey(vpub, "regtest").address(0, 0).startswith("bcrt1q")
    assert AccountKey(vpub, "testnet").address(0, 0).startswith("tb1q")


def test_it_rejects_a_key_of_another_network_or_script_type():
    with pytest.raises(InvalidAddress, match="not regtest"):
        AccountKey(BIP84_ZPUB, "regtest")
    with pytest.raises(InvalidAddress, match="unsupported script type"):
        AccountKey(BIP84_ZPUB, "mainnet", "p2wsh")


def test_it_refuses_private_keys():
    xprv = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"
    with pytest.raises(SecretRefused) as err:
        AccountKey(xprv, "mainnet")
    assert xprv not in str(err.value)
