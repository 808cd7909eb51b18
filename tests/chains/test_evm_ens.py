"""ENS against the devnet's real registry, public resolver and reverse registrar (npm artifacts):
names to addresses, verified reverse names in a fixed number of calls, and clear errors."""

from __future__ import annotations

import pytest

from chains.base import ChainConfig, ChainError, EndpointConfig, InvalidAddress
from chains.evm.address import looks_like_ens_name
from chains.evm.ens import MAINNET_REGISTRY, EnsClient, normalize_name, registry_for
from devnet.evm.ens import SPOOFER
from devnet.evm.scenario import DEPLOYER, call


@pytest.fixture
def ens(evm_devnet):
    return evm_devnet.scenario["ens"]


@pytest.fixture
def client(evm_chain_config, evm_endpoints) -> EnsClient:
    return EnsClient(evm_chain_config, evm_endpoints)


def test_a_name_resolves_to_the_address_the_scenario_registered(client, ens, evm_devnet):
    assert client.address("demo.eth") == evm_devnet.wallet("Alice")["address"] == ens["names"]["demo.eth"]
    assert client.address("  Demo.ETH ") == ens["names"]["demo.eth"]  # ENSIP-15: case folded, spaces trimmed
    assert client.address("bob.eth") == evm_devnet.wallet("Bob")["address"]


def test_an_unknown_name_is_an_invalid_address_that_names_it(client):
    with pytest.raises(InvalidAddress, match=r"nobody\.eth is not a registered ENS name"):
        client.address("nobody.eth")


@pytest.mark.parametrize("text, why", [
    ("a..eth", "Labels cannot be empty"),
    ("bad name.eth", "Invalid character"),
    ("x" * 300 + ".eth", "at most 255"),
])
def test_malformed_names_are_refused_without_asking_the_chain(client, text, why):
    with pytest.raises(InvalidAddress, match=why):
        client.address(text)
    assert client.request_count == 0


def test_reverse_names_are_trusted_only_when_they_resolve_back(client, ens, evm_devnet, rpc_proxy, evm_chain_config):
    alice, bob, empty = (evm_devnet.wallet(p)["address"] for p in ("Alice", "Bob", "Empty"))
    assert ens["reverse_records"][SPOOFER] == "demo.eth"  # the spoofer's record does claim Alice's name
    proxied = EnsClient(evm_chain_config, (EndpointConfig(url=rpc_proxy.url),))

    names = proxied.names([alice, bob.lower(), SPOOFER, empty, alice])

    assert names == {alice: "demo.eth", bob: "bob.eth", SPOOFER: None, empty: None}
    assert names == {**ens["primary_names"], empty: None}
    # Four Multicall rounds at one block, however many addresses: never one call per address.
    assert rpc_proxy.methods() == ["eth_blockNumber"] + ["eth_call"] * 4
    assert len({c["params"][1] for c in rpc_proxy.calls("eth_call")}) == 1


def test_a_name_moved_to_another_address_no_longer_names_the_old_one(client, ens, evm_devnet, evm_snapshot):
    alice, bob = evm_devnet.wallet("Alice")["address"], evm_devnet.wallet("Bob")["address"]
    from ens.utils import normal_name_to_hash

    call(evm_devnet.url, DEPLOYER, ens["resolver"], "setAddr(bytes32,address)", ["bytes32", "address"],
         [bytes(normal_name_to_hash("demo.eth")), bob])

    assert client.address("demo.eth") == bob
    # Alice's reverse record still says demo.eth, Bob's says bob.eth: neither may show demo.eth now.
    assert client.names([alice, bob]) == {alice: None, bob: "bob.eth"}


def test_an_unreachable_endpoint_is_a_transient_chain_error(evm_chain_config):
    down = EnsClient(evm_chain_config, (EndpointConfig(url="http://127.0.0.1:9", timeout_s=1.0),))
    with pytest.raises(ChainError, match="no endpoint answered") as caught:
        down.address("demo.eth")
    assert not caught.value.permanent and not isinstance(caught.value, InvalidAddress)


def test_a_registry_address_without_a_contract_is_a_permanent_chain_error(evm_chain_config, evm_endpoints):
    wrong = EnsClient(ChainConfig(**{**evm_chain_config.__dict__, "ens_registry": "0x" + "11" * 20}), evm_endpoints)
    with pytest.raises(ChainError, match="no ENS registry contract") as caught:
        wrong.address("demo.eth")
    assert caught.value.permanent


def test_the_registry_is_configured_or_mainnets_own():
    assert registry_for(ChainConfig(slug="ethereum", family="evm", chain_id=1)) == MAINNET_REGISTRY
    assert registry_for(ChainConfig(slug="base", family="evm", chain_id=8453)) is None
    assert registry_for(ChainConfig(slug="x", family="evm", chain_id=8453, ens_registry="0xabc")) == "0xabc"
    with pytest.raises(ChainError, match="no ENS registry is configured for base"):
        EnsClient(ChainConfig(slug="base", family="evm", chain_id=8453), (EndpointConfig(url="http://127.0.0.1:9"),))


@pytest.mark.parametrize("text, expected", [
    ("vitalik.eth", True), ("Pay.Example.XYZ", True), ("0xabc.eth", True), (" demo.eth\n", True),
    ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", False), ("demo", False), ("two words.eth", False), ("", False),
])
def test_input_is_taken_as_a_name_when_it_has_a_dot_and_is_no_hex_address(text, expected):
    assert looks_like_ens_name(text) is expected


def test_names_are_normalised_per_ensip15():
    assert normalize_name("Demo.ETH") == "demo.eth"
    assert normalize_name("ｖitalik.eth") == "vitalik.eth"  # full-width letter folded
    with pytest.raises(InvalidAddress, match="Invalid character"):
        normalize_name("ab\u200d.eth")  # zero-width joiner outside an emoji


def test_namehash_matches_eip137_and_web3():
    from ens.utils import normal_name_to_hash

    from chains.evm.ens import namehash

    assert namehash("") == b"\0" * 32
    assert namehash("eth").hex() == "93cdeb708b7545dc668eb9280176169d1c33cfd8ed6f04690a0bcc88a93fc4ae"
    assert namehash("foo.eth").hex() == "de9b09fd7c5f901e23a3f19fecc54828e9c848539801e86591bd9801b019f84f"
    assert namehash("demo.eth") == bytes(normal_name_to_hash("demo.eth"))
