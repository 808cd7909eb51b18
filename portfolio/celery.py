"""The Celery app: settings from Django (CELERY_*), one queue per chain family."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portfolio.settings")

app = Celery("portfolio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("evm"), Queue("bitcoin"), Queue("solana"))
app.conf.task_default_queue = "default"
app.autodiscover_tasks()
