"""The owner's per-chain freshness over all wallets, kept in one FreshnessCache row so the dashboard does
not count every WalletChain on each view (flat in the number of wallets).

A reader computes the counts when the row is missing, stale or older than ``MAX_AGE`` and stores them
only if no write bumped ``version`` meanwhile (the read took ``version`` before counting, the store is
conditional on it). Writers call ``changed`` with the WalletChains or owners they wrote, in the same
transaction: one UPDATE, none when nobody has read the cache yet. The same row keeps "All wallets"'
series key (``all_wallets_key``), checked against the owner's wallet count and highest id.

A portfolio's rows are kept the same way in a PortfolioFreshnessCache row (``portfolio_rows``), valid
while the owner's ``version`` is the one it was computed at (so the sync's writers bump one row per
owner, not one per portfolio) and no membership change bumped its own ``version``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable, Iterable

from django.db.models import F
from django.db.models.signals import m2m_changed
from django.utils import timezone

from portfolio.models import FreshnessCache, Portfolio, PortfolioFreshnessCache

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
        return _decoded(cache.rows)
    rows = compute()
    FreshnessCache.objects.filter(owner_id=owner_id, version=cache.version).update(
        rows=_encoded(rows), computed_version=cache.version, computed_at=now)
    return rows


def portfolio_rows(owner_id: int, portfolio_ids: list[int], compute: Callable[[list[int]], dict[int, list[dict]]],
                   now: datetime | None = None) -> dict[int, list[dict]]:
    """Each portfolio's freshness rows (the owner's portfolios ``portfolio_ids``): from their cache rows
    when current, the others from one ``compute(ids) -> {id: rows}`` and stored. Two queries when all
    are current, whatever the number of portfolios or wallets."""
    if not portfolio_ids:
        return {}
    now = now or timezone.now()
    owner, _ = FreshnessCache.objects.get_or_create(owner_id=owner_id)  # its version: taken before any count
    cached = {c.portfolio_id: c for c in PortfolioFreshnessCache.objects.filter(portfolio_id__in=portfolio_ids)}
    out = {pid: _decoded(c.rows) for pid, c in cached.items()
           if c.computed_version == c.version and c.owner_version == owner.version and c.computed_at and now - c.computed_at < MAX_AGE}
    missing = [pid for pid in portfolio_ids if pid not in out]
    if missing:
        PortfolioFreshnessCache.objects.bulk_create([PortfolioFreshnessCache(portfolio_id=pid) for pid in missing if pid not in cached],
                                                    ignore_conflicts=True)
        versions = dict(PortfolioFreshnessCache.objects.filter(portfolio_id__in=missing).values_list("portfolio_id", "version"))
        computed = compute(missing)
        out.update({pid: computed.get(pid, []) for pid in missing})
        # Stored with the versions read before counting: a write after that moved one of them, so such a
        # row is not current on the next read. One statement for every portfolio.
        PortfolioFreshnessCache.objects.bulk_update(
            [PortfolioFreshnessCache(portfolio_id=pid, rows=_encoded(out[pid]), computed_version=versions[pid],
                                     owner_version=owner.version, computed_at=now) for pid in missing],
            ["rows", "computed_version", "owner_version", "computed_at"])
    return out


def _encoded(rows: list[dict]) -> list[dict]:
    return [{**{k: r[k] for k in FIELDS}, **{k: r[k].isoformat() if r[k] else None for k in TIMES}} for r in rows]


def _decoded(rows: list[dict]) -> list[dict]:
    return [{**r, **{k: datetime.fromisoformat(r[k]) if r[k] else None for k in TIMES}} for r in rows]


def _members_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    portfolio_ids = [instance.pk] if not reverse else None
    rows = PortfolioFreshnessCache.objects.filter(portfolio_id__in=portfolio_ids) if portfolio_ids is not None else \
        PortfolioFreshnessCache.objects.filter(portfolio__owner_id=instance.owner_id)  # a wallet's memberships: its owner's portfolios
    rows.update(version=F("version") + 1)


def install() -> None:
    m2m_changed.connect(_members_changed, sender=Portfolio.wallets.through, dispatch_uid="portfolio_freshness_members")
