"""Bounded readiness probes: each runs in its own thread and the caller waits at most a few seconds.

A probe that is still stuck from an earlier call is not started again (the answer is "fail" at once),
so a hung database or broker never piles up threads or holds a web worker.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from django.db import connections

PROBE_TIMEOUT_S = 3.0


class BoundedProbe:
    """``probe()`` -> True when ``check()`` returned a true value within ``timeout_s``; ``probe.run()``
    -> that value, or None on failure, timeout or while an earlier call still hangs."""

    def __init__(self, name: str, check: Callable[[], Any], timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.name, self.check, self.timeout_s = name, check, timeout_s
        self._running: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        return bool(self.run())

    def run(self) -> Any:
        result: list[Any] = []

        def target() -> None:
            try:
                result.append(self.check())
            except Exception:  # noqa: BLE001 - any failure of the dependency is "not ready"
                result.append(None)

        with self._lock:
            if self._running is not None and self._running.is_alive():
                return None  # the previous probe still hangs
            thread = threading.Thread(target=target, name=f"probe-{self.name}", daemon=True)
            self._running = thread
            thread.start()
        thread.join(self.timeout_s)
        return result[0] if result else None


def _database_check() -> bool:
    # A thread of its own has its own connection: close it, so the pool (or SQLite file) gets it back.
    conn = connections["default"]
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0] == 1
    finally:
        conn.close()


def _broker_check() -> bool:
    from celery import current_app as app  # the project's app (importing portfolio.celery here would be a cycle)

    with app.connection_for_write() as conn:
        # Redis: the socket timeouts in the transport options bound a server that accepts and never answers.
        conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_S)
        conn.default_channel  # noqa: B018 - opening a channel makes Redis answer a command
    return True


database_ready = BoundedProbe("database", _database_check)
broker_ready = BoundedProbe("broker", _broker_check)
