"""Misbehaving endpoints: transient errors, 429 back-off, failover, another cluster, and bad input."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from solders.keypair import Keypair

from chains.base import ChainConfig, ChainError, EndpointConfig, FetchRequest, InvalidAddress, WalletRef
from chains.endpoints import EndpointHealth, RpcError
from chains.solana.adapter import SolanaAdapter

WALLET = "FgHjFF3sbXAYytoV4TDHgD5nM9vh1e3B2d7KrRtPBGzp"
GENESIS = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d"  # the cluster CHAIN expects (mainnet-beta's)
OTHER_GENESIS = "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG"  # devnet's
CHAIN = ChainConfig(slug="solana-test", family="solana", native_symbol="SOL", native_decimals=9,
                    extra={"genesis_hash": GENESIS})


def good_answer(request, genesis=GENESIS, lamports=42):
    """A minimal healthy node: an empty wallet with 42 lamports at slot 7, epoch 0."""
    method = request["method"]
    ctx = {"slot": 7, "apiVersion": "2.1.21"}
    value = {"getBalance": lamports, "getTokenAccountsByOwner": [], "getMultipleAccounts": []}.get(method)
    result = {"getProgramAccounts": [], "getGenesisHash": genesis,
              "getEpochInfo": {"epoch": 0, "absoluteSlot": 7, "blockHeight": 7, "slotIndex": 7, "slotsInEpoch": 432000}}.get(
        method, {"context": ctx, "value": value})
    return 200, {}, json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result})


def answer_batch(behaviour, payload):
    """A batch the way a node answers it: the items' answers as one array, unless one item fails at the
    HTTP level (429, 5xx) or is not JSON, which then answers for the whole request."""
    if not isinstance(payload, list):
        return behaviour(payload)
    answers = [behaviour(item) for item in payload]
    failed = next((a for a in answers if a[0] != 200), None)
    if failed:
        return failed
    try:
        return 200, {}, json.dumps([json.loads(body) for _, _, body in answers])
    except ValueError:
        return answers[0]


class FaultyNode:
    """A local node (the shared ``RpcProxy`` answering everything itself) whose answers come from
    ``behaviour(request) -> (status, headers, body)`` per call; ``requests`` lists the methods called,
    ``http_requests`` the arrival time of each HTTP request; ``batches = False`` makes it refuse JSON
    arrays as some providers do (one error object for the whole array)."""

    def __init__(self, proxy, behaviour):
        self.proxy, self.url, self.behaviour = proxy, proxy.url, behaviour
        self.requests, self.batches = [], True
        proxy.handler = self._answer

    @property
    def http_requests(self) -> list[float]:
        return self.proxy.stamps

    def _answer(self, payload):
        if isinstance(payload, list) and not self.batches:
            self.requests.append(payload[0]["method"] + "[]")
            return 200, {}, json.dumps({"jsonrpc": "2.0", "id": None,
                                        "error": {"code": -32600, "message": "batch requests are disabled"}}).encode()
        self.requests.extend(r["method"] for r in (payload if isinstance(payload, list) else [payload]))
        status, headers, body = answer_batch(self.behaviour, payload)
        return status, headers, body.encode() if isinstance(body, str) else body


@pytest.fixture
def faulty(rpc_proxy_factory):
    from devnet.common import free_port

    return lambda behaviour: FaultyNode(rpc_proxy_factory(f"http://127.0.0.1:{free_port()}"), behaviour)


def adapter_for(*urls, timeout_s=2.0, **extra):
    from dataclasses import replace

    endpoints = [EndpointConfig(url=u, priority=i, timeout_s=timeout_s) for i, u in enumerate(urls)]
    return SolanaAdapter(replace(CHAIN, extra={**CHAIN.extra, **extra}), endpoints, health=EndpointHealth())


def fetch(adapter, address=WALLET, cursors=None):
    return adapter.fetch(FetchRequest(wallets=(WalletRef(address),), cursors=cursors or {}))


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
    assert result.request_count == len(good.http_requests) + len(bad.http_requests) == 2


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
    assert result.request_count == len(node.http_requests) == 2  # one batch, sent again after the 429


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


# --------------------------------------------------------------------------- chain identity


def test_an_endpoint_on_another_cluster_is_skipped_for_the_next(faulty):
    """Pointed at another (empty) cluster, the first endpoint's answers are never used."""
    wrong = faulty(lambda r: good_answer(r, genesis=OTHER_GENESIS, lamports=0))
    right = faulty(good_answer)
    result = fetch(adapter_for(wrong.url, right.url))
    assert result.balances[0].amount == 42 and result.endpoint == right.url
    assert len(wrong.http_requests) == 1  # found out by the genesis check in the first batch, then left alone
    assert result.cursors == {WALLET: {"genesis_hash": GENESIS}}


def test_only_endpoints_on_another_cluster_is_an_error_naming_them(faulty):
    wrong = faulty(lambda r: good_answer(r, genesis=OTHER_GENESIS, lamports=0))
    with pytest.raises(ChainError) as info:
        fetch(adapter_for(wrong.url))
    assert "another cluster" in str(info.value) and wrong.url in str(info.value)
    assert OTHER_GENESIS in str(info.value) and GENESIS in str(info.value)


def test_without_a_configured_hash_the_first_answer_is_pinned_in_the_cursor(faulty):
    """An unpinned chain trusts its first cluster once (a problem says so) and refuses another later."""
    first = faulty(good_answer)
    result = fetch(adapter_for(first.url, genesis_hash=None))
    assert result.cursors == {WALLET: {"genesis_hash": GENESIS}}
    assert [p.code for p in result.problems] == ["genesis_unpinned"]
    again = fetch(adapter_for(first.url, genesis_hash=None), cursors=result.cursors)
    assert again.problems == () and again.balances[0].amount == 42
    elsewhere = faulty(lambda r: good_answer(r, genesis=OTHER_GENESIS, lamports=0))
    with pytest.raises(ChainError, match="another cluster"):
        fetch(adapter_for(elsewhere.url, genesis_hash=None), cursors=result.cursors)


def test_an_endpoint_without_batches_is_checked_first_then_asked_call_by_call(faulty):
    node = faulty(good_answer)
    node.batches = False  # answers a JSON array with one error object, as providers without batches do
    result = fetch(adapter_for(node.url))
    assert result.balances[0].amount == 42
    assert node.requests[:2] == ["getGenesisHash" + "[]", "getGenesisHash"]  # the refused batch, then the check
    assert sorted(node.requests[2:]) == sorted(["getBalance", "getTokenAccountsByOwner", "getTokenAccountsByOwner",
                                               "getProgramAccounts", "getProgramAccounts", "getProgramAccounts", "getEpochInfo"])


def test_a_refused_protocol_read_is_a_problem_and_balances_still_load(faulty):
    """Providers that disable getProgramAccounts: stake and stake-pool reads become problems, the
    wallet's SOL still loads, and the result says it is incomplete (so stored positions are not trusted)."""
    def no_scans(request):
        if request["method"] == "getProgramAccounts":
            return 200, {}, json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                        "error": {"code": -32010, "message": "excluded from account secondary indexes"}})
        return good_answer(request)

    result = fetch(adapter_for(faulty(no_scans).url))
    assert result.balances[0].amount == 42 and result.positions == () and not result.complete
    assert {(p.code, p.subject) for p in result.problems} == {("protocol_unreadable", WALLET), ("protocol_unreadable", "")}
    assert {p.message.split(":")[0] for p in result.problems} == {"solana-stake", "spl-stake-pool"}


def test_a_garbage_stake_pool_account_is_a_problem(faulty):
    pool = str(Keypair.from_seed(bytes([5]) * 32).pubkey())

    def garbage_pool(request):
        if request["method"] == "getMultipleAccounts":
            data = base64.b64encode(bytes([1]) + bytes(40)).decode()  # a stake pool cut short
            value = [{"lamports": 1, "owner": "SPoo1Ku8WFXoNDMHPsrGSTSG1Y47rzgn41SLUNakuHy", "data": [data, "base64"],
                      "executable": False, "rentEpoch": 0, "space": 41}]
            return 200, {}, json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"context": {"slot": 7}, "value": value}})
        return good_answer(request)

    result = fetch(adapter_for(faulty(garbage_pool).url, stake_pools=[pool]))
    assert [(p.code, p.subject) for p in result.problems] == [("protocol_unparseable", pool)]
    assert "truncated" in result.problems[0].message and result.balances[0].amount == 42


# --------------------------------------------------------------------------- politeness under 429


def test_after_a_429_no_request_reaches_the_endpoint_before_retry_after(faulty):
    """Many wallets in small batches, several in flight: once the endpoint has answered 429 with
    Retry-After, nothing more is sent to it until that time has passed, whichever batch asks."""
    lock, state = threading.Lock(), {"limited": 0, "at": 0.0}

    def behaviour(request):
        with lock:
            first = state["limited"] < 1 and request["method"] == "getGenesisHash"
            state["limited"] += first
        if first:
            time.sleep(0.2)  # the batches sent alongside arrive (and are answered) before this 429
            state["at"] = time.time()
            return 429, {"Retry-After": "1"}, "slow down"
        return good_answer(request)

    node = faulty(behaviour)
    wallets = tuple(WalletRef(str(Keypair.from_seed(bytes([i + 1]) * 32).pubkey())) for i in range(12))
    result = adapter_for(node.url, batch_size=4, max_in_flight=4).fetch(FetchRequest(wallets=wallets))
    assert len(result.balances) == 12
    limited_at = state["at"]
    # Batches already on their way when the 429 left the server (at most max_in_flight - 1) may land
    # just after it; without a fetch-wide Retry-After the other batches kept coming (about 20 here).
    too_early = [arrived for arrived in node.http_requests if limited_at < arrived < limited_at + 0.9]
    assert len(too_early) <= 3
    assert any(arrived >= limited_at + 0.9 for arrived in node.http_requests)


def test_persistent_429_costs_three_requests_per_fetch_not_one_per_call(faulty):
    node = faulty(lambda r: (429, {"Retry-After": "0"}, "slow down"))
    for batch_size in (100, 0):  # batched, and call by call (the genesis check goes first)
        node.http_requests.clear()
        with pytest.raises(ChainError):
            fetch(adapter_for(node.url, batch_size=batch_size))
        assert len(node.http_requests) == 3, batch_size  # the first try and 2 retries


def test_an_admin_check_of_an_endpoint_names_its_cluster(faulty):
    from chains.solana.rpc import WrongCluster

    right, wrong = faulty(good_answer), faulty(lambda r: good_answer(r, genesis=OTHER_GENESIS))
    adapter = adapter_for(right.url)
    assert adapter.check_endpoint(EndpointConfig(right.url)) == GENESIS
    with pytest.raises(WrongCluster) as info:
        adapter.check_endpoint(EndpointConfig(wrong.url))
    assert OTHER_GENESIS in str(info.value) and wrong.url in str(info.value)
    from devnet.common import free_port

    with pytest.raises(ChainError) as info:
        adapter.check_endpoint(EndpointConfig(f"http://127.0.0.1:{free_port()}", timeout_s=1))
    assert "connection failed" in str(info.value)
