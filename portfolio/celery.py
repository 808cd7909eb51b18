"""The Celery app: settings from Django (CELERY_*), one queue per chain family, and the beat schedule rows."""

from __future__ import annotations

import os

from celery import Celery
from django.db.models.signals import post_migrate
from kombu import Queue

from chains.registry import FAMILIES  # also imports every adapter (web3, solders...) before the pool forks
from portfolio.jobs import HISTORY_QUEUE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portfolio.settings")

app = Celery("portfolio")
app.config_from_object("django.conf:settings", namespace="CELERY")
# One queue per chain family so workers can be scaled per family (`celery worker -Q evm`), and one for
# backfills ("history"), so a year of history being read never delays a sync.
app.conf.task_queues = (Queue("default"), *(Queue(family) for family in FAMILIES), Queue(HISTORY_QUEUE))
app.conf.task_default_queue = "default"
app.autodiscover_tasks()


def _ensure_periodic_tasks(sender, **kwargs) -> None:
    """After `migrate`: create the missing PeriodicTask rows (idempotent; admins edit them later)."""
    if getattr(sender, "name", None) != "portfolio":
        return
    from portfolio.sync.schedule import ensure_periodic_tasks

    ensure_periodic_tasks()


post_migrate.connect(_ensure_periodic_tasks, dispatch_uid="portfolio.ensure_periodic_tasks")


# Signal handlers (per-queue time limits, task metrics): connected in every process that loads the app.
from portfolio import celery_signals  # noqa: E402,F401
