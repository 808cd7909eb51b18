"""Celery tasks: take ids, call a service, decide on a retry. Nothing else lives here."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings

from chains.base import ChainError
from portfolio.services import sync

log = logging.getLogger(__name__)

RETRY_MAX = settings.SYNC_RETRY_MAX
RETRY_BASE_S = float(settings.SYNC_RETRY_BASE_SECONDS)
RETRY_CAP_S = float(settings.SYNC_RETRY_CAP_SECONDS)


def retry_countdown(retries: int, retry_after: float | None = None) -> float:
    """Exponential back-off with full jitter, capped; an endpoint's Retry-After is a floor."""
    delay = random.uniform(RETRY_BASE_S / 2, min(RETRY_CAP_S, RETRY_BASE_S * 2**retries))
    return max(delay, min(retry_after or 0.0, RETRY_CAP_S))


def _retry_or_raise(task, exc: ChainError):
    if exc.permanent or task.request.retries >= RETRY_MAX:
        return None  # recorded as failed by the service; nothing more to do
    raise task.retry(exc=exc, countdown=retry_countdown(task.request.retries, exc.retry_after), max_retries=RETRY_MAX)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def sync_wallet_chain_task(self, wallet_chain_id: int, run_item_id: int | None = None) -> None:
    """Sync one wallet on one chain (queue: the chain's family)."""
    final = self.request.retries >= RETRY_MAX
    try:
        sync.do_sync_wallet_chain(wallet_chain_id, run_item_id, final_attempt=final)
    except ChainError as exc:
        _retry_or_raise(self, exc)
    except sync.SyncError:
        return


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def sync_wallet_chains_task(self, wallet_chain_ids: list[int], run_id: int | None = None) -> None:
    """Sync several wallets of one chain with one adapter fetch (the scheduler's batches)."""
    final = self.request.retries >= RETRY_MAX
    try:
        sync.do_sync_wallet_chains(wallet_chain_ids, run_id, final_attempt=final)
    except ChainError as exc:
        _retry_or_raise(self, exc)
    except sync.SyncError:
        return


@shared_task(ignore_result=True)
def fanout_due_task() -> int:
    """Claim due WalletChains (safe with several beats) and enqueue their syncs, grouped per chain."""
    _run, jobs = sync.do_fanout_due()
    for ids, run_id, queue in jobs:
        sync_wallet_chains_task.apply_async(args=(ids, run_id), queue=queue)
    return sum(len(ids) for ids, _, _ in jobs)


@shared_task(ignore_result=True)
def snapshot_task() -> None:
    """Hourly value snapshot of every wallet (valuation's service)."""
    from portfolio.services.snapshots import do_snapshot

    do_snapshot(None)


@shared_task(ignore_result=True)
def materialise_scopes_task(owner_ids: list[int]) -> None:
    """After a portfolio's wallets changed: build its value series from its wallets' history at once."""
    from portfolio.services.snapshots import do_materialise_scopes

    do_materialise_scopes(owner_ids)


@shared_task(ignore_result=True)
def downsample_task() -> None:
    """Daily: thin hourly value points older than a week to one a day (valuation's service)."""
    from portfolio.services import snapshots

    snapshots.do_downsample()


@shared_task(ignore_result=True)
def refresh_prices_task() -> None:
    """Refresh off-chain prices and FX rates (valuation's services)."""
    from portfolio.services import prices

    prices.do_refresh_prices()
    prices.do_refresh_fx()
