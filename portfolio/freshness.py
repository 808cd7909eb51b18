"""The owner's per-chain freshness over all wallets, kept in one FreshnessCache row so the dashboard does
not count every WalletChain on each view (flat in the number of wallets).

A reader computes the counts when the row is missing, stale or older than ``MAX_AGE`` and stores them
only if no write bumped ``version`` meanwhile (the read took ``version`` before counting, the store is
conditional on it). Writers call ``changed`` with the WalletChains or owners they wrote, in the same
transaction: one UPDATE, none when nobody has read the cache yet. The same row keeps "All wallets"'
series key (``all_wallets_key``), checked against the owner's wallet count and highest id."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable, Iterable

from django.db.models import F
from django.utils import timezone

from portfolio.models import FreshnessCache

MAX_AGE = timedelta(seconds=60)  # a write made around ``changed`` (shell, admin) shows within a minute
FIELDS = ("chain_id", "wallets", "oldest_ok", "newest_ok", "failed", "never", "height", "active")
TIMES = ("oldest_ok", "newest_ok")


def changed(*, wallet_chain_ids: Iterable[int] = (), owner_ids: Iterable[int] = ()) -> None:
    """The owners of these WalletChains (or these owners) changed their wallets' sync state: their
    cached freshness is recomputed on the next read."""
    wc_ids, owners = list(wallet_chain_ids), sorted(set(owner_ids))
    if wc_ids:
        FreshnessCache.objects.filter(owner__wallets__wallet_chains__id__in=wc_ids).update(version=F("version") + 1)
    if owners:
        FreshnessCache.objects.filter(owner_id__in=owners).update(version=F("version") + 1)


def all_wallets_key(owner_id: int, wallets: int, top: int | None) -> str:
    """The ``scope_key`` of the owner's ``wallets`` wallets whose highest id is ``top``, without reading
    their ids while the set is the one stored (ids are never reused: a set with the same count and
    highest id is the same set). One query; the ids are read and the key stored when the set changed."""
    from portfolio.models import Wallet
    from portfolio.services.snapshots import scope_key

    cache, _ = FreshnessCache.objects.get_or_create(owner_id=owner_id)
    if cache.scope_key and cache.key_wallets == wallets and cache.key_top == top:
        return cache.scope_key
    ids = list(Wallet.objects.filter(owner_id=owner_id).values_list("pk", flat=True))
    key = scope_key(ids)
    FreshnessCache.objects.filter(owner_id=owner_id).update(scope_key=key, key_wallets=len(ids), key_top=max(ids, default=None))
    return key


def cached_rows(owner_id: int, compute: Callable[[], list[dict]], now: datetime | None = None) -> list[dict]:
    """The owner's freshness rows (dicts of ``FIELDS``): from the cache when it is current, else from
    ``compute()`` (then stored unless a write came in meanwhile). One query when current."""
    now = now or timezone.now()
    cache, _ = FreshnessCache.objects.get_or_create(owner_id=owner_id)
    if cache.computed_version == cache.version and cache.computed_at and now - cache.computed_at < MAX_AGE:
        return [{**r, **{k: datetime.fromisoformat(r[k]) if r[k] else None for k in TIMES}} for r in cache.rows]
    rows = compute()
    stored = [{**{k: r[k] for k in FIELDS}, **{k: r[k].isoformat() if r[k] else None for k in TIMES}} for r in rows]
    FreshnessCache.objects.filter(owner_id=owner_id, version=cache.version).update(
        rows=stored, computed_version=cache.version, computed_at=now)
    return rows
