"""Celery signal handlers every process connects: per-queue time limits on publish, task metrics in workers."""

from __future__ import annotations

from typing import Any

from celery.signals import before_task_publish
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
