"""Request and sync-run ids for log lines: context variables, and the logging filter that stamps them.

Set ``request_id`` per web request (``RequestIdMiddleware``) and ``sync_run_id`` around a sync:
``with sync_run(run.id): ...`` (a task, the sync service). Every log line emitted inside carries
``request_id`` / ``sync_run_id`` (JSON logs as keys; text logs through ``%(request_id)s``).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

request_id: ContextVar[str] = ContextVar("request_id", default="")
sync_run_id: ContextVar[str] = ContextVar("sync_run_id", default="")


@contextmanager
def sync_run(run_id: object) -> Iterator[None]:
    """Log lines inside carry ``sync_run_id=run_id``."""
    token = sync_run_id.set(str(run_id) if run_id is not None else "")
    try:
        yield
    finally:
        sync_run_id.reset(token)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``sync_run_id`` (empty when unset) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.sync_run_id = sync_run_id.get()
        return True
