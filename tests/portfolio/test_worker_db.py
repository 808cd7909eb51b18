"""A prefork worker's database session outlives its tasks: Celery's Django fix-up would otherwise
close the PostgreSQL pool around every task, and every sync would open (fork, authenticate, warm up)
a new server session."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from portfolio import celery_signals
from portfolio.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_tasks_of_a_prefork_worker_hand_their_session_back_to_the_pool_instead_of_closing_it():
    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's (SQLite opens a file)")
    fixup = DjangoWorkerFixup(app)  # what `celery worker` installs, with this project's settings
    fixup.worker = SimpleNamespace(pool_cls="celery.concurrency.prefork:TaskPool")
    task = SimpleNamespace(request=SimpleNamespace(is_eager=False))
    pids = []
    for _ in range(6):
        fixup.on_task_prerun(task)
        pids.append(_backend_pid())
        fixup.on_task_postrun(task)
        celery_signals._return_connections(task=task)
        assert connection.connection is None  # handed back after each task, not held between tasks
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [sorted(set(pids))])
        alive = cursor.fetchone()[0]
    assert len(set(pids)) <= 2 and alive == len(set(pids))  # the pool's sessions, reused and still open


def test_an_eager_task_keeps_its_callers_connection():
    """An eager task (tests, CELERY_TASK_ALWAYS_EAGER) runs inside its caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    celery_signals._return_connections(task=SimpleNamespace(request=SimpleNamespace(is_eager=True)))
    assert connection.connection is not None
