"""Running a backfill: page by page through the chain adapter's ``history()``, storing transfers,
day-end amounts and on-chain prices of the past, then valuing the days like snapshots do and
rebuilding the wallet's and its scopes' series at those days.

One step = one ``HistoryPage`` in one transaction, then the next step is sent (``backfill_step_task``
on the "history" queue): resumable at the stored cursor after a crash, and idempotent (every row is
written by its unique key, the valuation recomputed from what is stored). Backfilled points are daily,
at each UTC day's last second, and only before the wallet's first live point (``window``), so a live
snapshot never counts a backfilled day twice; the first live point of the chain is re-split against
the last backfilled day (its opening balance moves to the start of the history)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time as dt_time, timedelta, timezone as dt_timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Iterable, Mapping

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from chains.base import FUNGIBLE, NFT_COLLECTION, AssetRef, HistoryPage, HistoryRequest
from chains.history import days as day_range
from portfolio.history.start import send_step
from portfolio.models import Asset, Backfill, NftItem, PricePoint, Transfer, ValuePoint, WalletChain, WalletValue
from portfolio.services.prices import counted_price, do_import_price_range, prices_at, store_quotes
from portfolio.services.snapshots import rebuild_scope_values, rebuild_wallet_values, value_point
from portfolio.sync.run import build_adapter, known_assets
from portfolio.sync.store import asset_key, upsert_assets
from portfolio.valuation import exact

log = logging.getLogger(__name__)
FINISHED = (Backfill.DONE, Backfill.PARTIAL, Backfill.FAILED)


def day_end(day: date) -> datetime:
    """The moment a backfilled day's point is stored at: the day's last second (UTC)."""
    return datetime.combine(day, dt_time(23, 59, 59), tzinfo=dt_timezone.utc)


def window(wc: WalletChain, depth_days: int) -> tuple[date, date]:
    """(since, until) of a wallet-chain's backfill: ``depth_days`` days ending the day before the
    wallet's first live point (its first snapshot on any chain, or this chain's first sync), so no
    backfilled day is ever at or after a live one."""
    first_live = WalletValue.objects.filter(wallet_id=wc.wallet_id, at__lt=timezone.now()).exclude(
        at__in=ValuePoint.objects.filter(wallet_id=wc.wallet_id, backfilled=True).values("at")).aggregate(m=Min("at"))["m"]
    moments = [t for t in (first_live, wc.first_ok_at, timezone.now()) if t is not None]
    until = min(moments).astimezone(dt_timezone.utc).date() - timedelta(days=1)
    return until - timedelta(days=depth_days - 1), until


def do_backfill_step(backfill_id: int) -> Backfill | None:
    """Read and store one page of a backfill; send the next step, or finish it (value the days,
    rebuild the series). A finished backfill is left as is (a redelivered step does nothing).

    Raises ``ChainError`` (after recording it on the Backfill) when the chain could not be read: the
    task retries, and the cursor makes the retry continue where the last stored page ended."""
    backfill = Backfill.objects.select_related("wallet_chain__wallet", "wallet_chain__chain").filter(pk=backfill_id).first()
    if backfill is None or backfill.status in FINISHED:
        return backfill
    wc, chain = backfill.wallet_chain, backfill.wallet_chain.chain
    now = timezone.now()
    if not backfill.cursor.get("since"):
        since, until = window(wc, backfill.depth_days)
        backfill.cursor = {"since": since.isoformat(), "until": until.isoformat(), "page": {}, "days": []}
        backfill.days_total, backfill.started_at = (until - since).days + 1, now
    Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.RUNNING, cursor=backfill.cursor, days_total=backfill.days_total,
                                                   started_at=backfill.started_at, updated_at=now)
    adapter = build_adapter(chain)
    request = HistoryRequest(
        wallet=wc.wallet.to_ref(), since=date.fromisoformat(backfill.cursor["since"]), until=date.fromisoformat(backfill.cursor["until"]),
        known_assets=tuple(known_assets(chain, [wc])), cursor=backfill.cursor.get("page") or {},
    )
    try:
        page = adapter.history(request)
    except Exception as exc:
        Backfill.objects.filter(pk=backfill.pk).update(reason=f"retrying: {str(exc)[:280]}", updated_at=timezone.now())
        raise
    with transaction.atomic():
        _store_page(wc, page, {a.address for a in request.known_assets if a.address and a.kind != NFT_COLLECTION})
        days = sorted(set(backfill.cursor.get("days") or []) | {d.isoformat() for d in page.daily})
        if page.done:
            filled = _fill_days(wc, request.since, request.until, days, page.complete_from or request.since)
            days = sorted(set(days) | {d.isoformat() for d in filled})
        backfill.cursor = {**backfill.cursor, "page": dict(page.cursor), "days": days}
        backfill.days_done = min(len(days), backfill.days_total)
        backfill.requests += page.request_count
        backfill.reason, backfill.updated_at = page.reason[:300], timezone.now()
        if page.done and page.complete_from:
            backfill.complete_from = datetime.combine(page.complete_from, dt_time.min, tzinfo=dt_timezone.utc)
        backfill.save(update_fields=["cursor", "days_done", "days_total", "requests", "reason", "updated_at", "complete_from"])
        if not page.done:
            transaction.on_commit(lambda: send_step(backfill.pk))
    if page.done:
        finish_backfill(backfill)
    return backfill


def _store_page(wc: WalletChain, page: HistoryPage, known: set[str]) -> None:
    """One page's transfers, on-chain prices and day-end amounts, each written by its unique key (NFT
    mints counted under their collection, see ``_nft_mints``)."""
    chain = wc.chain
    refs = [*page.assets, *(t.asset for t in page.transfers)]
    nfts = _nft_mints(chain, refs, known)
    assets = upsert_assets(chain, [r for r in refs if r.address not in nfts])
    assets.update({mint: collection for mint, collection in nfts.items() if collection is not None})
    transfers = [Transfer(wallet_chain=wc, asset=assets[asset_key(t.asset.address)], tx=t.tx[:100], key=str(t.key)[:40],
                          direction=t.direction, amount=t.amount, fee=t.fee, counterparty=(t.counterparty or "")[:200],
                          at=t.at, height=t.height) for t in page.transfers if asset_key(t.asset.address) in assets]
    Transfer.objects.bulk_create(transfers, batch_size=1000, update_conflicts=True,
                                 unique_fields=["wallet_chain", "asset", "tx", "key", "direction"],
                                 update_fields=["amount", "fee", "counterparty", "at", "height"])
    for day, quotes in page.prices.items():
        at = day_end(day)
        sources = {(q.source if q.source.startswith("oracle:") else f"oracle:{q.source}")[:120] for q in quotes.values()}
        PricePoint.objects.filter(asset__chain=chain, at=at, source__in=sources).delete()  # a re-run replaces, never adds
        store_quotes(chain, quotes.values(), at=at)
    moments = [day_end(d) for d in page.daily]
    ValuePoint.objects.filter(wallet_id=wc.wallet_id, chain_id=wc.chain_id, backfilled=True, at__in=moments).delete()
    points: list[ValuePoint] = []
    for day, amounts in page.daily.items():
        summed: dict[int, tuple[Asset, int]] = {}
        for key, amount in amounts.items():
            asset = assets.get(_asset_address(key))
            if amount and asset is not None:
                summed[asset.pk] = (asset, summed.get(asset.pk, (asset, 0))[1] + amount)
        points += [ValuePoint(wallet_id=wc.wallet_id, chain_id=wc.chain_id, asset=asset, at=day_end(day), resolution=ValuePoint.DAILY,
                              amount=amount, backfilled=True) for asset, amount in summed.values()]
    ValuePoint.objects.bulk_create(points, batch_size=2000)


def _asset_address(key: str) -> str:
    """Asset.address of a HistoryPage asset key (``native`` or the contract/mint)."""
    return "" if key == "native" else key


def _nft_mints(chain, refs: Iterable[AssetRef], known: set[str]) -> dict[str, Asset | None]:
    """The page's 0-decimal fungible assets a sync does not read as fungible (``known``: the assets it
    reads, NFT collections left out, since an NFT without a collection is its own mint's): NFT
    mints, as a chain's history sees them (Solana). Each maps to the collection asset a sync counts it
    under (an ``NftItem`` of that mint on the chain), or to None (left out) when no sync has seen it."""
    odd = {r.address for r in refs if r.kind == FUNGIBLE and r.decimals == 0 and r.address and r.address not in known}
    if not odd:
        return {}
    collections = {item.token_id: item.collection for item in NftItem.objects.filter(
        wallet_chain__chain=chain, token_id__in=odd).select_related("collection")}
    return {mint: collections.get(mint) for mint in odd}


def _fill_days(wc: WalletChain, since: date, until: date, listed: Iterable[str], complete_from: date) -> list[date]:
    """The days of ``since``..``until`` no page listed, that the history still tells (see
    ``HistoryPage``): before the first listed day, zero from ``complete_from`` on (nothing held yet);
    after it, the previous day's balances carried (their points copied). Returns the days filled."""
    listed_days = {date.fromisoformat(d) for d in listed}
    first = min(listed_days, default=until + timedelta(days=1))
    filled = [day for day in day_range(since, min(first, until + timedelta(days=1)) - timedelta(days=1)) if day >= complete_from]
    stored: dict[date, list[tuple[int, int]]] = defaultdict(list)
    for at, asset_id, amount in ValuePoint.objects.filter(wallet_id=wc.wallet_id, chain_id=wc.chain_id, backfilled=True).values_list(
            "at", "asset_id", "amount"):
        stored[at.astimezone(dt_timezone.utc).date()].append((asset_id, amount))
    carried: list[ValuePoint] = []
    previous: list[tuple[int, int]] = []
    for day in day_range(first, until):
        if day in listed_days:
            previous = stored.get(day, [])
            continue
        filled.append(day)
        carried += [ValuePoint(wallet_id=wc.wallet_id, chain_id=wc.chain_id, asset_id=a, at=day_end(day), resolution=ValuePoint.DAILY,
                               amount=amount, backfilled=True) for a, amount in previous]
    ValuePoint.objects.filter(wallet_id=wc.wallet_id, chain_id=wc.chain_id, backfilled=True, at__in=[day_end(d) for d in filled]).delete()
    ValuePoint.objects.bulk_create(carried, batch_size=2000)
    return filled


def finish_backfill(backfill: Backfill) -> None:
    """Value the stored days (historical prices first), rebuild the wallet's and its scopes' series
    there, and close the backfill: done, or partial when the chain's history stopped early."""
    wc = backfill.wallet_chain
    moments = [day_end(date.fromisoformat(d)) for d in backfill.cursor.get("days") or []]
    if moments:
        asset_ids = set(ValuePoint.objects.filter(wallet_id=wc.wallet_id, chain_id=wc.chain_id, backfilled=True).values_list("asset_id", flat=True))
        do_import_price_range(Asset.objects.filter(pk__in=asset_ids).select_related("chain"), min(moments) - timedelta(days=1), max(moments))
    valued = value_days(wc, moments)  # reads only: a sync's writes are not held up meanwhile
    with transaction.atomic():
        # Serialise with the owner's snapshots (they lock the same row) while the series change.
        get_user_model().objects.select_for_update().filter(pk=wc.wallet.owner_id).first()
        touched = valued.write()
        rebuild_wallet_values(wc.wallet_id, touched)
        rebuild_scope_values(wc.wallet.owner_id, touched)
        status = Backfill.PARTIAL if backfill.reason else Backfill.DONE
        Backfill.objects.filter(pk=backfill.pk).update(status=status, finished_at=timezone.now(), updated_at=timezone.now())


@dataclass
class ValuedDays:
    """A wallet-chain's backfilled points valued afresh, to be written in the caller's transaction."""

    wallet_chain: WalletChain
    moments: list[datetime]
    points: list[ValuePoint]
    last: dict[int, tuple[int, Decimal | None]]  # the last day's (amount, price) per asset
    seen: set[int]  # every asset the history held on some day

    def write(self) -> list[datetime]:
        """Replace the stored backfilled points; split the chain's first live point against the last
        backfilled day instead of opening. Returns the moments whose points changed."""
        wc = self.wallet_chain
        live_at = _first_live_at(wc, self.moments[-1]) if self.moments else None
        ValuePoint.objects.filter(wallet_id=wc.wallet_id, chain_id=wc.chain_id, backfilled=True).delete()
        ValuePoint.objects.bulk_create(self.points, batch_size=2000)
        if live_at is not None:
            _resplit_live(wc, live_at, self.last, self.seen)
        return self.moments + ([live_at] if live_at is not None else [])


def value_days(wc: WalletChain, moments: Iterable[datetime]) -> ValuedDays:
    """Price and split every backfilled point of the wallet-chain, oldest first, like a snapshot: the
    first day opens the account, each later day's change is flow + market against the day before (an
    asset gone gets its zero point), with the prices and FX rates of that moment. Reads only."""
    moments = sorted(set(moments))
    stored: dict[datetime, dict[int, int]] = defaultdict(dict)
    for at, asset_id, amount in ValuePoint.objects.filter(wallet_id=wc.wallet_id, chain_id=wc.chain_id, backfilled=True).values_list(
            "at", "asset_id", "amount"):
        stored[at][asset_id] = amount
    moments = sorted(set(moments) | set(stored))
    assets = {a: (decimals, spam) for a, decimals, spam in Asset.objects.filter(
        pk__in={a for day in stored.values() for a in day}).values_list("id", "decimals", "is_spam")}
    points: list[ValuePoint] = []
    previous: dict[int, tuple[int, Decimal | None]] = {}
    prices_of_day = prices_at(assets, moments)
    with exact():
        for i, at in enumerate(moments):
            amounts = {a: v for a, v in stored.get(at, {}).items() if not assets[a][1]}
            keys = set(amounts) | {a for a, (raw, _p) in previous.items() if raw}
            prices = prices_of_day[at]
            today: dict[int, tuple[int, Decimal | None]] = {}
            for a in sorted(keys):
                point = value_point((wc.wallet_id, wc.chain_id, a), at, amounts.get(a, 0), assets[a][0], counted_price(prices.get(a)),
                                    previous.get(a, (0, None)), opening=i == 0, resolution=ValuePoint.DAILY, backfilled=True)
                points.append(point)
                today[a] = (point.amount, point.price)
            previous = today
    return ValuedDays(wc, moments, points, previous, {p.asset_id for p in points})


def _first_live_at(wc: WalletChain, after: datetime) -> datetime | None:
    return WalletValue.objects.filter(wallet_id=wc.wallet_id, at__gt=after).exclude(
        at__in=ValuePoint.objects.filter(wallet_id=wc.wallet_id, backfilled=True).values("at")).aggregate(m=Min("at"))["m"]


def _resplit_live(wc: WalletChain, at: datetime, previous: Mapping[int, tuple[int, Decimal | None]], seen: set[int]) -> None:
    """The chain's points at the wallet's first live moment, split against the last backfilled day
    (flow + market) instead of opening the account there: its opening is now the backfill's first day.
    An asset the history never held (what it cannot read, e.g. a DeFi position's legs) still opens
    there rather than counting as a deposit."""
    live = {p.asset_id: p for p in ValuePoint.objects.filter(wallet_id=wc.wallet_id, chain_id=wc.chain_id, at=at)}
    decimals = dict(Asset.objects.filter(pk__in=set(live) | set(previous)).values_list("id", "decimals"))
    changed: list[ValuePoint] = []
    added: list[ValuePoint] = []
    with exact():
        for a in set(live) | {a for a, (raw, _p) in previous.items() if raw}:
            p = live.get(a)
            price = SimpleNamespace(usd=p.price, source=p.price_source) if p is not None and p.price is not None else None
            new = value_point((wc.wallet_id, wc.chain_id, a), at, p.amount if p else 0, decimals[a], price, previous.get(a, (0, None)),
                              opening=a not in seen, resolution=p.resolution if p else ValuePoint.RAW)
            if p is None:
                added.append(new)
                continue
            p.flow_value, p.market_value, p.opening_value = new.flow_value, new.market_value, new.opening_value
            changed.append(p)
    ValuePoint.objects.bulk_update(changed, ["flow_value", "market_value", "opening_value"], batch_size=1000)
    ValuePoint.objects.bulk_create(added, batch_size=1000)


def fail_backfill(backfill_id: int, error: str) -> None:
    """No retry is left: the backfill stops as failed with the (redacted) error; what it stored stays."""
    Backfill.objects.filter(pk=backfill_id).exclude(status__in=FINISHED).update(
        status=Backfill.FAILED, reason=error[:300], finished_at=timezone.now(), updated_at=timezone.now())

