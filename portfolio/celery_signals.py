"""Celery signal handlers every process connects: per-queue time limits on publish, task metrics in workers."""

from __future__ import annotations

import gc
import logging
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun, task_retry, worker_process_init, worker_process_shutdown
from django.conf import settings


@before_task_publish.connect(dispatch_uid="portfolio.time_limits")
def stamp_time_limits(headers: dict[str, Any] | None = None, routing_key: str | None = None, **kwargs: Any) -> None:
    """Give a message the soft and hard time limits of its queue unless the task or the caller set its
    own (``@app.task(time_limit=...)``, ``apply_async(soft_time_limit=...)``).

    Not the global ``task_time_limit`` settings: Celery copies those into every message, which would
    hide the queue's limits."""
    if headers is None or "timelimit" not in headers and "task" not in headers:
        return  # not a task message (protocol 2 headers carry "task")
    hard, soft = headers.get("timelimit") or (None, None)
    limits = settings.CELERY_QUEUE_TIME_LIMITS.get(routing_key or "") or settings.CELERY_QUEUE_TIME_LIMITS["default"]
    headers["timelimit"] = [hard or limits[1], soft or limits[0]]


@before_task_publish.connect(dispatch_uid="portfolio.tracing.inject")
def _carry_trace(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    from portfolio import tracing

    if headers is not None and tracing.enabled():
        tracing.inject(headers)  # the task's span joins the trace of the request (or task) that sent it


@task_prerun.connect(dispatch_uid="portfolio.tracing.prerun")
def _trace_task(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    from portfolio import tracing

    tracing.task_started(task, task_id or "")


@task_postrun.connect(dispatch_uid="portfolio.tracing.postrun")
def _end_task_trace(task_id: str | None = None, state: str | None = None, **kwargs: Any) -> None:
    from portfolio import tracing

    tracing.task_finished(task_id or "", state)


@task_prerun.connect(dispatch_uid="portfolio.metrics.prerun")
def _task_started(task_id: str | None = None, **kwargs: Any) -> None:
    from portfolio import metrics

    metrics.task_started(task_id or "")


@task_postrun.connect(dispatch_uid="portfolio.metrics.postrun")
def _task_done(task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any) -> None:
    from portfolio import metrics

    if state in ("SUCCESS", "FAILURE"):  # a retry is counted by task_retry
        metrics.task_finished(task_id or "", getattr(task, "name", "?"), metrics.queue_of(getattr(task, "request", None)),
                              "success" if state == "SUCCESS" else "failure")


@task_postrun.connect(dispatch_uid="portfolio.endpoint_health.flush")
def _flush_endpoint_health(**kwargs: Any) -> None:
    from portfolio import endpoint_health

    try:
        endpoint_health.flush()
    except Exception as exc:  # noqa: BLE001 - health bookkeeping must never fail a task
        logging.getLogger(__name__).warning("endpoint health not written: %s", type(exc).__name__)


@task_postrun.connect(dispatch_uid="portfolio.db.return_connections")
def _return_connections(task: Any = None, **kwargs: Any) -> None:
    """After each task (and after the handlers above, which may still write), hand this process's
    database connection back: to the pool on PostgreSQL, where the next task's checkout checks it,
    closed on SQLite. Celery's own Django fix-up would close the whole pool instead (see
    ``CELERY_DB_REUSE_MAX``). An eager task runs inside its caller's transaction: nothing is closed."""
    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@task_retry.connect(dispatch_uid="portfolio.metrics.retry")
def _task_retried(request: Any = None, sender: Any = None, **kwargs: Any) -> None:
    from portfolio import metrics

    metrics.task_finished(getattr(request, "id", "") or "", getattr(sender, "name", "?"), metrics.queue_of(request), "retry")


@worker_process_init.connect(dispatch_uid="portfolio.gc.freeze")
def _freeze_startup_heap(**kwargs: Any) -> None:
    """Move everything a pool process holds once started (Django, Celery, web3, the adapters' modules:
    a few hundred thousand objects, none of them garbage) out of the cyclic collector's sight. A
    sync allocates hundreds of thousands of tuples; each collection they set off would otherwise walk
    that whole startup heap again (measured: a steady-state fetch of 250 wallets took 1.3-1.6x as long
    in a worker as with the collector paused). Cycles made later are still collected."""
    gc.collect()
    gc.freeze()


@worker_process_shutdown.connect(dispatch_uid="portfolio.metrics.process_dead")
def _process_gone(pid: int | None = None, **kwargs: Any) -> None:
    import os

    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid or os.getpid())
