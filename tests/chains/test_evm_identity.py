"""EVM chain identity against hostile RPCs: every endpoint proves its chain id before it is trusted, a bad
endpoint is dropped for the fetch and the next one used, and an EVM chain without an id is refused."""

from __future__ import annotations

import json

import pytest

from chains.base import ChainError
from devnet.evm.scenario import ALICE
from tests.chains.test_evm_faults import JSON, amounts, expected, make_adapter, request, rpc_error_reply
from tests.fixtures.evm import chain_config_for


def methods(payload) -> list[str]:
    return [c["method"] for c in (payload if isinstance(payload, list) else [payload])]


def answer_chain_id(value):
    """A handler that answers eth_chainId with ``value`` itself and forwards the rest to anvil."""
    def handler(payload):
        if methods(payload) == ["eth_chainId"]:
            return (200, JSON, json.dumps({"jsonrpc": "2.0", "id": payload["id"], "result": value}).encode())
        return None
    return handler


def test_an_endpoint_of_another_chain_is_skipped_for_the_next_one(evm_devnet, evm_known_assets, rpc_proxy):
    seen: list[list[str]] = []
    wrong = answer_chain_id(hex(evm_devnet.scenario["chain"]["chain_id"] + 1))
    rpc_proxy.handler = lambda payload: (seen.append(methods(payload)), wrong(payload))[1]
    res = make_adapter(evm_devnet, [rpc_proxy.url, evm_devnet.url]).fetch(request(evm_devnet, evm_known_assets))
    assert res.endpoint == evm_devnet.url
    assert amounts(res, ALICE) == expected(evm_devnet, "Alice")
    assert seen == [["eth_chainId"]], "nothing but the identity check was asked of the wrong chain"


def test_method_not_found_for_eth_chain_id_is_permanent_for_that_endpoint(evm_devnet, evm_known_assets, rpc_proxy):
    asked: list[list[str]] = []

    def no_chain_id(payload):
        asked.append(methods(payload))
        return rpc_error_reply(payload, -32601, "Method not found: eth_chainId") if "eth_chainId" in methods(payload) else None

    rpc_proxy.handler = no_chain_id
    with pytest.raises(ChainError) as info:
        make_adapter(evm_devnet, [rpc_proxy.url]).fetch(request(evm_devnet, evm_known_assets))
    assert info.value.permanent
    assert "chain id" in str(info.value) and "127.0.0.1" in str(info.value)
    assert asked == [["eth_chainId"]], "asked once, not retried as a transient error"

    asked.clear()
    res = make_adapter(evm_devnet, [rpc_proxy.url, evm_devnet.url]).fetch(request(evm_devnet, evm_known_assets))
    assert res.endpoint == evm_devnet.url and asked == [["eth_chainId"]]


def test_undecodable_eth_call_data_fails_over_to_a_good_endpoint(evm_devnet, evm_known_assets, rpc_proxy):
    def garbage(payload, reply):
        for call, item in (zip(payload, reply) if isinstance(payload, list) else [(payload, reply)]):
            if call["method"] == "eth_call":
                item["result"] = "0x" + "ab" * 7  # not an aggregate3 answer
        return reply

    rpc_proxy.mutate = garbage
    res = make_adapter(evm_devnet, [rpc_proxy.url, evm_devnet.url]).fetch(request(evm_devnet, evm_known_assets))
    assert res.endpoint == evm_devnet.url
    assert amounts(res, ALICE) == expected(evm_devnet, "Alice")


def test_a_wrong_chain_at_the_only_endpoint_is_permanent_and_names_it_redacted(evm_devnet, evm_known_assets, rpc_proxy):
    rpc_proxy.handler = answer_chain_id("0x1")
    keyed = f"{rpc_proxy.url}/v3/0123456789abcdef0123456789abcdef"
    with pytest.raises(ChainError) as info:
        make_adapter(evm_devnet, [keyed]).fetch(request(evm_devnet, evm_known_assets))
    assert info.value.permanent
    message = str(info.value)
    assert "chain id 1" in message and "127.0.0.1" in message
    assert "0123456789abcdef0123456789abcdef" not in message


def test_an_evm_chain_without_a_chain_id_is_refused(evm_devnet):
    config = chain_config_for(evm_devnet.scenario, chain_id=None)
    with pytest.raises(ChainError, match="no chain id") as info:
        make_adapter(evm_devnet, [evm_devnet.url], config=config)
    assert info.value.permanent


@pytest.mark.django_db
def test_the_admin_refuses_an_evm_chain_without_a_chain_id(admin_client):
    from portfolio.models import Chain

    response = admin_client.post("/admin/portfolio/chain/add/", {
        "slug": "mystery", "name": "Mystery", "family": "evm", "chain_id": "", "network": "mainnet",
        "native_symbol": "ETH", "native_decimals": "18", "sync_interval": "00:05:00",
    })
    assert response.status_code == 200
    assert "needs its chain id" in response.content.decode()
    assert not Chain.objects.filter(slug="mystery").exists()
