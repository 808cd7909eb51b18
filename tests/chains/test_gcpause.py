"""Pausing the cyclic garbage collector: nested, from several threads, on errors, and across a fork."""

from __future__ import annotations

import gc
import os
import threading

import pytest

from chains.gcpause import without_cyclic_gc


@pytest.fixture(autouse=True)
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


def test_it_pauses_the_collector_and_switches_it_back_on():
    with without_cyclic_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_keep_it_off_until_the_outermost_ends():
    with without_cyclic_gc():
        with without_cyclic_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_it_switches_the_collector_back_on_when_the_block_raises():
    with pytest.raises(ZeroDivisionError):
        with without_cyclic_gc():
            with without_cyclic_gc():
                1 / 0
    assert gc.isenabled()


def test_it_works_as_a_decorator_and_passes_the_answer_through():
    @without_cyclic_gc()
    def work(x: int) -> tuple[int, bool]:
        return x * 2, gc.isenabled()

    assert work(21) == (42, False)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with without_cyclic_gc():
        with without_cyclic_gc():
            pass
    assert not gc.isenabled()
    with pytest.raises(KeyError):
        with without_cyclic_gc():
            raise KeyError("x")
    assert not gc.isenabled()


def test_it_stays_off_until_the_last_thread_leaves_whatever_the_order():
    first_in, second_in, first_may_leave, first_left, second_may_leave = (threading.Event() for _ in range(5))
    seen: dict[str, bool] = {}

    def first() -> None:
        with without_cyclic_gc():
            first_in.set()
            first_may_leave.wait(10)
        first_left.set()

    def second() -> None:
        first_in.wait(10)
        with without_cyclic_gc():
            second_in.set()
            second_may_leave.wait(10)
            seen["after the first left"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    second_in.wait(10)
    first_may_leave.set()  # the thread that paused the collector leaves first
    first_left.wait(10)
    assert not gc.isenabled()
    second_may_leave.set()
    for t in threads:
        t.join(10)
    assert seen == {"after the first left": False}
    assert gc.isenabled()


def test_many_threads_pausing_at_once_leave_it_as_it_was():
    start = threading.Barrier(8, timeout=10)

    def work() -> None:
        start.wait()
        for _ in range(200):
            with without_cyclic_gc():
                with without_cyclic_gc():
                    assert not gc.isenabled()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert gc.isenabled()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_does_not_wait_for_threads_it_does_not_have():
    holding, release = threading.Event(), threading.Event()

    def other() -> None:
        with without_cyclic_gc():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    holding.wait(10)
    try:
        pid = os.fork()
        if pid == 0:  # the child: only this thread exists, and it held no pause
            os._exit(0 if gc.isenabled() else 1)
        _, status = os.waitpid(pid, 0)
        assert not gc.isenabled()  # the parent's other thread still holds it
    finally:
        release.set()
        thread.join(10)
    assert os.waitstatus_to_exitcode(status) == 0
    assert gc.isenabled()
