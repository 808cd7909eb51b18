"""Celery tasks: take ids, call a service, decide on a retry. Nothing else lives here; services send
tasks by name (``portfolio.jobs``) and never import this module."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections
from kombu.exceptions import OperationalError as BrokerError

from chains.base import ChainError
from portfolio.history.backfill import do_backfill_step, fail_backfill
from portfolio import pair_values
from portfolio.services import icons, prices, snapshots
from portfolio.sync import plan
from portfolio.sync.run import SyncError, do_expand_run, do_prune_runs, do_reap_stalled, do_sync_wallet_chain, do_sync_wallet_chains

log = logging.getLogger(__name__)

RETRY_MAX = settings.SYNC_RETRY_MAX
RETRY_BASE_S = float(settings.SYNC_RETRY_BASE_SECONDS)
RETRY_CAP_S = float(settings.SYNC_RETRY_CAP_SECONDS)
# The database went away (OperationalError is a DatabaseError) or the broker did, under a task.
INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError, BrokerError)


def retry_countdown(retries: int, retry_after: float | None = None) -> float:
    """Exponential back-off with full jitter, capped; an endpoint's Retry-After is a floor."""
    delay = random.uniform(RETRY_BASE_S / 2, min(RETRY_CAP_S, RETRY_BASE_S * 2**retries))
    return max(delay, min(retry_after or 0.0, RETRY_CAP_S))


def _retry_or_raise(task, exc: ChainError):
    if exc.permanent or task.request.retries >= RETRY_MAX:
        return None  # recorded as failed by the service; nothing more to do
    raise task.retry(exc=exc, countdown=retry_countdown(task.request.retries, exc.retry_after), max_retries=RETRY_MAX)


def _retry_infrastructure(task, exc: Exception):
    """The database (or the broker) failed under the task: nothing could be recorded, so the task is
    sent again with back-off (the reaper ends the run if it never comes back)."""
    close_old_connections()  # the next attempt opens a fresh connection
    log.warning("%s: infrastructure error %s, retrying", task.name, type(exc).__name__)
    raise task.retry(exc=exc, countdown=retry_countdown(task.request.retries), max_retries=RETRY_MAX)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def sync_wallet_chain_task(self, wallet_chain_id: int, run_item_id: int | None = None) -> None:
    """Sync one wallet on one chain (queue: the chain's family)."""
    final = self.request.retries >= RETRY_MAX
    try:
        do_sync_wallet_chain(wallet_chain_id, run_item_id, final_attempt=final)
    except ChainError as exc:
        _retry_or_raise(self, exc)
    except SyncError:
        return
    except INFRASTRUCTURE_ERRORS as exc:
        _retry_infrastructure(self, exc)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def sync_wallet_chains_task(self, wallet_chain_ids: list[int], run_id: int | None = None) -> None:
    """Sync several wallets of one chain with one adapter fetch (a run's items, grouped per chain)."""
    final = self.request.retries >= RETRY_MAX
    try:
        do_sync_wallet_chains(wallet_chain_ids, run_id, final_attempt=final)
    except ChainError as exc:
        _retry_or_raise(self, exc)
    except SyncError:
        return
    except INFRASTRUCTURE_ERRORS as exc:
        _retry_infrastructure(self, exc)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def expand_run_task(self, run_id: int) -> None:
    """Fan a Refresh out into its (wallet, chain) items and send their syncs (the request only records it)."""
    try:
        plan.enqueue_jobs(do_expand_run(run_id))
    except INFRASTRUCTURE_ERRORS as exc:
        _retry_infrastructure(self, exc)


@shared_task(ignore_result=True)
def reap_stalled_task() -> None:
    """Every minute: send stalled sync items again, or close them as failed, so every run ends."""
    do_reap_stalled()


@shared_task(ignore_result=True)
def prune_runs_task() -> int:
    """Daily: delete sync runs (and their items) finished more than SYNC_RUN_RETENTION_DAYS ago."""
    return do_prune_runs()


@shared_task(ignore_result=True)
def fanout_due_task() -> int:
    """Claim due WalletChains (safe with several beats) and enqueue their syncs, grouped per chain."""
    _run, jobs = plan.do_fanout_due()  # records the run and sends its jobs
    return sum(len(job.wallet_chain_ids) for job in jobs)


@shared_task(ignore_result=True)
def snapshot_task() -> None:
    """Hourly value snapshot of every wallet."""
    snapshots.do_snapshot(None)


@shared_task(ignore_result=True)
def materialise_scopes_task(owner_ids: list[int]) -> None:
    """After a portfolio's wallets changed: build its value series from its wallets' history at once."""
    snapshots.do_materialise_scopes(owner_ids)


@shared_task(ignore_result=True)
def downsample_task() -> None:
    """Daily: thin hourly value points older than a week to one a day."""
    snapshots.do_downsample()


@shared_task(ignore_result=True)
def refresh_prices_task() -> None:
    """Refresh off-chain prices and FX rates, then the kept values of the lists viewed lately."""
    prices.do_refresh_prices()
    prices.do_refresh_fx()
    pair_values.do_revalue_viewed()


@shared_task(ignore_result=True)
def fetch_icons_task() -> None:
    """Every few minutes: fetch the logos of assets that have a logo URL and no stored logo yet."""
    icons.do_fetch_icons()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def backfill_step_task(self, backfill_id: int) -> None:
    """One page of a wallet-chain's backfill (queue "history"); the step sends the next one itself."""
    try:
        do_backfill_step(backfill_id)
    except ChainError as exc:
        if exc.permanent or self.request.retries >= RETRY_MAX:
            fail_backfill(backfill_id, str(exc))
            return
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries, exc.retry_after), max_retries=RETRY_MAX)
    except INFRASTRUCTURE_ERRORS as exc:
        _retry_infrastructure(self, exc)
