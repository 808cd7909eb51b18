"""A scope's valued asset list (every asset priced and sorted, its price of 24 hours ago, the total's 24h
change) kept in the Django cache under a stamp of what it was computed from, so a view of the holdings
page or API reads one stamp query and the entry instead of pricing the scope's assets again.

The stamp (``stamp``, one query): the newest PricePoint and FxRate ids (a new price or rate), the
owner's HoldingsVersion (each write of its AssetTotals: the sync's diff writer, a membership change, a
WalletChain's deletion, a rebuild: ``changed``, called last in the writer's transaction) and the
"assets" one (an asset edited through the ORM or marked spam in the admin: ``assets_changed``); the
caller adds the scope's wallets, its covered pairs, the currency and its rate. An entry is used until its
``valid_until``: the first moment a price it used turns stale (now, or as of 24 hours ago), a stored
price or FX rate starts to count as "24 hours ago", or MAX_AGE (writes around the code: a shell). A
version read before the data it stamps only grows, so any thread or process may compute and store an
entry: an entry is never older than its stamp says."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable

from django.core.cache import cache
from django.db import connection
from django.db.models.signals import post_save

from portfolio.models import Asset, FxRate, HoldingsVersion, PricePoint

MAX_AGE = timedelta(minutes=5)
ASSETS = "assets"


@dataclass(frozen=True)
class Entry:
    """A scope's valued rows as plain tuples (see holdings._entry_of), the prices of 24 hours ago of
    the rows with a price, the total's 24h change, and until when all of it holds."""

    rows: list[tuple]
    day_before: dict[int, Decimal]
    change_24h: object  # holdings.TotalChange
    valid_until: datetime


def _bump(names: Iterable[str]) -> None:
    """Add one to each counter (created at 1), in one order for every writer: no deadlocks."""
    table = connection.ops.quote_name(HoldingsVersion._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} (name, version) VALUES (%s, 1) "
                           f"ON CONFLICT (name) DO UPDATE SET version = {table}.version + 1",
                           [(n,) for n in sorted(set(names))])


def changed(owner_ids: Iterable[int]) -> None:
    """These owners' per-asset totals changed: their kept lists are recomputed on the next view."""
    _bump(f"owner:{o}" for o in owner_ids if o is not None)


def assets_changed() -> None:
    """An asset's spam flag, decimals or price sources changed: every kept list is recomputed."""
    _bump([ASSETS])


def stamp(owner_id: int) -> tuple:
    """(newest price id, newest FX rate id, the owner's version, the assets' version). One query."""
    table = connection.ops.quote_name(HoldingsVersion._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT (SELECT MAX(id) FROM {connection.ops.quote_name(PricePoint._meta.db_table)}), "
                       f"(SELECT MAX(id) FROM {connection.ops.quote_name(FxRate._meta.db_table)}), "
                       f"(SELECT version FROM {table} WHERE name = %s), (SELECT version FROM {table} WHERE name = %s)",
                       [f"owner:{owner_id}", ASSETS])
        return tuple(cursor.fetchone())


def key(owner_id: int, portfolio_id: int | None, currency: str, rate: Decimal, ids: list[int], covered: dict,
        stamped: tuple) -> str:
    digest = hashlib.sha256(repr((stamped, str(rate), sorted(ids), sorted(covered))).encode()).hexdigest()
    return f"holdings:{owner_id}:{portfolio_id or 'all'}:{currency}:{digest}"


def get(cache_key: str, now: datetime) -> Entry | None:
    entry = cache.get(cache_key)
    return entry if entry is not None and now < entry.valid_until else None


def put(cache_key: str, entry: Entry, now: datetime) -> None:
    seconds = max(1, int((entry.valid_until - now).total_seconds()) + 1)
    cache.set(cache_key, entry, seconds)


def _asset_saved(sender, instance: Asset, created: bool = False, raw: bool = False, **kwargs) -> None:
    if not created and not raw:  # a new asset is in no kept list until a holding's write bumps its owner
        assets_changed()


def install() -> None:
    post_save.connect(_asset_saved, sender=Asset, dispatch_uid="holdings_cache_asset")
