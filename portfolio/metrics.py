"""Prometheus metrics: HTTP requests, Celery tasks, RPC calls (from the chains observer hook), and, read
at scrape time, sync freshness per chain and queue depth. README "Metrics" lists them.

Web and worker processes write to ``PROMETHEUS_MULTIPROC_DIR`` (set in settings, default
``var/metrics``), so one ``/metrics`` on the web server shows every process of this host; a worker on
another host serves its own with ``METRICS_WORKER_PORT``.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from chains.endpoints import RpcEvent, add_observer
from portfolio.health import BoundedProbe

HTTP_REQUESTS = Counter("chainfolio_http_requests_total", "HTTP requests by view, method and status class",
                        ["view", "method", "status"])
HTTP_SECONDS = Histogram("chainfolio_http_request_seconds", "HTTP request latency by view", ["view"],
                         buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
TASKS = Counter("chainfolio_celery_tasks_total", "Celery tasks finished, by task, queue and outcome "
                "(success, failure, retry)", ["task", "queue", "outcome"])
TASK_SECONDS = Histogram("chainfolio_celery_task_seconds", "Celery task run time by task and queue", ["task", "queue"],
                         buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
RPC_REQUESTS = Counter("chainfolio_rpc_requests_total", "RPC requests by endpoint (redacted) and outcome "
                       "(ok, error, rate_limited, broken)", ["endpoint", "outcome"])
RPC_SECONDS = Histogram("chainfolio_rpc_request_seconds", "RPC request latency by endpoint", ["endpoint"],
                        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
RPC_WAIT_SECONDS = Counter("chainfolio_rpc_wait_seconds_total", "Seconds spent waiting before RPC requests: the shared "
                           "rate limit (rate_limit) or a 429 back-off (backoff)", ["endpoint", "reason"])
QUEUES = ("default", "evm", "bitcoin", "solana")


def observe_rpc(event: RpcEvent) -> None:
    if event.kind == "request":
        RPC_REQUESTS.labels(event.endpoint, event.outcome).inc()
        RPC_SECONDS.labels(event.endpoint).observe(event.seconds)
    elif event.seconds > 0:
        RPC_WAIT_SECONDS.labels(event.endpoint, event.outcome).inc(event.seconds)


def install() -> None:
    """Register the chains observer (idempotent); called from the app's ``ready()``."""
    add_observer(observe_rpc)


class ScrapeTimeCollector(Collector):
    """Gauges read when scraped: sync freshness per chain (from the database) and queue depth (from the
    broker), each a bounded probe so a slow dependency cannot hang the scrape (its gauge is then empty)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        age = GaugeMetricFamily("chainfolio_sync_oldest_success_age_seconds",
                                "Per enabled chain: seconds since the least recently synced wallet's last successful "
                                "read (a wallet never synced counts from when it was added)", labels=["chain"])
        interval = GaugeMetricFamily("chainfolio_sync_interval_seconds", "Per enabled chain: its sync interval",
                                     labels=["chain"])
        for slug, oldest, every in _FRESHNESS.run() or ():
            age.add_metric([slug], oldest)
            interval.add_metric([slug], every)
        yield age
        yield interval
        depth = GaugeMetricFamily("chainfolio_queue_depth", "Messages waiting per Celery queue", labels=["queue"])
        for queue, size in (_DEPTH.run() or {}).items():
            depth.add_metric([queue], size)
        yield depth


def _freshness() -> list[tuple[str, float, float]]:
    from django.db import connections
    from django.db.models import Min
    from django.db.models.functions import Coalesce
    from django.utils import timezone

    from portfolio.models import Chain, WalletChain

    try:
        now = timezone.now()
        chains = {c.id: c for c in Chain.objects.filter(enabled=True)}
        oldest = (WalletChain.objects.filter(chain_id__in=chains)
                  .values("chain_id").annotate(oldest=Min(Coalesce("last_ok_at", "wallet__created_at"))))
        return [(chains[r["chain_id"]].slug, (now - r["oldest"]).total_seconds(), chains[r["chain_id"]].sync_interval.total_seconds())
                for r in oldest if r["oldest"] is not None]
    finally:
        connections["default"].close()  # the probe thread's own connection


def _depth() -> dict[str, int]:
    from celery import current_app as app  # the project's app; importing portfolio.celery here would be a cycle

    sizes: dict[str, int] = {}
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in QUEUES:
            try:
                sizes[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except Exception:  # noqa: BLE001 - a queue not declared yet holds nothing
                sizes[queue] = 0
    return sizes


_FRESHNESS = BoundedProbe("freshness", _freshness)
_DEPTH = BoundedProbe("queue-depth", _depth)


def render() -> tuple[bytes, str]:
    """The exposition text of every process of this host (multiprocess files) plus the scrape-time gauges."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(ScrapeTimeCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def task_started(task_id: str) -> None:
    _STARTED[task_id] = time.monotonic()


def task_finished(task_id: str, task: str, queue: str, outcome: str) -> None:
    started = _STARTED.pop(task_id, None)
    TASKS.labels(task, queue, outcome).inc()
    if started is not None and outcome != "retry":
        TASK_SECONDS.labels(task, queue).observe(time.monotonic() - started)


_STARTED: dict[str, float] = {}


def queue_of(request: Any) -> str:
    info = getattr(request, "delivery_info", None) or {}
    return str(info.get("routing_key") or "default")
