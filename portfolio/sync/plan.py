"""Planning syncs: which WalletChains are due, claiming them so that no two workers sync one twice,
grouping them into jobs per chain, and sending those jobs to their family's queue (by task name)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from chains.registry import FAMILIES
from portfolio import freshness, jobs
from portfolio.lookups import any_of
from portfolio.models import Chain, Portfolio, SyncRun, SyncRunItem, Wallet, WalletChain
from portfolio.sync import store


@dataclass
class Job:
    """One sync task: WalletChains of one chain, the run they belong to, the queue. ``item_id`` is set
    for a manual run's single-WalletChain task (the task then finds its run through the item)."""

    wallet_chain_ids: list[int]
    run_id: int
    queue: str
    item_id: int | None = None


def queue_for(chain: Chain) -> str:
    """The Celery queue of a chain's family (one per registered family), else "default"."""
    return chain.family if chain.family in FAMILIES else "default"


def group_size(chain: Chain) -> int:
    """WalletChains of one chain synced by one task when many are due (EVM batches them well)."""
    if chain.family == "evm":
        return settings.SYNC_EVM_GROUP_SIZE
    return 1


def wallet_chains_for(owner, *, portfolio: Portfolio | None, wallet: Wallet | None) -> list[WalletChain]:
    """The owner's WalletChains on enabled chains: of one wallet, of one portfolio, or all."""
    qs = WalletChain.objects.filter(wallet__owner=owner, chain__enabled=True).select_related("chain")
    if wallet is not None:
        qs = qs.filter(wallet=wallet)
    elif portfolio is not None:
        qs = qs.filter(wallet__portfolios=portfolio)
    return list(qs.order_by("chain__sort_order", "wallet_id"))


def mark_queued(wallet_chains: list[WalletChain], now: datetime) -> None:
    """Queued now, next due one interval later (a manual sync counts as the scheduled one)."""
    by_interval: dict[timedelta, list[int]] = {}
    for wc in wallet_chains:
        by_interval.setdefault(wc.chain.sync_interval, []).append(wc.id)
    for interval, ids in by_interval.items():
        WalletChain.objects.filter(id__in=ids).update(status=WalletChain.QUEUED, next_due_at=now + interval, claimed_at=now)
        freshness.changed(wallet_chain_ids=ids)


def enqueue_jobs(jobs_: list[Job]) -> None:
    """Send each job to its queue: a manual run's item as ``sync_wallet_chain_task``, a scheduled
    group as ``sync_wallet_chains_task``."""
    for job in jobs_:
        if job.item_id is not None:
            jobs.enqueue(jobs.SYNC_WALLET_CHAIN, job.wallet_chain_ids[0], job.item_id, queue=job.queue)
        else:
            jobs.enqueue(jobs.SYNC_WALLET_CHAINS, job.wallet_chain_ids, job.run_id, queue=job.queue)


def claim_due_wallet_chains(*, limit: int = 5000) -> list[tuple[int, int]]:
    """Claim due WalletChains so that two beats or many workers never sync one twice; returns the
    claimed (WalletChain id, chain id) pairs in the order they fell due (``claim``)."""
    return claim(limit=limit)[1]


def claim(*, limit: int = 5000) -> tuple[datetime, list[tuple[int, int]]]:
    """Claim due WalletChains (see ``claim_due_wallet_chains``); returns the claim's ``claimed_at``,
    which every WalletChain it claimed now carries, with the claimed (WalletChain id, chain id) pairs.

    PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` then an UPDATE of exactly those rows. Elsewhere:
    a conditional ``UPDATE ... SET claimed_at = <this claim's token> WHERE ... next_due_at <= now`` per
    chain, then the rows carrying our token are ours (a row another claimer took first no longer
    matches ``next_due_at <= now``, so each row is won exactly once).

    Only ids travel (no model instance per claimed row, no list of thousands of ids in a statement
    when everything due fits in ``limit``): the fan-out runs before the first sync can start."""
    now = timezone.now()
    due = WalletChain.objects.filter(chain__enabled=True, next_due_at__lte=now).exclude(wallet__isnull=True)
    intervals = dict(Chain.objects.filter(enabled=True).values_list("id", "sync_interval"))
    if connection.vendor == "postgresql":
        with transaction.atomic():
            rows = list(due.select_for_update(skip_locked=True, of=("self",)).order_by("next_due_at")
                        .values_list("id", "chain_id", "wallet__owner_id")[:limit])
            by_chain: dict[int, list[int]] = {}
            for wc_id, chain_id, _owner in rows:
                by_chain.setdefault(chain_id, []).append(wc_id)
            for chain_id, ids in by_chain.items():
                WalletChain.objects.filter(id__any=any_of(ids)).update(status=WalletChain.QUEUED, next_due_at=now + intervals[chain_id], claimed_at=now)
            freshness.changed(owner_ids={owner for _, _, owner in rows})
        return now, [(wc_id, chain_id) for wc_id, chain_id, _ in rows]
    # A claim token: "now" plus random microseconds, unique among claimers in practice.
    token = now + timedelta(microseconds=secrets.randbelow(999_999) + 1)
    candidates = list(due.order_by("next_due_at").values_list("id", "chain_id", "wallet__owner_id")[:limit])
    by_chain = {}
    for wc_id, chain_id, _owner in candidates:
        by_chain.setdefault(chain_id, []).append(wc_id)
    for chain_id, ids in by_chain.items():
        claim = {"next_due_at": now + intervals[chain_id], "claimed_at": token, "status": WalletChain.QUEUED}
        if len(candidates) < limit:  # all that is due: by condition (one that fell due since is claimed too)
            due.filter(chain_id=chain_id).update(**claim)
            continue
        for i in range(0, len(ids), 500):
            WalletChain.objects.filter(id__in=ids[i:i + 500], next_due_at__lte=now).update(**claim)
    freshness.changed(owner_ids={owner for _, _, owner in candidates})
    return token, list(WalletChain.objects.filter(claimed_at=token).order_by("next_due_at", "id").values_list("id", "chain_id"))


def do_fanout_due(send: Callable[[list[Job]], None] | None = None) -> tuple[SyncRun | None, list[Job]]:
    """Claim due WalletChains, record them as one scheduled SyncRun of ``planned`` chain syncs, and
    ``send`` (``enqueue_jobs``) its jobs, grouped per chain, ``group_size`` WalletChains each. No item
    is written here: each sync writes its own, once, in the transaction that stores it (a few ms per
    hundred items, most of it the foreign keys' checks, that no sync waits for and no second write
    updates). The run closes once ``planned`` items are finished (``finish_runs``); a job lost on the
    way (a send that failed, a message lost, a fan-out stopped half-way) is found by the reaper from
    the run's ``claimed_at`` and sent again (``do_reap_stalled``)."""
    send = send or enqueue_jobs
    claimed_at, claimed = claim()
    if not claimed:
        return None, []
    run = SyncRun.objects.create(trigger=SyncRun.SCHEDULE, status=SyncRun.QUEUED, planned=len(claimed), claimed_at=claimed_at)
    jobs_ = _jobs(run.id, claimed, Chain.objects.in_bulk({chain_id for _, chain_id in claimed}))
    send(jobs_)
    return run, jobs_


def create_items(run: SyncRun, wallet_chain_ids: list[int]) -> None:
    """One queued SyncRunItem per WalletChain in one statement (a Refresh of every wallet makes one per
    wallet and chain; ``bulk_create`` would build and convert a model instance each, at several times
    the cost)."""
    defaults = item_defaults(["run", "wallet_chain"])
    store.insert_rows(SyncRunItem, ["run", "wallet_chain", *defaults], [(run.pk, wc_id, *defaults.values()) for wc_id in wallet_chain_ids])


def item_defaults(names: Sequence[str]) -> dict[str, Any]:
    """A new run item's columns other than ``names``, by name, with their defaults (queued, no attempt)."""
    template = SyncRunItem(run_id=0, wallet_chain_id=0)
    return {f.name: getattr(template, f.attname) for f in SyncRunItem._meta.concrete_fields if not f.primary_key and f.name not in names}


def jobs_for(run_id: int, wallet_chains: list[WalletChain]) -> list[Job]:
    """The tasks of a run: its WalletChains grouped per chain, ``group_size`` each (``chain`` loaded)."""
    return _jobs(run_id, [(wc.id, wc.chain_id) for wc in wallet_chains], {wc.chain_id: wc.chain for wc in wallet_chains})


def _jobs(run_id: int, pairs: list[tuple[int, int]], chains: dict[int, Chain]) -> list[Job]:
    by_chain: dict[int, list[int]] = {}
    for wc_id, chain_id in pairs:
        by_chain.setdefault(chain_id, []).append(wc_id)
    planned: list[Job] = []
    for chain_id, ids in by_chain.items():
        chain = chains[chain_id]
        size = max(1, group_size(chain))
        for i in range(0, len(ids), size):
            planned.append(Job(ids[i:i + size], run_id, queue_for(chain)))
    return planned

