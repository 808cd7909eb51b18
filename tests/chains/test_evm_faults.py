"""EvmAdapter against misbehaving endpoints: failover, 429, malformed answers, corrupted data, big ranges."""

from __future__ import annotations

import json

import pytest
from eth_abi import decode, encode

from chains.base import ChainError, EndpointConfig, FetchRequest, NATIVE, WalletRef
from chains.endpoints import EndpointHealth
from chains.evm.adapter import EvmAdapter
from devnet.common import free_port
from devnet.evm.scenario import ALICE, BOB
from tests.fixtures.evm import chain_config_for

JSON = {"content-type": "application/json"}


def make_adapter(devnet, urls, **kwargs):
    cfg = kwargs.pop("config", None) or chain_config_for(devnet.scenario)
    endpoints = [EndpointConfig(url=u, priority=i, timeout_s=5.0) for i, u in enumerate(urls)]
    kwargs.setdefault("metadata_fetcher", lambda uri: {})
    return EvmAdapter(cfg, endpoints, health=EndpointHealth(), **kwargs)


def request(devnet, known):
    return FetchRequest(wallets=(WalletRef(ALICE), WalletRef(BOB)), known_assets=known)


def expected(devnet, who):
    return {k: int(v) for k, v in devnet.wallet(who)["balances"].items()}


def amounts(result, owner):
    return {(b.asset.address or NATIVE): b.amount for b in result.balances if b.owner == owner}


def rpc_error_reply(payload, code, message):
    items = payload if isinstance(payload, list) else [payload]
    replies = [{"jsonrpc": "2.0", "id": c["id"], "error": {"code": code, "message": message}} for c in items]
    return (200, JSON, json.dumps(replies if isinstance(payload, list) else replies[0]).encode())


def test_a_down_endpoint_fails_over_to_the_next_one(evm_devnet, evm_known_assets):
    dead = f"http://127.0.0.1:{free_port()}"
    res = make_adapter(evm_devnet, [dead, evm_devnet.url]).fetch(request(evm_devnet, evm_known_assets))
    assert res.endpoint == evm_devnet.url
    assert amounts(res, ALICE) == expected(evm_devnet, "Alice")


def test_all_endpoints_down_is_a_transient_error(evm_devnet, evm_known_assets):
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    with pytest.raises(ChainError) as info:
        make_adapter(evm_devnet, dead).fetch(request(evm_devnet, evm_known_assets))
    assert not info.value.permanent


def test_a_5xx_endpoint_fails_over(evm_devnet, evm_known_assets, rpc_proxy):
    rpc_proxy.handler = lambda payload: (502, {}, b"bad gateway")
    res = make_adapter(evm_devnet, [rpc_proxy.url, evm_devnet.url]).fetch(request(evm_devnet, evm_known_assets))
    assert res.endpoint == evm_devnet.url


def test_429_retry_after_is_honoured(evm_devnet, evm_known_assets, rpc_proxy):
    sleeps: list[float] = []
    state = {"n": 0}

    def limited(payload):
        state["n"] += 1
        return (429, {"retry-after": "2"}, b"slow down") if state["n"] == 1 else None

    rpc_proxy.handler = limited
    res = make_adapter(evm_devnet, [rpc_proxy.url], sleep=sleeps.append).fetch(request(evm_devnet, evm_known_assets))
    assert sleeps == [2.0]
    assert res.endpoint == rpc_proxy.url
    assert amounts(res, BOB) == expected(evm_devnet, "Bob")


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"jsonrpc": "2.0", "id": 1}', b'[{"id": 999}]'])
def test_a_malformed_answer_is_a_transient_error(evm_devnet, evm_known_assets, rpc_proxy, body):
    rpc_proxy.handler = lambda payload: (200, JSON, body)
    with pytest.raises(ChainError) as info:
        make_adapter(evm_devnet, [rpc_proxy.url]).fetch(request(evm_devnet, evm_known_assets))
    assert not info.value.permanent


def test_a_malformed_block_number_is_a_transient_error(evm_devnet, evm_known_assets, rpc_proxy):
    def mutate(payload, reply):
        if isinstance(reply, list):
            for item in reply:
                if item.get("result", "").startswith("0x") and len(item["result"]) < 10:
                    item["result"] = "banana"
        return reply

    rpc_proxy.mutate = mutate
    with pytest.raises(ChainError) as info:
        make_adapter(evm_devnet, [rpc_proxy.url]).fetch(request(evm_devnet, evm_known_assets))
    assert not info.value.permanent


def test_a_corrupted_token_answer_is_skipped_and_reported(evm_devnet, evm_known_assets, rpc_proxy):
    demo = evm_devnet.asset("DEMO")["address"].lower()

    def corrupt_one(call, reply):
        (calls,) = decode(["(address,bool,bytes)[]"], bytes.fromhex(call["params"][0]["data"][10:]))
        (results,) = decode(["(bool,bytes)[]"], bytes.fromhex(reply["result"][2:]))
        results = [(ok, b"\x01\x02\x03" if target.lower() == demo else data)
                   for (target, _, _), (ok, data) in zip(calls, results)]
        reply["result"] = "0x" + encode(["(bool,bytes)[]"], [results]).hex()

    def corrupt(payload, reply):
        pairs = zip(payload, reply) if isinstance(payload, list) else [(payload, reply)]
        for call, item in pairs:
            if call["method"] == "eth_call":
                corrupt_one(call, item)
        return reply

    rpc_proxy.mutate = corrupt
    res = make_adapter(evm_devnet, [rpc_proxy.url]).fetch(request(evm_devnet, evm_known_assets))
    problem = next(p for p in res.problems if p.subject.lower() == demo)
    assert problem.code == "balance_bad_return"
    alice = expected(evm_devnet, "Alice")
    alice.pop(evm_devnet.asset("DEMO")["address"])
    assert amounts(res, ALICE) == alice


def test_a_chunk_the_node_refuses_is_split_until_it_passes(evm_devnet, evm_known_assets, rpc_proxy):
    def too_big(call):
        return call["method"] == "eth_call" and int(call["params"][0]["data"][74:138], 16) > 4  # array length

    def refuse_big(payload):
        if isinstance(payload, dict) and too_big(payload):
            return rpc_error_reply(payload, -32000, "out of gas")
        if isinstance(payload, list) and any(too_big(c) for c in payload):
            return (200, JSON, json.dumps([
                {"jsonrpc": "2.0", "id": c["id"], "error": {"code": -32000, "message": "out of gas"}} for c in payload
            ]).encode())
        return None

    rpc_proxy.handler = refuse_big
    res = make_adapter(evm_devnet, [rpc_proxy.url], chunk_size=8).fetch(request(evm_devnet, evm_known_assets))
    assert amounts(res, ALICE) == expected(evm_devnet, "Alice")
    assert len(rpc_proxy.calls("eth_call")) > 4


def test_the_log_range_shrinks_on_too_many_results(evm_devnet, evm_known_assets, rpc_proxy):
    def limit(payload):
        if isinstance(payload, list) and payload[0]["method"] == "eth_getLogs":
            f = payload[0]["params"][0]
            if int(f["toBlock"], 16) - int(f["fromBlock"], 16) + 1 > 8:
                return rpc_error_reply(payload, -32005, "query returned more than 10000 results")
        return None

    rpc_proxy.handler = limit
    cfg = chain_config_for(evm_devnet.scenario, log_range=1000)
    adapter = make_adapter(evm_devnet, [rpc_proxy.url], config=cfg)
    res = adapter.fetch(request(evm_devnet, evm_known_assets))
    assert amounts(res, ALICE) == expected(evm_devnet, "Alice")
    ok = [(a, b) for a, b in adapter.last_scan.ranges if b - a + 1 <= 8]
    assert ok and ok[0][0] == 0 and ok[-1][1] == res.height
    assert res.cursors[ALICE]["last_scanned_block"] == res.height


def test_a_log_range_that_always_fails_keeps_the_cursor_and_reports(evm_devnet, evm_known_assets, rpc_proxy):
    def broken(payload):
        if isinstance(payload, list) and payload[0]["method"] == "eth_getLogs":
            return rpc_error_reply(payload, -32601, "method not available")
        return None

    rpc_proxy.handler = broken
    res = make_adapter(evm_devnet, [rpc_proxy.url]).fetch(request(evm_devnet, evm_known_assets))
    assert any(p.code == "log_scan_failed" for p in res.problems) and not res.complete
    assert res.cursors[ALICE]["last_scanned_block"] == -1  # first scan starts again at block 0
    assert amounts(res, BOB)[evm_devnet.asset("DUSD")["address"]] == 500_000  # listed tokens still load


def test_an_endpoint_that_refuses_batches_is_asked_one_by_one(evm_devnet, evm_known_assets, rpc_proxy):
    def no_batches(payload):
        if isinstance(payload, list):
            return (200, JSON, json.dumps({"jsonrpc": "2.0", "id": None,
                                           "error": {"code": -32600, "message": "batch requests are not supported"}}).encode())
        return None

    rpc_proxy.handler = no_batches
    res = make_adapter(evm_devnet, [rpc_proxy.url]).fetch(request(evm_devnet, evm_known_assets))
    assert amounts(res, ALICE) == expected(evm_devnet, "Alice")
    assert len(res.nfts) == 6  # Alice 2 punks + 2 items, Bob 1 punk + 1 item


def test_batches_can_be_switched_off_per_chain(evm_devnet, evm_known_assets, rpc_proxy):
    cfg = chain_config_for(evm_devnet.scenario, extra={"rpc_batch": False})
    res = make_adapter(evm_devnet, [rpc_proxy.url], config=cfg, chunk_size=10).fetch(request(evm_devnet, evm_known_assets))
    assert not any(isinstance(p, list) for p in rpc_proxy.payloads)
    assert amounts(res, BOB) == expected(evm_devnet, "Bob")


def test_an_adapter_per_sync_does_not_load_the_ca_bundle_each_time(evm_devnet, evm_known_assets, monkeypatch):
    """Every sync builds its adapter, and so its HTTP client: the verifying TLS context (the whole CA
    bundle parsed, ~35 ms of CPU) is made once per process and shared, and the adapters still read."""
    import ssl

    loads = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self, *args, **kwargs):
        loads.append(args or kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    adapters = [make_adapter(evm_devnet, [evm_devnet.url]) for _ in range(3)]
    assert len(loads) <= 1  # none when an earlier adapter of this process made the context, else one
    result = adapters[-1].fetch(request(evm_devnet, evm_known_assets))
    assert amounts(result, ALICE) == expected(evm_devnet, "Alice")
