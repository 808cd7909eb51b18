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


def test_a_sync_marks_its_rows_running_as_it_starts(owner):
    """A task's first writes (its WalletChains and run items running, the run started) go to the
    server together (pipeline mode on PostgreSQL, outside a transaction as in a worker): every one
    of them lands, and an error among them is raised as Django's."""
    from django.db import IntegrityError

    from portfolio.models import Chain, SyncRun, SyncRunItem, Wallet, WalletChain
    from portfolio.sync import plan, store
    from portfolio.sync import run as sync_run

    chain = Chain.objects.create(slug="evm-test", name="EVM test", family="evm", chain_id=31337, network="devnet", native_symbol="ETH")
    wallets = [Wallet.objects.create(owner=owner, family="evm", address=f"0x{i + 1:040x}") for i in range(3)]
    wcs = [WalletChain.objects.create(wallet=w, chain=chain) for w in wallets]
    run = SyncRun.objects.create(trigger=SyncRun.SCHEDULE, status=SyncRun.QUEUED)
    plan.create_items(run, [wc.id for wc in wcs])
    loaded, items, skipped = sync_run._load([wc.id for wc in wcs], run.id)
    assert not connection.in_atomic_block and not skipped
    sync_run._start(loaded, items)
    assert set(WalletChain.objects.values_list("status", flat=True)) == {WalletChain.RUNNING}
    assert all(wc.last_attempt_at for wc in WalletChain.objects.all())
    assert [(i.status, i.attempts, i.started_at is not None) for i in SyncRunItem.objects.all()] == [(SyncRun.RUNNING, 1, True)] * 3
    run.refresh_from_db()
    assert run.status == SyncRun.RUNNING and run.started_at

    with pytest.raises(IntegrityError):
        with store.pipelined():
            SyncRunItem.objects.filter(run=run).update(attempts=-1)  # the CHECK (attempts >= 0) refuses it
    assert set(SyncRunItem.objects.values_list("attempts", flat=True)) == {1}
    assert WalletChain.objects.count() == 3  # the connection still works
