"""Multicall reads share one thread pool per process but never have more than ``parallel`` requests in flight."""

from __future__ import annotations

import threading
import time

import pytest

from chains.evm.multicall import in_flight


def test_it_keeps_order_and_at_most_parallel_items_in_progress():
    lock = threading.Lock()
    running, peak = [0], [0]
    together = threading.Barrier(3, timeout=10)  # the first three items only pass when three run at once

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if i < 3:
            together.wait()
        time.sleep(0.002)
        with lock:
            running[0] -= 1
        return i * i

    assert in_flight(work, list(range(12)), 3) == [i * i for i in range(12)]
    assert peak[0] == 3
    assert in_flight(lambda i: i + 1, [4], 3) == [5]
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
