"""Multicall reads share one thread pool per process but never have more than ``parallel`` requests in flight."""

from __future__ import annotations

import threading
import time

import pytest

from chains.evm.multicall import in_flight


def test_it_keeps_order_and_at_most_parallel_items_in_progress():
    lock = threading.Lock()
    running, peak = [0], [0]

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.005)
        with lock:
            running[0] -= 1
        return i * i

    assert in_flight(work, list(range(12)), 3) == [i * i for i in range(12)]
    assert peak[0] == 3
    assert in_flight(work, [4], 3) == [16]
    assert in_flight(work, [], 3) == []


def test_after_a_failure_no_new_item_starts_and_the_error_is_raised():
    started: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        if i == 1:
            raise ValueError("chunk 1 broke")
        time.sleep(0.01)
        return i

    with pytest.raises(ValueError, match="chunk 1 broke"):
        in_flight(work, list(range(20)), 2)
    assert len(started) < 20
