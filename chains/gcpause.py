"""Pausing the cyclic garbage collector around allocation-heavy work, safe across threads and nesting."""

from __future__ import annotations

import gc
import os
import threading
from contextlib import ContextDecorator

# Who holds the pause: thread id -> nesting depth. The collector stays off while anyone holds it and
# goes back on when the last holder leaves, and only if it was on when the first one came in.
_holders: dict[int, int] = {}
_was_enabled = False
_lock = threading.Lock()


class without_cyclic_gc(ContextDecorator):  # noqa: N801 - used like a function: ``with without_cyclic_gc():``
    """``with without_cyclic_gc():`` (or as a decorator) runs its block with the cyclic garbage
    collector paused. For work that allocates tens or hundreds of thousands of objects none of which
    is in a reference cycle (a fetch's balances, a sync's rows): each collection those allocations set
    off would walk every young object, and now and then the whole heap, for nothing. Reference
    counting still frees everything as usual; cycles made meanwhile are collected after the pause.

    Safe to nest and to enter from several threads at once: the collector is switched back on when the
    last holder leaves, and only if it was enabled before the first holder came in (a caller that had
    turned it off keeps it off), also when the block raises. Keep the block short: while it runs, no
    thread of the process collects cycles.
    """

    def __enter__(self) -> without_cyclic_gc:
        global _was_enabled
        me = threading.get_ident()
        with _lock:
            if not _holders:
                _was_enabled = gc.isenabled()
                gc.disable()
            _holders[me] = _holders.get(me, 0) + 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        me = threading.get_ident()
        with _lock:
            depth = _holders.pop(me) - 1
            if depth:
                _holders[me] = depth
            elif not _holders and _was_enabled:
                gc.enable()


def _after_fork_in_child() -> None:
    """Only the thread that forked lives on in the child: the other threads' holds are gone with them
    (and the lock may have been held by one of them at the fork)."""
    global _lock
    _lock = threading.Lock()
    gone = [ident for ident in _holders if ident != threading.get_ident()]
    for ident in gone:
        del _holders[ident]
    if gone and not _holders and _was_enabled:
        gc.enable()


if hasattr(os, "register_at_fork"):  # not on Windows, where nothing forks
    os.register_at_fork(after_in_child=_after_fork_in_child)
