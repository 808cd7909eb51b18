"""Misbehaving endpoints: transient errors, 429 back-off, failover, and bad input that is permanent."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chains.base import ChainConfig, ChainError, EndpointConfig, FetchRequest, InvalidAddress, WalletRef
from chains.endpoints import EndpointHealth, RpcError
from chains.solana.adapter import SolanaAdapter

WALLET = "FgHjFF3sbXAYytoV4TDHgD5nM9vh1e3B2d7KrRtPBGzp"
CHAIN = ChainConfig(slug="solana-test", family="solana", native_symbol="SOL", native_decimals=9)


def good_answer(request):
    """A minimal healthy node: an empty wallet with 42 lamports at slot 7."""
    method = request["method"]
    ctx = {"slot": 7, "apiVersion": "2.1.21"}
    value = {"getBalance": 42, "getTokenAccountsByOwner": [], "getMultipleAccounts": []}.get(method)
    result = [] if method == "getProgramAccounts" else {"context": ctx, "value": value}
    return 200, {}, json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result})


class FaultyNode:
    """A local HTTP server whose answers come from ``behaviour(request) -> (status, headers, body)``."""

    def __init__(self, behaviour):
        self.behaviour, self.requests = behaviour, []
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["content-length"])))
                node.requests.append(request["method"])
                status, headers, body = node.behaviour(request)
                raw = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def faulty():
    nodes = []

    def make(behaviour):
        nodes.append(FaultyNode(behaviour))
        return nodes[-1]

    yield make
    for node in nodes:
        node.close()


def adapter_for(*urls, timeout_s=2.0):
    endpoints = [EndpointConfig(url=u, priority=i, timeout_s=timeout_s) for i, u in enumerate(urls)]
    return SolanaAdapter(CHAIN, endpoints, health=EndpointHealth())


def fetch(adapter, address=WALLET):
    return adapter.fetch(FetchRequest(wallets=(WalletRef(address),)))


@pytest.mark.parametrize("name,behaviour", [
    ("http 500", lambda r: (500, {}, "boom")),
    ("http 503 html", lambda r: (503, {"Content-Type": "text/html"}, "<html>busy</html>")),
    ("not json", lambda r: (200, {}, "this is not json")),
    ("not json-rpc", lambda r: (200, {}, json.dumps({"hello": "world"}))),
    ("wrong schema", lambda r: (200, {}, json.dumps({"jsonrpc": "2.0", "id": r["id"], "result": {"context": {"slot": 1}, "value": "lots"}}))),
    ("truncated", lambda r: (200, {}, good_answer(r)[2][:25])),
])
def test_a_failing_or_malformed_endpoint_is_a_transient_error(faulty, name, behaviour):
    node = faulty(behaviour)
    with pytest.raises(ChainError) as info:
        fetch(adapter_for(node.url))
    assert not info.value.permanent, name
    assert "this is not json" not in str(info.value)


def test_a_timeout_is_transient(faulty):
    node = faulty(lambda r: (time.sleep(1.5), good_answer(r))[1])
    with pytest.raises(ChainError) as info:
        fetch(adapter_for(node.url, timeout_s=0.3))
    assert not info.value.permanent


def test_a_refused_connection_fails_over_to_the_next_endpoint(faulty):
    from devnet.common import free_port

    good = faulty(good_answer)
    result = fetch(adapter_for(f"http://127.0.0.1:{free_port()}", good.url))
    assert [(b.asset.key, b.amount) for b in result.balances] == [("native", 42)]
    assert result.endpoint == good.url and result.height == 7


def test_a_500_fails_over_and_is_counted(faulty):
    bad, good = faulty(lambda r: (500, {}, "boom")), faulty(good_answer)
    result = fetch(adapter_for(bad.url, good.url))
    assert result.balances[0].amount == 42
    assert result.request_count == 5 + len(bad.requests)


def test_429_honours_retry_after_then_succeeds(faulty):
    calls = {"n": 0}

    def behaviour(request):
        calls["n"] += 1
        if calls["n"] == 1:
            return 429, {"Retry-After": "0.2"}, "slow down"
        return good_answer(request)

    node = faulty(behaviour)
    start = time.monotonic()
    result = fetch(adapter_for(node.url))
    assert result.balances[0].amount == 42
    assert time.monotonic() - start >= 0.2
    assert result.request_count == len(node.requests) == 6  # 5 calls + the one that was rate limited


def test_persistent_429_is_a_transient_rate_limit_error(faulty):
    node = faulty(lambda r: (429, {"Retry-After": "0"}, "slow down"))
    with pytest.raises(ChainError) as info:
        fetch(adapter_for(node.url))
    assert not info.value.permanent and "429" in str(info.value)


@pytest.mark.parametrize("code,message", [(-32000, "Server error"), (-32602, "Invalid params: bad filter")])
def test_a_json_rpc_error_object_is_raised_without_failover(faulty, code, message):
    error = lambda r: (200, {}, json.dumps({"jsonrpc": "2.0", "id": r["id"], "error": {"code": code, "message": message}}))
    first, second = faulty(error), faulty(good_answer)
    with pytest.raises(RpcError) as info:
        fetch(adapter_for(first.url, second.url))
    assert info.value.code == code and not info.value.permanent
    assert second.requests == []


@pytest.mark.parametrize("error", [
    {"code": -32005, "message": "Node is behind by 42 slots", "data": {"numSlotsBehind": 42}},
    {"code": -32005, "message": "Node is behind"},  # no data: solders cannot parse it (malformed)
])
def test_an_unhealthy_node_fails_over(faulty, error):
    first = faulty(lambda r: (200, {}, json.dumps({"jsonrpc": "2.0", "id": r["id"], "error": error})))
    second = faulty(good_answer)
    assert fetch(adapter_for(first.url, second.url)).balances[0].amount == 42


@pytest.mark.parametrize("text", ["not-an-address", "0x" + "ab" * 20, "1" * 45])
def test_an_invalid_address_is_permanent_and_makes_no_request(faulty, text):
    node = faulty(good_answer)
    with pytest.raises(InvalidAddress) as info:
        fetch(adapter_for(node.url), text)
    assert info.value.permanent and node.requests == []


def test_endpoint_credentials_never_appear_in_errors(faulty):
    node = faulty(lambda r: (500, {}, "boom"))
    secret_url = node.url + "/v2/abcdefghijklmnopqrstuvwxyz0123456789"
    with pytest.raises(ChainError) as info:
        fetch(adapter_for(secret_url))
    assert "abcdefghijklmnopqrstuvwxyz0123456789" not in str(info.value)
