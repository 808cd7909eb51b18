"""A multicall read hands each answer to the caller's decoding on another thread: the next requests go
out while it decodes, never more than ``parallel`` at once, and a decoding error stops the read."""

from __future__ import annotations

import threading
import time

import pytest
from eth_abi import encode

from chains.evm import abi
from chains.evm.multicall import MulticallReader
from chains.evm.plan import Plan

WALLET = "0x" + "ab" * 20
TOKENS = ["0x" + f"{0xC0FFEE00 + i:040x}" for i in range(23)]


class FakeNode:
    """Answers every aggregate3 eth_call of a batch with balanceOf = 1000 + the call's index in its
    chunk, after ``delay`` seconds; counts requests and the most in flight at once."""

    def __init__(self, delay: float = 0.002) -> None:
        self.delay = delay
        self.requests = 0
        self.in_flight = self.peak = 0
        self.lock = threading.Lock()
        self.all_answered = threading.Event()
        self.expected = 0

    def batch(self, calls, *, decode):
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(self.delay)
        out = []
        for i, (_method, params) in enumerate(calls):
            data = b"".join(params.parts).split(b'"data":"0x')[1]
            count = int(data[8 + 64:8 + 128], 16)  # after the selector and the array's offset
            results = [(True, (1000 + k).to_bytes(32, "big")) for k in range(count)]
            out.append(decode(i, "0x" + encode(["(bool,bytes)[]"], [results]).hex()))
        with self.lock:
            self.in_flight -= 1
            if self.requests == self.expected:
                self.all_answered.set()
        return out

    def request(self, method, params, *, decode):
        return self.batch([(method, params)], decode=lambda _i, raw: decode(raw))[0]


def reader_and_calls(node: FakeNode, parallel: int = 2) -> tuple[MulticallReader, Plan]:
    plan = Plan()
    plan.add_balances_of(WALLET, TOKENS)
    # 23 calls in chunks of 3 (8 chunks), 2 per request: 4 requests
    node.expected = 4
    return MulticallReader(node, "0x" + "11" * 20, chunk_size=3, parallel=parallel, chunks_per_request=2), plan


def test_requests_go_on_while_the_caller_decodes_and_every_chunk_is_handed_over_once():
    node = FakeNode()
    reader, plan = reader_and_calls(node)
    seen: list[tuple[int, list[int]]] = []

    def each(first, results):
        # the first answer's decoding waits for the last request: with the decoding done by the threads
        # that read, they would all be waiting here, and the last requests would never be sent
        assert node.all_answered.wait(timeout=5), "requests waited for the caller's decoding"
        seen.append((first, [abi.decode_uint(r.data) for r in results]))

    results = reader.run(plan.calls, 7, each=each)
    assert sorted(seen) == [(first, [1000 + k for k in range(min(3, 23 - first))]) for first in range(0, 23, 3)]
    assert [abi.decode_uint(r.data) for r in results] == [1000 + k % 3 for k in range(23)]
    assert node.requests == 4 and node.peak <= 2 and reader.eth_calls == 8


def test_a_decoding_error_is_raised_and_stops_the_read():
    node = FakeNode(delay=0.05)
    reader, plan = reader_and_calls(node, parallel=1)

    def each(first, results):
        raise ValueError(f"cannot decode the chunk at {first}")

    with pytest.raises(ValueError, match="cannot decode the chunk at"):
        reader.run(plan.calls, 7, each=each)
    assert node.requests < 4  # no new request once the caller's decoding failed
