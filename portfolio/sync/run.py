"""Running a sync: fetch WalletChains of one chain through their adapter, store the result (``store``),
and keep the books: WalletChain state, SyncRun and its items, the snapshot after a manual run.

The flow of one sync, from a Refresh click or the beat's fan-out to stored holdings:
``do_request_sync`` (a run and its items) -> task ``sync_wallet_chain_task`` -> ``do_sync_wallet_chains``
-> ``chains.registry.adapter_for(...).fetch`` -> ``store.prepare`` + ``store.replace`` -> ``finish_runs``."""

from __future__ import annotations

import contextvars
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from itertools import starmap
from typing import Callable, Iterable, Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import Count, DateTimeField, F, FilteredRelation, Max, Q, Value
from django.db.models.base import ModelState
from django.db.models.functions import Coalesce
from django.utils import timezone

from chains.base import AssetRef, ChainError, FetchRequest, FetchResult
from chains.registry import adapter_for
from portfolio.models import Asset, Chain, HealthAlert, Holding, NftItem, Portfolio, SyncRun, SyncRunItem, Wallet, WalletChain
from portfolio.ratelimit import shared_limiter
from portfolio.history.start import start_backfills
from portfolio.services.alerts import do_check_health
from portfolio.services.ens import refresh_after_sync
from portfolio.services.snapshots import do_snapshot
from portfolio import freshness, jobs, tracing
from portfolio.limits import claim_refresh, release_refresh
from portfolio.lookups import any_of
from portfolio.sync import plan, store

log = logging.getLogger(__name__)

FINISHED = (SyncRun.OK, SyncRun.PARTIAL, SyncRun.FAILED)
IN_FLIGHT_WINDOW = timedelta(minutes=10)  # a Refresh joins a run of the same scope at most this old
MOVING_WINDOW = timedelta(minutes=2)  # ... and only if something happened to it this recently


class SyncError(Exception):
    """A sync that cannot run at all (the WalletChain or its chain is gone or disabled). Permanent."""


@dataclass
class SyncOutcome:
    """What one WalletChain's sync did (returned to the task, and to tests)."""

    wallet_chain_id: int
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    error: str = ""
    skipped: bool = False


def _safe_error(exc: BaseException) -> str:
    """An error text safe to store and show: ChainError is redacted; anything else shows its type only."""
    if isinstance(exc, ChainError):
        return str(exc)[:2000]
    if isinstance(exc, SyncError):
        return str(exc)
    return f"internal error ({type(exc).__name__}); see the worker log"


def known_assets(chain: Chain, wallet_chains: Sequence[WalletChain]) -> list[AssetRef]:
    """The assets to read: the chain's listed ones plus every asset these WalletChains held before
    (``Asset.ref_from`` of their columns, as ``Asset.to_ref`` makes them: no model instance per asset),
    in the order they were added (by id): an adapter reads them in the order given, so the same assets
    make the same calls and the same balances, in the same order (their fingerprint: ``fingerprint``)."""
    ids = [wc.id for wc in wallet_chains]
    held = Q(id__in=Holding.objects.filter(wallet_chain_id__any=any_of(ids)).values("asset_id"))
    held |= Q(id__in=NftItem.objects.filter(wallet_chain_id__any=any_of(ids)).values("collection_id"))
    assets = Asset.objects.filter(chain=chain).filter(Q(listed=True) | Q(kind=Asset.NATIVE) | held)
    return list(starmap(Asset.ref_from, assets.order_by("id").values_list(*Asset.REF_COLUMNS)))


def build_adapter(chain: Chain):
    """The chain's adapter with its enabled endpoints and the limiter shared by all workers."""
    return adapter_for(chain.to_config(), chain.endpoint_configs(), limiter=shared_limiter())


# --------------------------------------------------------------------------- one sync


def do_sync_wallet_chains(
    wallet_chain_ids: Sequence[int], run_id: int | None = None, *, final_attempt: bool = True
) -> list[SyncOutcome]:
    """Sync several WalletChains of ONE chain with a single adapter fetch (EVM packs them into the same
    Multicall batches), then store their results in one transaction.

    Idempotent: items of ``run_id`` already finished are skipped, so a redelivered task does nothing
    twice. Raises ``ChainError`` after recording it (the task decides on a retry; with
    ``final_attempt`` False, run items go back to queued instead of failed). Log lines and spans inside
    carry ``run_id``.
    """
    with tracing.sync_run(run_id):
        return _sync_wallet_chains(wallet_chain_ids, run_id, final_attempt=final_attempt)


def _sync_wallet_chains(wallet_chain_ids: Sequence[int], run_id: int | None, *, final_attempt: bool) -> list[SyncOutcome]:
    wallet_chains, items, skipped = _load(wallet_chain_ids, run_id)
    if not wallet_chains:
        return skipped
    if len({wc.chain_id for wc in wallet_chains}) != 1:
        raise ValueError("do_sync_wallet_chains syncs WalletChains of one chain at a time")
    try:
        fetch = _fetcher(wallet_chains)
    except Exception as exc:  # noqa: BLE001 - recorded below as the fetch's failure, once the books say it started
        fetch = partial(_raise, exc)
    fetched, marked = _start_while_fetching(wallet_chains, items, fetch)
    try:
        result = fetched()
    except (ChainError, SyncError) as exc:
        final = final_attempt or isinstance(exc, SyncError) or exc.permanent
        _record_failure(wallet_chains, items, exc, final=final, marked=marked)
        if final:
            finish_runs({i.run_id for i in items.values()})
        raise
    except Exception as exc:
        log.exception("sync of %s failed unexpectedly", [wc.id for wc in wallet_chains])
        _record_failure(wallet_chains, items, exc, final=True, marked=marked)
        finish_runs({i.run_id for i in items.values()})
        raise
    outcomes = _record_success(wallet_chains, items, result, marked=marked)
    refresh_after_sync(wallet_chains)  # verified ENS names of the wallets, on the ENS chain only
    finish_runs({i.run_id for i in items.values()})
    return skipped + outcomes


def do_sync_wallet_chain(wallet_chain_id: int, run_item_id: int | None = None, *, final_attempt: bool = True) -> SyncOutcome:
    """Fetch one wallet on one chain and replace its stored holdings, NFTs and positions atomically.

    Raises ``ChainError`` (after recording it) when the chain could not be read: a failed sync keeps
    the last good data. Returns a skipped outcome when the run item is already finished (redelivery).
    """
    run_id = None
    if run_item_id is not None:
        run_id = SyncRunItem.objects.filter(id=run_item_id).values_list("run_id", flat=True).first()
    outcomes = do_sync_wallet_chains([wallet_chain_id], run_id, final_attempt=final_attempt)
    return outcomes[0] if outcomes else SyncOutcome(wallet_chain_id, "missing", skipped=True)


@dataclass(slots=True)
class RunItem:
    """A run item as a sync reads and writes it (``update_rows`` writes its fields by name): a plain
    object rather than a model instance, of which a task would build one per WalletChain. ``id`` is
    None for an item not written yet (a scheduled run's: the sync writes it once, when it ends)."""

    id: int | None
    run_id: int
    wallet_chain_id: int
    status: str
    finished_at: datetime | None = None
    error: str = ""
    endpoint: str = ""
    height: int | None = None
    counts: dict = field(default_factory=dict)
    started_at: datetime | None = None
    run_queued: bool = False  # its run had not started when the sync read it

    @property
    def pk(self) -> int:
        return self.id


# What a sync reads of its WalletChains and their wallets (the rest, e.g. next_due_at or the wallet's
# label, is written by others and neither read nor written here; it stays deferred).
_WALLET_CHAIN_COLUMNS = ("id", "wallet_id", "chain_id", "status", "last_ok_at", "first_ok_at", "height", "cursors", "stored_fingerprint")
_WALLET_COLUMNS = ("owner_id", "family", "kind", "address", "script_type", "gap_limit", "primary_name")


def _load(wallet_chain_ids: Sequence[int], run_id: int | None):
    """The WalletChains still to sync (with their wallet, and their chain: one instance per chain, not
    per row), their run items (the columns the sync reads; it writes the others; those not written
    yet, a scheduled run's, without an id), and outcomes for the items already finished."""
    wallet_chains = load_wallet_chains(wallet_chain_ids)
    if run_id is None:
        return wallet_chains, {}, []
    # The run with its items of these WalletChains (none yet: a scheduled run's), in one query: no row
    # at all when the run was deleted meanwhile.
    rows = list(SyncRun.objects.filter(id=run_id).annotate(mine=FilteredRelation(
        "items", condition=Q(items__wallet_chain_id__any=any_of(wallet_chain_ids)))).values_list(
            "mine__id", "mine__wallet_chain_id", "mine__status", "status"))
    if not rows:
        log.warning("sync run %s is gone; its WalletChains are synced without it", run_id)
        return wallet_chains, {}, []
    queued = rows[0][3] == SyncRun.QUEUED
    items = {wc_id: RunItem(pk, run_id, wc_id, status, run_queued=queued) for pk, wc_id, status, _ in rows if pk is not None}
    done = {wc_id for wc_id, i in items.items() if i.status in FINISHED}
    skipped = [SyncOutcome(wc_id, items[wc_id].status, skipped=True) for wc_id in done]
    to_sync = [wc for wc in wallet_chains if wc.id not in done]
    return to_sync, {wc.id: items.get(wc.id) or RunItem(None, run_id, wc.id, SyncRun.QUEUED, run_queued=queued) for wc in to_sync}, skipped


def load_wallet_chains(wallet_chain_ids: Sequence[int]) -> list[WalletChain]:
    """The WalletChains as a sync reads them: model instances holding the columns it uses (the others
    deferred, loaded on access as with ``only()``), each with its wallet and its chain (one instance
    per chain). Built from one ``values_list`` row each, as ``Model.from_db`` would build them but
    without its per-field pass over every column of both models: for a group of 250 that pass and
    ``select_related``'s were a third of the sync's book-keeping."""
    queryset = WalletChain.objects.filter(id__any=any_of(wallet_chain_ids))
    db = queryset.db
    split = len(_WALLET_CHAIN_COLUMNS)
    rows = list(queryset.values_list(*_WALLET_CHAIN_COLUMNS, *(f"wallet__{c.removesuffix('_id')}" for c in _WALLET_COLUMNS)))
    chains = Chain.objects.in_bulk({row[2] for row in rows})
    wallet_field, chain_field = WalletChain._meta.get_field("wallet"), WalletChain._meta.get_field("chain")
    wallet_chains = []
    for row in rows:
        wc = _instance(WalletChain, _WALLET_CHAIN_COLUMNS, row[:split], db)
        wallet = _instance(Wallet, _WALLET_COLUMNS, row[split:], db)
        wallet.id = row[1]
        wallet_field.set_cached_value(wc, wallet)
        chain_field.set_cached_value(wc, chains[row[2]])
        wallet_chains.append(wc)
    return wallet_chains


def _instance(model, attnames: Sequence[str], values: Sequence, db: str):
    """A model instance as loaded from ``db`` with these attributes; the model's other columns are
    deferred (read on first access, as ``only()`` leaves them)."""
    obj = model.__new__(model)
    obj.__dict__.update(zip(attnames, values))
    obj._state = ModelState()
    obj._state.adding, obj._state.db = False, db
    return obj


def _owners(wallet_chains: Sequence[WalletChain]) -> set[int]:
    return {wc.wallet.owner_id for wc in wallet_chains}


def _start(wallet_chains: Sequence[WalletChain], items: dict[int, RunItem], now=None) -> None:
    now = now or timezone.now()
    with store.pipelined():  # four writes, one round trip
        _mark_running(wallet_chains, items, now)


def _mark_running(wallet_chains: Sequence[WalletChain], items: dict[int, RunItem], now) -> None:
    """The WalletChains, their run items that exist, and their run are running (an item not written
    yet keeps the start time ``_start_while_fetching`` gave it, for the one write at its end)."""
    WalletChain.objects.filter(id__any=any_of(wc.id for wc in wallet_chains)).update(status=WalletChain.RUNNING, last_attempt_at=now)
    if any(wc.status not in (WalletChain.QUEUED, WalletChain.RUNNING) for wc in wallet_chains):  # queued ones count as active already
        freshness.changed(owner_ids=_owners(wallet_chains))
    if items:
        written = [i.id for i in items.values() if i.id is not None]
        if written:
            SyncRunItem.objects.filter(id__any=any_of(written)).update(
                status=SyncRun.RUNNING, attempts=F("attempts") + 1, started_at=Coalesce("started_at", Value(now, output_field=DateTimeField())))
        _run_started(items, now)


def _run_started(items: dict[int, RunItem], now) -> None:
    """The items' run is running from ``now`` on, if it was still queued (a run read as running already
    never goes back to queued: nothing is written for it)."""
    run_ids = {i.run_id for i in items.values() if i.run_queued}
    if run_ids:
        SyncRun.objects.filter(id__in=run_ids, status=SyncRun.QUEUED).update(status=SyncRun.RUNNING, started_at=now)


def _fetcher(wallet_chains: Sequence[WalletChain]) -> Callable[[], FetchResult]:
    """The fetch of these WalletChains, ready to run: what it reads of the database (the chain, its
    endpoints, the assets to read) is read here; running it touches no database (``chains`` code only).
    Raises ``SyncError`` when the chain is disabled."""
    chain = wallet_chains[0].chain
    if not chain.enabled:
        raise SyncError(f"{chain.name} is disabled")
    request = FetchRequest(
        wallets=tuple(wc.wallet.to_ref() for wc in wallet_chains),
        known_assets=tuple(known_assets(chain, wallet_chains)),
        cursors={wc.wallet.address: wc.cursors for wc in wallet_chains if wc.cursors},
    )
    return partial(build_adapter(chain).fetch, request)


def _start_while_fetching(wallet_chains: Sequence[WalletChain], items: dict[int, RunItem],
                          fetch: Callable[[], FetchResult]) -> tuple[Callable[[], FetchResult], bool]:
    """Mark the WalletChains and their run items running (``_start``) while the fetch runs in a thread
    of its own: the node starts working at once instead of after the book-keeping's round trips.

    A sync of WalletChains queued already (claimed by the fan-out, which the pages show as syncing)
    that writes no run item before it ends (a scheduled run's) first waits up to
    ``SYNC_RUNNING_MARK_AFTER_MS`` for its fetch, and is not marked running at all when the fetch ends
    by then: its outcome's one write says when it started (``last_attempt_at``, the item's
    ``started_at``), so a steady sync writes its WalletChains once, not twice. (A worker that dies
    meanwhile leaves them as a lost message would, for the reaper.) Any other sync is marked running
    at once: a Refresh's items, written when it was asked for, whose progress is watched, and
    WalletChains the pages would otherwise show as idle or failed while they sync.

    Returns the fetch's outcome as a callable (its result, or its exception raised) and whether the
    books were marked running. The thread is always waited for, even when ``_start`` fails (then its
    error is raised and the fetch's dropped); a task's soft time limit interrupts the wait, and the
    abandoned fetch ends within its endpoints' timeouts (the hard limit ends the process)."""
    future = _fetch_pool().submit(contextvars.copy_context().run, fetch)
    now = timezone.now()
    for wc in wallet_chains:
        wc.last_attempt_at = now
    for item in items.values():
        item.started_at = now
    quiet_s = settings.SYNC_RUNNING_MARK_AFTER_MS / 1000
    if (quiet_s and not any(i.id is not None for i in items.values())
            and all(wc.status in (WalletChain.QUEUED, WalletChain.RUNNING) for wc in wallet_chains)
            and futures_wait([future], timeout=quiet_s).done):
        return future.result, False
    try:
        _start(wallet_chains, items, now)
    except BaseException:
        futures_wait([future])
        raise
    return future.result, True


def _raise(exc: BaseException):
    raise exc


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _fetch_pool() -> ThreadPoolExecutor:
    """This process's threads for fetches (made after a worker's fork, never inherited from its parent);
    a thread per concurrent sync (a worker with a thread pool runs several), made when first needed."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=64, thread_name_prefix="sync-fetch"))
    return _pool[1]


def _record_success(wallet_chains, items, result: FetchResult, *, marked: bool = True) -> list[SyncOutcome]:
    """Replace the stored state of every WalletChain of the fetch and mark them and their run items ok,
    in ONE transaction (a few set-based statements for the whole group); their run is started there
    when the sync was not ``marked`` running (``_start_while_fetching``)."""
    now = timezone.now()
    first_reads = [wc.id for wc in wallet_chains if wc.first_ok_at is None]
    prepared = store.prepare(wallet_chains, result, now)
    with transaction.atomic():
        store.replace(prepared)
        outcomes = _mark_ok(prepared, items)
        if not marked:
            _run_started(items, wallet_chains[0].last_attempt_at)
    # After the commit, not inside: a reader recomputing meanwhile sees the new rows or is told again,
    # and syncs of one owner do not queue on its freshness row (PostgreSQL) while they hold theirs.
    freshness.changed(owner_ids=_owners(wallet_chains))
    store.store_price_quotes(wallet_chains[0].chain, result.prices)
    if first_reads:
        start_backfills(first_reads)  # a wallet-chain read for the first time: rebuild its past on the "history" queue
    # An open alert is cleared once its position is gone: only a WalletChain whose rows changed can have
    # lost one (an unchanged one stored this very fetch last time, and was checked then).
    changed = prepared.changed_ids
    if any(p.health_factor is not None for p in result.positions) or changed and HealthAlert.objects.filter(
            wallet_chain_id__any=any_of(changed), cleared_at__isnull=True).exists():
        do_check_health(prepared.ids)
    return outcomes


def _mark_ok(prepared: store.Prepared, items: dict[int, RunItem]) -> list[SyncOutcome]:
    result, now, wallet_chains = prepared.result, prepared.now, prepared.wallet_chains
    endpoint = (result.endpoint or "")[:300]
    addresses = {wc.wallet.address for wc in wallet_chains}
    single = len(wallet_chains) == 1
    first_reads = any(wc.first_ok_at is None for wc in wallet_chains)
    outcomes = []
    for wc in wallet_chains:
        counts = prepared.built[wc.id].counts
        wc.status, wc.last_ok_at, wc.last_error, wc.height, wc.endpoint = WalletChain.OK, now, "", result.height, endpoint
        wc.first_ok_at = wc.first_ok_at or now  # its amounts now are an opening balance (see snapshots)
        wc.cursors = _cursor_for(wc, result, single)
        wc.problems = _problems_for(result, wc.wallet.address, addresses) if result.problems else []
        wc.stored_fingerprint = prepared.fingerprint_of(wc.id)
        item = items.get(wc.id)
        if item is not None:
            counts.update(requests=result.request_count, wallets_in_fetch=len(wallet_chains), problems=len(wc.problems))
            item.status, item.finished_at, item.error, item.endpoint, item.height, item.counts = (
                SyncRun.OK, now, "", endpoint, result.height, counts)
        outcomes.append(SyncOutcome(wc.id, SyncRun.OK, counts))
    # first_ok_at only changes on a WalletChain's first good sync (a steady one leaves it as it is)
    store.update_rows(WalletChain, ["status", "last_ok_at", "last_attempt_at", *(["first_ok_at"] if first_reads else []), "last_error",
                                    "height", "endpoint", "cursors", "problems", "stored_fingerprint"], wallet_chains)
    _write_items(items, ["status", "finished_at", "error", "endpoint", "height", "counts"])
    return outcomes


def _write_items(items: dict[int, RunItem], field_names: list[str]) -> None:
    """Write the run items' ``field_names``: UPDATE those that exist, INSERT the others (a scheduled
    run's, written once: as started once, at their ``started_at``)."""
    written = [i for i in items.values() if i.id is not None]
    store.update_rows(SyncRunItem, field_names, written)
    if len(written) < len(items):
        names = ["run", "wallet_chain", "attempts", "started_at", *field_names]
        defaults = plan.item_defaults(names)
        store.insert_rows(SyncRunItem, [*names, *defaults], [
            (i.run_id, i.wallet_chain_id, 1, i.started_at, *(getattr(i, name) for name in field_names), *defaults.values())
            for i in items.values() if i.id is None])


def _problems_for(result: FetchResult, own: str, addresses: set[str]) -> list[dict[str, str]]:
    """The problems that concern this wallet (those naming another wallet of the batch are theirs)."""
    return [
        {"code": p.code, "message": p.message[:500], "subject": p.subject}
        for p in result.problems
        if not (p.subject and p.subject != own and p.subject in addresses)
    ][:100]


def _cursor_for(wc: WalletChain, result: FetchResult, single: bool):
    cursor = result.cursors.get(wc.wallet.address)
    if cursor is None:
        cursor = result.cursors.get(wc.wallet.address.lower())
    if cursor is None and single and len(result.cursors) == 1:
        cursor = next(iter(result.cursors.values()))
    return dict(cursor) if cursor is not None else wc.cursors


def _record_failure(wallet_chains, items, exc: BaseException, *, final: bool, marked: bool = True) -> list[SyncOutcome]:
    """Keep the last good data; store the (redacted) error. Items fail only when no retry follows.
    (Of a sync not ``marked`` running, its start is written here, and its run started.)"""
    now = timezone.now()
    error = _safe_error(exc)
    ids = [wc.id for wc in wallet_chains]
    started = {} if marked else {"last_attempt_at": wallet_chains[0].last_attempt_at}
    with transaction.atomic():
        WalletChain.objects.filter(id__in=ids).update(status=WalletChain.FAILED if final else WalletChain.QUEUED, last_error=error, **started)
        if not marked:
            _run_started(items, started["last_attempt_at"])
        freshness.changed(owner_ids=_owners(wallet_chains))
        if items:
            for item in items.values():
                item.status, item.error = (SyncRun.FAILED, error) if final else (SyncRun.QUEUED, f"retrying: {error}")
                item.finished_at = now if final else None
            _write_items(items, ["status", "finished_at", "error"] if final else ["status", "error"])
    return [SyncOutcome(i, SyncRun.FAILED if final else SyncRun.QUEUED, error=error) for i in ids]



# --------------------------------------------------------------------------- runs


def finish_runs(run_ids: Iterable[int]) -> int:
    """Close every run whose items are all finished: ok, partial (some failed) or failed (all failed).
    The conditional UPDATE makes exactly one caller the closer; it triggers the snapshot. Returns how
    many runs this call closed."""
    count = 0
    for run_id in run_ids:
        # Counted by the database (a handful of rows): every task of a run calls this, so reading each
        # item's status would cost O(items) per task and O(items^2) per run.
        by_status = dict(SyncRunItem.objects.filter(run_id=run_id).order_by().values_list("status").annotate(n=Count("id")))
        if any(s not in FINISHED for s in by_status):
            continue
        failed, total = by_status.get(SyncRun.FAILED, 0), sum(by_status.values())
        status = SyncRun.OK if not failed else (SyncRun.FAILED if failed == total else SyncRun.PARTIAL)
        # Not before ``planned`` items are finished (a scheduled run's syncs write theirs as they end); a
        # run without failures keeps the note the reaper may have left (syncs left to a later run).
        closed = SyncRun.objects.filter(Q(planned__isnull=True) | Q(planned__lte=total), id=run_id, finished_at__isnull=True).update(
            status=status, finished_at=timezone.now(), **({"error": f"{failed} of {total} chain syncs failed"} if failed else {}))
        if closed:
            count += 1
            _after_run(run_id)
    return count


def _after_run(run_id: int) -> None:
    """A manual run's wallets get a value snapshot at once (scheduled batches wait for the hourly one)."""
    run = SyncRun.objects.get(id=run_id)
    if run.trigger != SyncRun.MANUAL:
        return
    wallet_ids = sorted(set(SyncRunItem.objects.filter(run_id=run_id).values_list("wallet_chain__wallet_id", flat=True)))
    try:
        do_snapshot(wallet_ids)
    except Exception:  # noqa: BLE001 - a snapshot failure must not turn a finished sync into a failed task
        log.exception("snapshot after sync run %s failed", run_id)


class QueueUnavailable(Exception):
    """The task queue did not take a refresh. The run is closed as failed (nothing half-made is left)
    and the caller answers 503."""


def do_request_sync(owner, *, portfolio: Portfolio | None = None, wallet: Wallet | None = None) -> SyncRun:
    """Record a refresh of the owner's wallet, portfolio or all wallets as one SyncRun and send one task
    (``expand_run``) that fans it out into (wallet, chain) items in a worker, so the request returns at
    once however many wallets there are. A run of the same scope that is still moving is returned
    instead (a second click joins it); a stalled one never is (see ``moving_run``).

    Raises ``PermissionError`` for another owner's object, ``RefreshTooSoon`` when the scope was
    refreshed less than ``REFRESH_MIN_INTERVAL_SECONDS`` ago, and ``QueueUnavailable`` when the broker
    does not take the task (the run is then closed as failed)."""
    if portfolio is not None and portfolio.owner_id != owner.id:
        raise PermissionError("not your portfolio")
    if wallet is not None and wallet.owner_id != owner.id:
        raise PermissionError("not your wallet")
    with transaction.atomic():
        in_flight = moving_run(owner, portfolio=portfolio, wallet=wallet)
        if in_flight is not None:
            return in_flight
        # A new run of this scope at most once per REFRESH_MIN_INTERVAL_SECONDS (RefreshTooSoon: 429).
        claim_refresh(owner, portfolio_id=portfolio.pk if portfolio else None, wallet_id=wallet.pk if wallet else None)
        run = SyncRun.objects.create(owner=owner, portfolio=portfolio, wallet=wallet, trigger=SyncRun.MANUAL)
        transaction.on_commit(lambda: _enqueue_or_close(run, jobs.EXPAND_RUN, run.id))
    return run


def _enqueue_or_close(run: SyncRun, task: str, *args) -> None:
    try:
        jobs.enqueue(task, *args)
    except Exception as exc:  # noqa: BLE001 - any broker failure: nothing may be left waiting forever
        log.warning("the task queue refused sync run %s: %s", run.pk, type(exc).__name__)
        message = "The task queue is unavailable: nothing was synced. Try again in a minute."
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.FAILED, finished_at=timezone.now(), error=message)
        release_refresh(run.owner, portfolio_id=run.portfolio_id, wallet_id=run.wallet_id)  # nothing ran: no brake
        raise QueueUnavailable(message) from None


def moving_run(owner, *, portfolio: Portfolio | None, wallet: Wallet | None) -> SyncRun | None:
    """An unfinished manual run of this scope that something happened to recently (created, expanded,
    an item started or finished within ``MOVING_WINDOW``): worth joining. A run that stopped moving
    (its message lost, its worker gone) is left to the reaper, and a new Refresh starts afresh."""
    now = timezone.now()
    candidates = SyncRun.objects.filter(owner=owner, portfolio=portfolio, wallet=wallet, trigger=SyncRun.MANUAL,
                                        finished_at__isnull=True, created_at__gte=now - IN_FLIGHT_WINDOW)
    for run in candidates.order_by("-created_at")[:1]:
        last = SyncRunItem.objects.filter(run=run).aggregate(s=Max("started_at"), f=Max("finished_at"), q=Max("requeued_at"))
        moments = [t for t in (run.created_at, run.started_at, *last.values()) if t is not None]
        if max(moments) >= now - MOVING_WINDOW:
            return run
    return None


def do_expand_run(run_id: int) -> list[plan.Job]:
    """In a worker: create a manual run's (wallet, chain) items and return the jobs to send (grouped per
    chain like the scheduler's, so EVM wallets share Multicall batches). Idempotent: a redelivered
    expansion returns the jobs of the items not finished yet. A run with nothing to sync closes ok."""
    with tracing.sync_run(run_id):
        return _expand_run(run_id)


def _expand_run(run_id: int) -> list[plan.Job]:
    run = SyncRun.objects.filter(pk=run_id, finished_at__isnull=True).select_related("owner").first()
    if run is None:
        return []
    now = timezone.now()
    with transaction.atomic():
        if not SyncRunItem.objects.filter(run=run).exists():
            wallet_chains = plan.wallet_chains_for(run.owner, portfolio=run.portfolio, wallet=run.wallet)
            plan.create_items(run, [wc.id for wc in wallet_chains])
            plan.mark_queued(wallet_chains, now)
        SyncRun.objects.filter(pk=run.pk, started_at__isnull=True).update(started_at=now)
        open_items = list(SyncRunItem.objects.filter(run=run).exclude(status__in=FINISHED)
                          .select_related("wallet_chain__chain").order_by("wallet_chain__chain_id", "wallet_chain_id"))
    if not open_items:
        finish_runs([run.pk])
        return []
    return plan.jobs_for(run.pk, [i.wallet_chain for i in open_items])


@dataclass
class ReapReport:
    requeued: int = 0
    failed: int = 0
    runs_closed: int = 0


def do_reap_stalled(now=None) -> ReapReport:
    """Make every run end: an item queued or running for ``SYNC_STALL_SECONDS`` without finishing (its
    message lost, its worker killed, the database gone mid-task) is sent again, ``SYNC_REAP_REQUEUES``
    times at most, then closed as failed with the reason; so is a scheduled run's claimed WalletChain
    that never got its item (``_reap_unsent``); a manual run never expanded is closed as failed."""
    now = now or timezone.now()
    deadline = now - timedelta(seconds=settings.SYNC_STALL_SECONDS)
    report = ReapReport()
    stalled = list(
        SyncRunItem.objects.filter(run__finished_at__isnull=True, status__in=(SyncRun.QUEUED, SyncRun.RUNNING))
        .filter(Q(requeued_at__lt=deadline) | Q(requeued_at__isnull=True, started_at__lt=deadline)
                | Q(requeued_at__isnull=True, started_at__isnull=True, run__created_at__lt=deadline))
        .select_related("wallet_chain__chain")
    )
    again = [i for i in stalled if i.requeues < settings.SYNC_REAP_REQUEUES]
    give_up = [i for i in stalled if i.requeues >= settings.SYNC_REAP_REQUEUES]
    minutes = max(1, settings.SYNC_STALL_SECONDS // 60)
    if give_up:
        SyncRunItem.objects.filter(pk__in=[i.pk for i in give_up]).update(
            status=SyncRun.FAILED, finished_at=now, error=f"no worker finished this sync within {minutes} min; it was given up")
        WalletChain.objects.filter(pk__in=[i.wallet_chain_id for i in give_up], status__in=(WalletChain.QUEUED, WalletChain.RUNNING)).update(
            status=WalletChain.FAILED, last_error="the sync stalled (no worker finished it)")
        freshness.changed(wallet_chain_ids=[i.wallet_chain_id for i in give_up])
        report.failed = len(give_up)
    for run_id, items in _by_run(again).items():
        SyncRunItem.objects.filter(pk__in=[i.pk for i in items]).update(
            status=SyncRun.QUEUED, requeued_at=now, requeues=F("requeues") + 1, error=f"sent again: no progress within {minutes} min")
        _send_again(run_id, [i.wallet_chain for i in items], report)
    report.runs_closed = (_reap_unexpanded(deadline, now) + _reap_unsent(deadline, now, minutes, report)
                          + finish_runs({i.run_id for i in give_up}))
    return report


def _send_again(run_id: int, wallet_chains: list[WalletChain], report: ReapReport) -> None:
    """Send the syncs of these WalletChains of the run again (their items are queued: should the broker
    be down too, the reaper's next pass sends them)."""
    try:
        plan.enqueue_jobs(plan.jobs_for(run_id, wallet_chains))
        report.requeued += len(wallet_chains)
    except Exception:  # noqa: BLE001 - the broker is down too: the next pass tries again
        log.warning("could not send the stalled syncs of run %s again", run_id)


def _by_run(items: list[SyncRunItem]) -> dict[int, list[SyncRunItem]]:
    out: dict[int, list[SyncRunItem]] = {}
    for item in items:
        out.setdefault(item.run_id, []).append(item)
    return out


def do_prune_runs(now=None, *, batch: int = 2000) -> int:
    """Delete the sync runs that finished more than ``SYNC_RUN_RETENTION_DAYS`` ago, with their items:
    a scheduled run writes one item per WalletChain, so without this the items table grows by every
    wallet every interval, for ever. Runs not finished are never deleted (the reaper ends them first).
    In batches of ``batch`` runs, each one delete (its own transaction; the items go by the cascade, one
    DELETE by run id); returns how many runs were deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.SYNC_RUN_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(SyncRun.objects.filter(finished_at__lt=cutoff).order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += SyncRun.objects.filter(id__any=any_of(ids)).delete()[1].get(SyncRun._meta.label, 0)


def _reap_unsent(deadline, now, minutes: int, report: ReapReport) -> int:
    """Scheduled runs older than the deadline with fewer items than ``planned`` (a sync writes its item
    when it ends). The WalletChains such a run claimed (its ``claimed_at``) that have no item in it and
    no attempt since the deadline never reached a worker, or their worker died before its commit (a
    send that failed, a lost message, a fan-out or worker stopped half-way): each gets its item,
    queued, and is sent again; from then on the items' own reaping applies (sent again up to
    ``SYNC_REAP_REQUEUES`` times, then failed). A run none of whose claimed WalletChains is left
    without an item (claimed again since, by a Refresh or the next interval, or deleted) is planned
    down to the items it has, with a note, and closed once those are finished. Returns the runs closed."""
    runs = list(SyncRun.objects.filter(finished_at__isnull=True, planned__isnull=False, created_at__lt=deadline)
                .annotate(written=Count("items")).filter(written__lt=F("planned")).values_list("id", "planned", "written", "claimed_at"))
    short = []
    for run_id, planned, written, claimed_at in runs:
        waiting = [] if claimed_at is None else list(
            WalletChain.objects.filter(claimed_at=claimed_at, status__in=(WalletChain.QUEUED, WalletChain.RUNNING))
            .exclude(run_items__run_id=run_id).select_related("chain"))
        lost = [wc for wc in waiting if wc.last_attempt_at is None or wc.last_attempt_at < deadline]
        if lost:
            SyncRunItem.objects.bulk_create([
                SyncRunItem(run_id=run_id, wallet_chain=wc, status=SyncRun.QUEUED, requeues=1, requeued_at=now,
                            error=f"sent again: no worker finished it within {minutes} min") for wc in lost], ignore_conflicts=True)
            _send_again(run_id, lost, report)
        elif not waiting:
            log.warning("sync run %s ends with %s of its %s chain syncs; the others were claimed again or removed", run_id, written, planned)
            SyncRun.objects.filter(id=run_id, finished_at__isnull=True).update(
                planned=written, error=f"{planned - written} of {planned} chain syncs were left to a later run")
            short.append(run_id)
    return finish_runs(short)


def _reap_unexpanded(deadline, now) -> int:
    """Manual runs whose expansion never ran: closed as failed (the user's next Refresh starts afresh)."""
    lost = SyncRun.objects.filter(finished_at__isnull=True, trigger=SyncRun.MANUAL, created_at__lt=deadline, items__isnull=True)
    return SyncRun.objects.filter(pk__in=list(lost.values_list("pk", flat=True))).update(
        status=SyncRun.FAILED, finished_at=now, error="the refresh was never started by a worker; nothing was synced")
