"""Endpoint health for the admin: RPC outcomes from the chains observer hook, summed per endpoint in each
worker process and written to RpcEndpoint at most every FLUSH_EVERY_S seconds (after a task, in the
task's own thread and database connection)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.db.models import F
from django.utils import timezone

from chains.endpoints import RpcEvent, add_observer

FLUSH_EVERY_S = 30.0
DECAY = 0.5  # at each write the older counts are halved: the rate describes the last few minutes


@dataclass
class _Tally:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    last_error: str = ""


_tallies: dict[str, _Tally] = {}
_lock = threading.Lock()
_last_flush = 0.0


def observe(event: RpcEvent) -> None:
    if event.kind != "request":
        return
    with _lock:
        tally = _tallies.setdefault(event.endpoint, _Tally())
        tally.requests += 1
        tally.seconds += event.seconds
        if event.outcome != "ok":
            tally.errors += 1
            tally.last_error = event.detail[:300]


def flush(force: bool = False) -> int:
    """Write the sums since the last write; returns how many endpoints were updated."""
    global _last_flush
    now = time.monotonic()
    with _lock:
        if not _tallies or (not force and now - _last_flush < FLUSH_EVERY_S):
            return 0
        tallies = dict(_tallies)
        _tallies.clear()
        _last_flush = now
    from portfolio.models import RpcEndpoint

    by_label: dict[str, list[int]] = {}
    for endpoint in RpcEndpoint.objects.only("id", "url"):
        by_label.setdefault(endpoint.label, []).append(endpoint.id)
    updated = 0
    stamp = timezone.now()
    for label, tally in tallies.items():
        ids = by_label.get(label)
        if not ids:
            continue
        changes = {
            "recent_requests": F("recent_requests") * DECAY + tally.requests,
            "recent_errors": F("recent_errors") * DECAY + tally.errors,
            "latency_ms": 1000.0 * tally.seconds / tally.requests,
            "health_updated_at": stamp,
        }
        if tally.last_error:
            changes.update(last_error=tally.last_error, last_error_at=stamp)
        updated += RpcEndpoint.objects.filter(id__in=ids).update(**changes)
    return updated


def install() -> None:
    add_observer(observe)
