"""Faults around a sync run, each reproduced: a lost message, a broker that refuses the task, a
database that goes away under a task. Every run ends, and a Refresh never joins a run that stopped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.urls import reverse
from django.utils import timezone

from portfolio import jobs
from portfolio.models import Chain, SyncRun, SyncRunItem, Wallet, WalletChain
from portfolio.sync import run as sync_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def wallet(owner):
    w = Wallet.objects.create(owner=owner, family="evm", address="0x" + "12" * 20, label="hot")
    # Its own chain: a transactional test runs after others have flushed the seeded ones.
    chain, _ = Chain.objects.get_or_create(slug="faults-evm", defaults=dict(name="Faults EVM", family="evm", chain_id=7_777,
                                                                          network="devnet", native_symbol="ETH", enabled=True))
    WalletChain.objects.create(wallet=w, chain=chain)
    return w


@pytest.fixture
def sent(monkeypatch):
    """Tasks sent to the broker (name, args), instead of a broker."""
    out: list[tuple[str, tuple]] = []
    monkeypatch.setattr(jobs, "enqueue", lambda name, *args, queue="default": out.append((name, args)))
    return out


def _age(run: SyncRun, minutes: int) -> None:
    """Pretend the run and its items have had no news for ``minutes``."""
    then = timezone.now() - timedelta(minutes=minutes)
    SyncRun.objects.filter(pk=run.pk).update(created_at=then, started_at=then)
    SyncRunItem.objects.filter(run=run).update(started_at=then)


def test_a_lost_item_message_is_sent_again_then_the_run_ends_failed(owner, wallet, sent, settings):
    settings.SYNC_STALL_SECONDS, settings.SYNC_REAP_REQUEUES = 300, 1
    run = sync_run.do_request_sync(owner, wallet=wallet)
    sync_run.do_expand_run(run.pk)  # its item task is then lost (worker SIGKILLed, broker restarted...)
    _age(run, 6)
    report = sync_run.do_reap_stalled()
    assert report.requeued == 1 and sent[-1][0] == jobs.SYNC_WALLET_CHAINS
    item = SyncRunItem.objects.get(run=run)
    assert (item.status, item.requeues) == (SyncRun.QUEUED, 1) and "sent again" in item.error
    # Lost again: past the next deadline the item fails with the reason and the run ends.
    SyncRunItem.objects.filter(pk=item.pk).update(requeued_at=timezone.now() - timedelta(minutes=6))
    report = sync_run.do_reap_stalled()
    run.refresh_from_db()
    item.refresh_from_db()
    assert report.failed == 1 and report.runs_closed == 1
    assert run.status == SyncRun.FAILED and run.finished_at is not None
    assert item.status == SyncRun.FAILED and "no worker finished this sync" in item.error
    assert WalletChain.objects.get(wallet=wallet).status == WalletChain.FAILED


def test_a_refresh_whose_expansion_was_lost_is_closed(owner, wallet, sent, settings):
    settings.SYNC_STALL_SECONDS = 300
    run = sync_run.do_request_sync(owner, wallet=wallet)
    SyncRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    assert sync_run.do_reap_stalled().runs_closed == 1
    run.refresh_from_db()
    assert run.status == SyncRun.FAILED and "never started" in run.error


def test_a_refresh_joins_a_moving_run_but_never_a_stuck_one(owner, wallet, sent, settings):
    settings.REFRESH_MIN_INTERVAL_SECONDS = 0  # the brake on refreshes is tested in test_limits.py
    first = sync_run.do_request_sync(owner, wallet=wallet)
    assert sync_run.do_request_sync(owner, wallet=wallet) == first  # a double click joins it
    _age(first, 3)  # nothing happened to it for 3 minutes: it is not moving
    second = sync_run.do_request_sync(owner, wallet=wallet)
    assert second != first


@pytest.mark.django_db(transaction=True)  # as in production: the request's commit sends the task
def test_a_broker_that_refuses_the_refresh_is_a_503_and_leaves_nothing_waiting(owner, wallet, owner_client, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(jobs, "enqueue", down)
    response = owner_client.post("/api/v1/sync", {"wallet_id": wallet.pk}, content_type="application/json")
    assert response.status_code == 503 and "task queue is unavailable" in response.json()["detail"]
    run = SyncRun.objects.get(owner=owner)
    assert run.status == SyncRun.FAILED and run.finished_at is not None
    assert not SyncRunItem.objects.exists()
    page = owner_client.post(reverse("refresh"), {"wallet": wallet.pk}, follow=True)
    assert "task queue is unavailable" in page.content.decode()


def test_a_database_outage_under_a_sync_task_is_retried_with_back_off(monkeypatch):
    from celery.exceptions import Retry

    from portfolio import tasks

    def outage(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(tasks, "do_sync_wallet_chains", outage)
    retried = []
    monkeypatch.setattr(tasks.sync_wallet_chains_task, "retry", lambda **kw: retried.append(kw) or Retry())
    with pytest.raises(Retry):
        tasks.sync_wallet_chains_task.run([1], 2)
    assert retried and retried[0]["countdown"] > 0 and isinstance(retried[0]["exc"], OperationalError)


@pytest.fixture
def due_wallets(owner, settings):
    """Five due EVM wallets on their own chain, synced two per task."""
    settings.SYNC_EVM_GROUP_SIZE = 2
    chain, _ = Chain.objects.get_or_create(slug="fanout-evm", defaults=dict(name="Fanout EVM", family="evm", chain_id=7_778,
                                                                          network="devnet", native_symbol="ETH", enabled=True))
    Chain.objects.exclude(pk=chain.pk).update(enabled=False)
    wallets = Wallet.objects.bulk_create([Wallet(owner=owner, family="evm", address=f"0x{i + 1:040x}", label=f"w{i}") for i in range(5)])
    WalletChain.objects.bulk_create([WalletChain(wallet=w, chain=chain, next_due_at=timezone.now() - timedelta(seconds=1)) for w in wallets])
    return wallets


def _finish(item_ids, status=SyncRun.OK) -> None:
    SyncRunItem.objects.filter(id__in=item_ids).update(status=status, finished_at=timezone.now())


@pytest.fixture
def fetched(monkeypatch):
    """Every sync's fetch, without a node: ether for each wallet at block 7."""
    from chains.base import NATIVE, AssetRef, FetchResult, TokenBalance

    ether = AssetRef(kind=NATIVE, address=None, symbol="ETH", name="Ether", decimals=18)
    monkeypatch.setattr(sync_run, "_fetcher", lambda wallet_chains: lambda: FetchResult(
        balances=tuple(TokenBalance(owner=wc.wallet.address, asset=ether, amount=10**18) for wc in wallet_chains), height=7, endpoint="node"))


def _run_job(job) -> list:
    """A worker's sync of one job, in this process."""
    return sync_run.do_sync_wallet_chains(job.wallet_chain_ids, job.run_id)


def test_the_fanout_sends_every_group_at_once_and_each_sync_writes_its_items_once(due_wallets, fetched):
    from tests.portfolio.test_sync_writes import _count

    seen = []

    def send(jobs_):  # no task waits for items to be written first
        seen.append((len(jobs_), SyncRunItem.objects.count()))

    run, jobs_ = sync_run.plan.do_fanout_due(send=send)
    assert seen == [(3, 0)] and run.planned == 5 and [len(j.wallet_chain_ids) for j in jobs_] == [2, 2, 1]
    assert set(WalletChain.objects.values_list("claimed_at", flat=True)) == {run.claimed_at}
    counter = _count(lambda: _run_job(jobs_[0]))
    # one INSERT of the job's items, no UPDATE (PostgreSQL's COPY is not seen by execute wrappers)
    assert counter.on("portfolio_syncrunitem") == (0 if connection.vendor == "postgresql" else 1)
    assert not any("UPDATE" in sql and "syncrunitem" in sql for sql in counter.writes)
    items = list(SyncRunItem.objects.filter(run=run))
    assert {(i.status, i.attempts, i.height, i.endpoint, i.counts["balances"]) for i in items} == {(SyncRun.OK, 1, 7, "node", 1)}
    assert all(i.started_at is not None and i.started_at <= i.finished_at for i in items) and len(items) == 2
    assert sync_run.finish_runs([run.pk]) == 0  # 2 of 5
    assert [o.skipped for o in _run_job(jobs_[0])] == [True, True]  # a redelivered job: nothing twice
    _run_job(jobs_[1])
    run.refresh_from_db()
    assert run.finished_at is None and run.status == SyncRun.RUNNING
    _run_job(jobs_[2])
    run.refresh_from_db()
    assert (run.status, run.error, run.items.count()) == (SyncRun.OK, "", 5) and run.finished_at is not None


def test_a_failed_sync_writes_its_item_failed_and_a_retried_one_queued(due_wallets, fetched, monkeypatch):
    from chains.base import ChainError

    run, jobs_ = sync_run.plan.do_fanout_due(send=lambda jobs_: None)

    def failing(wallet_chains):
        def fetch():
            raise ChainError("node said no", endpoint="node")
        return fetch

    monkeypatch.setattr(sync_run, "_fetcher", failing)
    with pytest.raises(ChainError):
        sync_run.do_sync_wallet_chains(jobs_[0].wallet_chain_ids, run.pk, final_attempt=False)
    assert set(SyncRunItem.objects.filter(run=run).values_list("status", "attempts", "error")) == {
        (SyncRun.QUEUED, 1, "retrying: node said no (at node)")}
    with pytest.raises(ChainError):  # the retry finds its items and marks them as any Refresh's
        sync_run.do_sync_wallet_chains(jobs_[0].wallet_chain_ids, run.pk)
    assert set(SyncRunItem.objects.filter(run=run).values_list("status", "attempts", "error")) == {(SyncRun.FAILED, 2, "node said no (at node)")}
    with pytest.raises(ChainError):
        sync_run.do_sync_wallet_chains(jobs_[1].wallet_chain_ids, run.pk)
    assert SyncRunItem.objects.filter(run=run, status=SyncRun.FAILED, attempts=1).count() == 2


def test_jobs_lost_on_the_way_are_found_by_the_reaper_and_sent_again(due_wallets, fetched, sent, settings):
    """A send that fails after the run was written (the broker gone): no item exists, but the run's
    claim tells which WalletChains are its own; once stalled they get their items and are sent again."""
    settings.SYNC_STALL_SECONDS = 300

    def send(jobs_):
        raise ConnectionError("broker gone")

    with pytest.raises(ConnectionError):
        sync_run.plan.do_fanout_due(send=send)
    run = SyncRun.objects.get(trigger=SyncRun.SCHEDULE)
    assert (run.planned, run.items.count()) == (5, 0)
    assert sync_run.do_reap_stalled().requeued == 0 and sent == []  # not stalled yet
    SyncRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    report = sync_run.do_reap_stalled()
    assert (report.requeued, report.runs_closed) == (5, 0)
    assert set(run.items.values_list("status", "requeues")) == {(SyncRun.QUEUED, 1)}
    assert sorted(i for name, (ids, run_id) in sent for i in ids) == sorted(WalletChain.objects.values_list("id", flat=True))
    for _name, (ids, run_id) in sent:
        sync_run.do_sync_wallet_chains(ids, run_id)
    run.refresh_from_db()
    assert (run.status, run.items.filter(status=SyncRun.OK, attempts=1).count()) == (SyncRun.OK, 5)


def test_a_sync_in_progress_is_left_alone_and_a_run_whose_syncs_were_taken_over_is_planned_down(due_wallets, fetched, sent, settings):
    settings.SYNC_STALL_SECONDS = 300
    run, jobs_ = sync_run.plan.do_fanout_due(send=lambda jobs_: None)
    _run_job(jobs_[0])
    _run_job(jobs_[1])
    (last,) = jobs_[2].wallet_chain_ids
    WalletChain.objects.filter(pk=last).update(status=WalletChain.RUNNING, last_attempt_at=timezone.now())  # its worker is on it
    SyncRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    assert sync_run.do_reap_stalled() == sync_run.ReapReport() and sent == []
    sync_run.plan.mark_queued(list(WalletChain.objects.filter(pk=last).select_related("chain")), timezone.now())  # a Refresh took it
    assert sync_run.do_reap_stalled().runs_closed == 1 and sent == []
    run.refresh_from_db()
    assert (run.status, run.planned, run.items.count()) == (SyncRun.OK, 4, 4) and run.finished_at is not None
    assert run.error == "1 of 5 chain syncs were left to a later run"


def test_finished_runs_past_their_retention_are_deleted_with_their_items(due_wallets, settings, django_assert_max_num_queries):
    settings.SYNC_RUN_RETENTION_DAYS = 14
    def fanout() -> SyncRun:  # with its items, as its syncs write them
        run = sync_run.plan.do_fanout_due(send=lambda jobs_: None)[0]
        sync_run.plan.create_items(run, list(WalletChain.objects.values_list("id", flat=True)))
        return run

    runs = [fanout()]
    for _ in range(4):
        WalletChain.objects.update(next_due_at=timezone.now() - timedelta(seconds=1))
        runs.append(fanout())
    old, older, recent, unfinished_old, unfinished_new = runs
    now = timezone.now()
    for run, finished in ((old, now - timedelta(days=15)), (older, now - timedelta(days=40)), (recent, now - timedelta(days=13))):
        _finish(SyncRunItem.objects.filter(run=run).values_list("id", flat=True))
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.OK, finished_at=finished)
    SyncRun.objects.filter(pk=unfinished_old.pk).update(created_at=now - timedelta(days=60))  # the reaper ends it first
    with django_assert_max_num_queries(12):  # in batches of two runs: their ids, the runs, and two deletes (items by the cascade)
        assert sync_run.do_prune_runs(batch=2) == 2
    assert set(SyncRun.objects.values_list("id", flat=True)) == {recent.pk, unfinished_old.pk, unfinished_new.pk}
    assert set(SyncRunItem.objects.values_list("run_id", flat=True)) == {recent.pk, unfinished_old.pk, unfinished_new.pk}
    assert SyncRunItem.objects.count() == 3 * 5
    assert sync_run.do_prune_runs() == 0



def test_the_node_works_while_the_run_items_are_marked_running(due_wallets, monkeypatch):
    """The fetch starts before the books say "running" and runs while they are written: with a remote
    node the round trips to the database no longer come before the node's. Proven by a fetch that
    waits for the marking to have happened (sequential code would wait in vain)."""
    import threading

    from chains.base import FetchResult

    marked, order = threading.Event(), []
    start = sync_run._start

    def marking(wallet_chains, items, now=None):
        order.append("books")
        start(wallet_chains, items, now)
        marked.set()

    def fetcher(wallet_chains):
        def fetch():
            order.append("fetch")
            assert marked.wait(10), "the run items were not marked while the fetch ran"
            return FetchResult(balances=(), height=7, endpoint="node")
        return fetch

    monkeypatch.setattr(sync_run, "_start", marking)
    monkeypatch.setattr(sync_run, "_fetcher", fetcher)
    run = SyncRun.objects.create(trigger=SyncRun.SCHEDULE, status=SyncRun.QUEUED)
    ids = list(WalletChain.objects.filter(wallet__in=due_wallets).values_list("id", flat=True)[:2])
    from portfolio.sync import plan

    plan.create_items(run, ids)
    outcomes = sync_run.do_sync_wallet_chains(ids, run.id)
    assert [o.status for o in outcomes] == [SyncRun.OK, SyncRun.OK] and sorted(order) == ["books", "fetch"]
    assert set(SyncRunItem.objects.filter(run=run).values_list("status", "attempts")) == {(SyncRun.OK, 1)}
    assert set(WalletChain.objects.filter(id__in=ids).values_list("status", "height")) == {(WalletChain.OK, 7)}


def test_books_that_fail_while_the_node_works_wait_for_the_fetch_and_store_nothing(due_wallets, monkeypatch, settings):
    import threading

    settings.SYNC_RUNNING_MARK_AFTER_MS = 0  # marked running as the fetch starts, however short it is

    from chains.base import FetchResult

    fetched = threading.Event()

    def fetcher(wallet_chains):
        def fetch():
            fetched.wait(0.2)
            fetched.set()
            return FetchResult(balances=(), height=7, endpoint="node")
        return fetch

    def outage(wallet_chains, items, now=None):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(sync_run, "_fetcher", fetcher)
    monkeypatch.setattr(sync_run, "_start", outage)
    ids = list(WalletChain.objects.filter(wallet__in=due_wallets).values_list("id", flat=True)[:2])
    with pytest.raises(OperationalError):
        sync_run.do_sync_wallet_chains(ids)
    assert fetched.is_set()  # no fetch left running behind the task's back
    assert set(WalletChain.objects.filter(id__in=ids).values_list("status", "height")) == {(WalletChain.IDLE, None)}


def _wallet_chain_writes(queries) -> list[str]:
    """The UPDATEs of WalletChain rows among captured queries (an executemany is logged as "N times: ...")."""
    import re

    return [q["sql"] for q in queries if re.search(r'\bUPDATE\s+"?portfolio_walletchain"?\s', q["sql"], re.IGNORECASE)]


def test_a_quick_scheduled_sync_writes_its_wallet_chains_once(due_wallets, monkeypatch, settings):
    """A scheduled sync whose fetch ends within SYNC_RUNNING_MARK_AFTER_MS is not marked running first:
    its WalletChains are written once, with the outcome, which also says when the sync started (their
    last attempt, the item's start) and starts the run."""
    from django.test.utils import CaptureQueriesContext

    from chains.base import FetchResult

    settings.SYNC_RUNNING_MARK_AFTER_MS = 10_000
    monkeypatch.setattr(sync_run, "_fetcher", lambda wcs: lambda: FetchResult(balances=(), height=7, endpoint="node"))
    ids = list(WalletChain.objects.filter(wallet__in=due_wallets).values_list("id", flat=True)[:2])
    run = SyncRun.objects.create(trigger=SyncRun.SCHEDULE, status=SyncRun.QUEUED, planned=2)
    WalletChain.objects.filter(id__in=ids).update(status=WalletChain.QUEUED)
    before = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        outcomes = sync_run.do_sync_wallet_chains(ids, run.id)
    assert [o.status for o in outcomes] == [SyncRun.OK, SyncRun.OK]
    writes = _wallet_chain_writes(queries)
    assert len(writes) == 1 and "running" not in writes[0].lower(), writes
    items = list(SyncRunItem.objects.filter(run=run))
    assert {(i.status, i.attempts) for i in items} == {(SyncRun.OK, 1)}
    started = {i.started_at for i in items}
    assert len(started) == 1 and before <= min(started) <= min(i.finished_at for i in items)
    assert set(WalletChain.objects.filter(id__in=ids).values_list("status", "last_attempt_at")) == {(WalletChain.OK, *started)}
    run.refresh_from_db()
    assert run.status == SyncRun.OK and run.started_at == min(started) and run.finished_at is not None


def test_a_quick_failed_scheduled_sync_still_says_when_it_was_tried(due_wallets, monkeypatch, settings):
    from django.test.utils import CaptureQueriesContext

    from chains.base import ChainError

    settings.SYNC_RUNNING_MARK_AFTER_MS = 10_000

    def down():
        raise ChainError("no endpoint answered", permanent=True)

    monkeypatch.setattr(sync_run, "_fetcher", lambda wcs: down)
    ids = list(WalletChain.objects.filter(wallet__in=due_wallets).values_list("id", flat=True)[:2])
    run = SyncRun.objects.create(trigger=SyncRun.SCHEDULE, status=SyncRun.QUEUED, planned=2)
    WalletChain.objects.filter(id__in=ids).update(status=WalletChain.QUEUED)
    before = timezone.now()
    with CaptureQueriesContext(connection) as queries, pytest.raises(ChainError):
        sync_run.do_sync_wallet_chains(ids, run.id)
    assert len(_wallet_chain_writes(queries)) == 1
    tried = set(WalletChain.objects.filter(id__in=ids).values_list("status", "last_attempt_at"))
    assert len(tried) == 1 and next(iter(tried))[0] == WalletChain.FAILED and next(iter(tried))[1] >= before
    run.refresh_from_db()
    assert run.status == SyncRun.FAILED and run.started_at == next(iter(tried))[1]


def test_a_slow_scheduled_sync_is_marked_running_while_its_fetch_goes_on(due_wallets, monkeypatch, settings):
    """Past SYNC_RUNNING_MARK_AFTER_MS the books say "running" while the fetch still runs (the pages
    show it syncing): proven by a fetch that waits for the marking."""
    import threading

    from chains.base import FetchResult

    settings.SYNC_RUNNING_MARK_AFTER_MS = 50
    marked, start = threading.Event(), sync_run._start

    def marking(wallet_chains, items, now=None):
        start(wallet_chains, items, now)
        marked.set()

    def fetcher(wallet_chains):
        def fetch():
            assert marked.wait(10), "not marked running while the fetch ran"
            return FetchResult(balances=(), height=7, endpoint="node")
        return fetch

    monkeypatch.setattr(sync_run, "_start", marking)
    monkeypatch.setattr(sync_run, "_fetcher", fetcher)
    ids = list(WalletChain.objects.filter(wallet__in=due_wallets).values_list("id", flat=True)[:2])
    run = SyncRun.objects.create(trigger=SyncRun.SCHEDULE, status=SyncRun.QUEUED, planned=2)
    WalletChain.objects.filter(id__in=ids).update(status=WalletChain.QUEUED)
    outcomes = sync_run.do_sync_wallet_chains(ids, run.id)
    assert [o.status for o in outcomes] == [SyncRun.OK, SyncRun.OK] and marked.is_set()
    item = SyncRunItem.objects.filter(run=run).first()
    wc = WalletChain.objects.get(id=item.wallet_chain_id)
    run.refresh_from_db()
    assert wc.last_attempt_at == item.started_at == run.started_at and run.status == SyncRun.OK


def test_a_disabled_chain_is_recorded_as_a_failed_sync_not_fetched(due_wallets):
    ids = list(WalletChain.objects.filter(wallet__in=due_wallets).values_list("id", flat=True)[:1])
    Chain.objects.filter(slug="fanout-evm").update(enabled=False)
    with pytest.raises(sync_run.SyncError, match="disabled"):
        sync_run.do_sync_wallet_chains(ids)
    assert WalletChain.objects.get(id=ids[0]).status == WalletChain.FAILED
