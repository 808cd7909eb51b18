"""Value snapshots: per wallet, chain and asset (ValuePoint), per wallet (WalletValue) and per set of an
owner's wallets (ScopeValue, materialised so a dashboard series is one short query), and downsampling
of points older than 7 days to one per day with flows and market moves summed so attribution stays exact.

Values are stored in USD with the FX rates of the moment (``fx_rates``), so history is never re-priced."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time as dt_time, timedelta, timezone as dt_timezone
from decimal import Decimal
from typing import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Max
from django.db.models.functions import TruncDate
from django.utils import timezone

from portfolio.models import (
    Asset, Holding, NftItem, Portfolio, PositionLeg, PricePoint, ScopeValue, ValuePoint, Wallet, WalletChain, WalletValue,
)
from portfolio.pricing.fx import rates_to_json
from portfolio.overlaps import covered_pairs
from portfolio.services.prices import counted_price, latest_fx_rates, latest_prices
from portfolio.valuation import ZERO, exact, exact_text, opening_change, split_change, to_units

RAW_KEEP = timedelta(hours=48)  # points younger than this stay as taken (one per sync)
HOURLY_KEEP = timedelta(days=7)  # then one per hour; older than this, one per day
TOKEN, NFT, DEFI = "token", "nft", "defi"


def snapshot_time(at: datetime) -> datetime:
    """A snapshot's time: to the second, so every completed sync adds a point (two make a chart)."""
    return at.replace(microsecond=0)


def hour_bucket(at: datetime) -> datetime:
    """The start of ``at``'s hour (downsampling keeps one point per hour after 48 hours)."""
    return at.replace(minute=0, second=0, microsecond=0)


def scope_key(wallet_ids: Iterable[int]) -> str:
    """A stable digest of a set of wallet ids: the identity of a materialised series."""
    ids = ",".join(str(i) for i in sorted(set(wallet_ids)))
    return hashlib.sha1(ids.encode()).hexdigest()


def owner_scopes(owner_id: int, wallet_ids: list[int], portfolios: dict[int, list[int]]) -> dict[str, list[int]]:
    """The wallet sets worth materialising for an owner: all wallets, and each non-empty portfolio."""
    scopes = {scope_key(wallet_ids): sorted(wallet_ids)} if wallet_ids else {}
    for members in portfolios.values():
        if members:
            scopes.setdefault(scope_key(members), sorted(members))
    return scopes


@dataclass
class SnapshotReport:
    at: datetime
    wallets: int = 0
    points: int = 0
    unpriced: int = 0
    scopes: int = 0


@dataclass
class PairTotal:
    """One (wallet, chain)'s totals at a snapshot: the unit scopes add up or leave out (overlaps)."""

    value: Decimal = ZERO
    flow: Decimal = ZERO
    market: Decimal = ZERO
    opening: Decimal = ZERO
    unpriced: set = field(default_factory=set)


def do_snapshot(wallet_ids: Iterable[int] | None = None, at: datetime | None = None) -> SnapshotReport:
    """Store value points at ``at`` (default now, to the second) for the owners of ``wallet_ids``
    (default: every wallet). All wallets of an affected owner are snapshotted together, so every
    series of that owner (all wallets, each portfolio) has its points at the same times and sums stay
    exact.

    Per (wallet, chain, asset): amount (holdings + position legs, borrowed negative, + NFT count),
    USD price (None = unpriced, or stale: kept with its amount, excluded from value), value, and the
    flow/market/opening split against the wallet's previous point. Spam is left out. Re-running at the
    same second replaces that point.
    """
    if wallet_ids is None:
        # Owner by owner: bounded memory and short transactions however many users there are.
        total = SnapshotReport(at=snapshot_time(at or timezone.now()))
        for owner_id in sorted(set(Wallet.objects.values_list("owner_id", flat=True))):
            part = do_snapshot(list(Wallet.objects.filter(owner_id=owner_id).values_list("pk", flat=True)), at=at)
            total.wallets += part.wallets
            total.points += part.points
            total.unpriced += part.unpriced
            total.scopes += part.scopes
        return total
    as_of = at  # an explicit time (a past snapshot) reads prices and FX as they were then
    at = snapshot_time(at or timezone.now())
    owners = Wallet.objects.filter(pk__in=list(wallet_ids)).values("owner_id").distinct()
    wallet_owner = dict(Wallet.objects.filter(owner_id__in=owners).values_list("id", "owner_id"))
    report = SnapshotReport(at=at, wallets=len(wallet_owner))
    if not wallet_owner:
        return report
    valued = _value_points(list(wallet_owner), at, as_of)
    with transaction.atomic():
        # Serialise snapshots of the same owners (a sync's snapshot meeting the hourly one): the
        # second waits, then replaces the point instead of failing on the unique constraints.
        list(get_user_model().objects.select_for_update().filter(pk__in=sorted(set(wallet_owner.values()))).values_list("pk"))
        ids = list(wallet_owner)
        ValuePoint.objects.filter(wallet_id__in=ids, at=at).delete()
        ValuePoint.objects.bulk_create(valued.points, batch_size=2000)
        WalletValue.objects.filter(wallet_id__in=ids, at=at).delete()
        WalletValue.objects.bulk_create(valued.wallet_rows(at), batch_size=2000)
        report.scopes = _materialise_scopes(wallet_owner, valued, at)
    report.points = len(valued.points)
    report.unpriced = len({a for t in valued.pairs.values() for a in t.unpriced})
    return report


@dataclass
class Valued:
    """What one snapshot computed: the ValuePoints, totals per (wallet, chain), allocation items
    (wallet, chain, asset, kind, value|None) of the current state, and the FX rates of the moment."""

    wallet_ids: list[int]
    points: list[ValuePoint]
    pairs: dict[tuple[int, int], PairTotal]
    items: list[tuple]
    fx_json: dict

    def wallet_rows(self, at: datetime) -> list[WalletValue]:
        """Per-wallet totals: every chain of the wallet (overlaps are a matter of scopes, not wallets)."""
        sums: dict[int, PairTotal] = {w: PairTotal() for w in self.wallet_ids}
        with exact():
            for (w, _c), t in self.pairs.items():
                s = sums[w]
                s.value, s.flow, s.market, s.opening = s.value + t.value, s.flow + t.flow, s.market + t.market, s.opening + t.opening
                s.unpriced |= t.unpriced
        return [WalletValue(wallet_id=w, at=at, value=t.value, flow_value=t.flow, market_value=t.market, opening_value=t.opening,
                            unpriced=len(t.unpriced), fx_rates=self.fx_json) for w, t in sums.items()]


def _value_points(ids: list[int], at: datetime, as_of: datetime | None) -> Valued:
    """Amounts x prices of the wallets now, split against their previous points."""
    amounts, parts = current_amounts(ids)
    previous, previous_at = _previous_points(ids, at)
    asset_ids = {k[2] for k in amounts} | {k[2] for k in previous}
    assets = {a: (decimals, kind, spam) for a, decimals, kind, spam in
              Asset.objects.filter(pk__in=asset_ids).values_list("id", "decimals", "kind", "is_spam")}
    first_ok = {(w, c): t for w, c, t in WalletChain.objects.filter(wallet_id__in=ids).values_list("wallet_id", "chain_id", "first_ok_at")}
    fx = latest_fx_rates(as_of)
    prices = latest_prices(asset_ids, fx=fx, as_of=as_of)
    points: list[ValuePoint] = []
    pairs: dict[tuple[int, int], PairTotal] = {}
    with exact():
        for key in set(amounts) | {k for k, (amount, _) in previous.items() if amount}:
            w, c, a = key
            decimals, kind, spam = assets[a]
            raw, (prev_raw, p0) = amounts.get(key, 0), previous.get(key, (0, None))
            if spam or (raw == 0 and prev_raw == 0):
                continue
            opening = key not in previous and _opens(first_ok.get((w, c)), previous_at.get(w))
            point = value_point(key, at, raw, decimals, counted_price(prices.get(a)), (prev_raw, p0), opening=opening)
            points.append(point)
            t = pairs.setdefault((w, c), PairTotal())
            t.value, t.flow, t.market, t.opening = (t.value + (point.value or ZERO), t.flow + point.flow_value,
                                                    t.market + point.market_value, t.opening + point.opening_value)
            if point.price is None and raw != 0 and kind != Asset.NFT_COLLECTION:
                t.unpriced.add(a)
        # Allocation items of the current state, by kind (a holding and a loan of one asset stay apart).
        items = []
        for (w, c, a, kind), raw in parts.items():
            if raw and not assets[a][2]:
                price = counted_price(prices.get(a))
                items.append((w, c, a, kind, to_units(raw, assets[a][0]) * price.usd if price else None, raw))
    return Valued(ids, points, pairs, items, rates_to_json(fx))


def value_point(key: tuple[int, int, int], at: datetime, raw: int, decimals: int, price, previous: tuple[int, Decimal | None],
                *, opening: bool, resolution: str = ValuePoint.RAW, backfilled: bool = False) -> ValuePoint:
    """One (wallet, chain, asset)'s point at ``at``: ``raw`` base units at the counted ``price`` (None:
    unpriced), its change since ``previous`` (raw amount, USD price) split into flow and market, or, for
    an ``opening`` (an account seen for the first time), all of its value as the opening. Call inside
    ``exact()``. Snapshots and backfills (``portfolio.history``) value their points with this alone."""
    w, c, a = key
    p1 = price.usd if price else None
    a1 = to_units(raw, decimals)
    prev_raw, p0 = previous
    change = opening_change(a1, p1) if opening else split_change(to_units(prev_raw, decimals), p0, a1, p1)
    return ValuePoint(wallet_id=w, chain_id=c, asset_id=a, at=at, resolution=resolution, amount=raw, price=p1,
                      value=a1 * p1 if p1 is not None else None, flow_value=change.flow, market_value=change.market,
                      opening_value=change.opening, currency="USD", price_source=price.source if price else "",
                      backfilled=backfilled)


def _opens(first_ok_at: datetime | None, previous_at: datetime | None) -> bool:
    """Is an amount with no previous point an opening balance (a wallet, or a chain of it, read for the
    first time since the previous snapshot) rather than a deposit?"""
    if previous_at is None:
        return True  # the wallet's first snapshot
    return first_ok_at is not None and first_ok_at > previous_at


def current_amounts(wallet_ids: list[int]) -> tuple[dict[tuple[int, int, int], int], dict[tuple[int, int, int, str], int]]:
    """The wallets' current state in three queries: (wallet, chain, asset) -> net raw amount (balances +
    NFT counts + position legs, borrowed negative), and the same split by kind (token, nft, defi)."""
    ids = wallet_ids
    amounts: dict[tuple[int, int, int], int] = defaultdict(int)
    parts: dict[tuple[int, int, int, str], int] = defaultdict(int)
    for w, c, a, amount in Holding.objects.filter(wallet_chain__wallet_id__in=ids).values_list(
            "wallet_chain__wallet_id", "wallet_chain__chain_id", "asset_id", "amount").iterator(chunk_size=5000):
        amounts[(w, c, a)] += amount
        parts[(w, c, a, TOKEN)] += amount
    for w, c, a, amount in NftItem.objects.filter(wallet_chain__wallet_id__in=ids).values_list(
            "wallet_chain__wallet_id", "wallet_chain__chain_id", "collection_id", "amount").iterator(chunk_size=5000):
        amounts[(w, c, a)] += amount
        parts[(w, c, a, NFT)] += amount
    for w, c, a, amount, role in PositionLeg.objects.filter(position__wallet_chain__wallet_id__in=ids).values_list(
            "position__wallet_chain__wallet_id", "position__wallet_chain__chain_id", "asset_id", "amount", "role").iterator(chunk_size=5000):
        signed = -amount if role == PositionLeg.BORROWED else amount
        amounts[(w, c, a)] += signed
        parts[(w, c, a, DEFI)] += signed

    return amounts, parts


def _previous_points(wallet_ids: list[int], at: datetime) -> tuple[dict[tuple[int, int, int], tuple[int, Decimal | None]], dict[int, datetime]]:
    """Each wallet's points at its latest snapshot before ``at`` (key -> (raw amount, USD price)), and
    that snapshot's time per wallet (absent: the wallet has none yet)."""
    last = WalletValue.objects.filter(wallet_id__in=wallet_ids, at__lt=at).values("wallet_id").annotate(last=Max("at"))
    by_at: dict[datetime, list[int]] = defaultdict(list)
    previous_at: dict[int, datetime] = {}
    for row in last:
        by_at[row["last"]].append(row["wallet_id"])
        previous_at[row["wallet_id"]] = row["last"]
    out = {}
    for prev_at, wallets in by_at.items():
        for w, c, a, amount, price in ValuePoint.objects.filter(wallet_id__in=wallets, at=prev_at).values_list(
                "wallet_id", "chain_id", "asset_id", "amount", "price").iterator(chunk_size=5000):
            out[(w, c, a)] = (amount, price)
    return out, previous_at


def _materialise_scopes(wallet_owner: dict[int, int], valued: Valued, at: datetime) -> int:
    """Write the ScopeValue at ``at`` of every scope of the owners (the sum of their counted (wallet,
    chain) pairs: an account reached through two wallets counts once) with the allocation breakdown;
    build a scope's history the first time it is seen."""
    by_owner: dict[int, list[int]] = defaultdict(list)
    for w, o in wallet_owner.items():
        by_owner[o].append(w)
    portfolios = _portfolios_of(list(wallet_owner))
    rows = []
    for owner_id, wallets in by_owner.items():
        scopes = owner_scopes(owner_id, wallets, portfolios[owner_id])
        known = set(ScopeValue.objects.filter(owner_id=owner_id, scope_key__in=list(scopes), at__lt=at)
                    .values_list("scope_key", flat=True).distinct())
        for key, members in scopes.items():
            covered = covered_pairs(members)
            if key not in known:
                _write_history(owner_id, key, scope_history(members, covered, before=at))
            rows.append(_scope_row(owner_id, key, members, covered, valued, at))
        ScopeValue.objects.filter(owner_id=owner_id, scope_key__in=list(scopes), at=at).delete()
        # Only the latest point carries an allocation: older breakdowns are dropped to keep rows small.
        ScopeValue.objects.filter(owner_id=owner_id, at__lt=at).exclude(breakdown={}).update(breakdown={})
    ScopeValue.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def _scope_row(owner_id: int, key: str, members: list[int], covered, valued: Valued, at: datetime) -> ScopeValue:
    member_set = set(members)
    counted = [t for (w, c), t in valued.pairs.items() if w in member_set and (w, c) not in covered]
    with exact():
        breakdown = breakdown_of([i for i in valued.items if i[0] in member_set and (i[0], i[1]) not in covered])
        return ScopeValue(
            owner_id=owner_id, scope_key=key, at=at, value=sum((t.value for t in counted), ZERO),
            flow_value=sum((t.flow for t in counted), ZERO), market_value=sum((t.market for t in counted), ZERO),
            opening_value=sum((t.opening for t in counted), ZERO), unpriced=len(breakdown["unpriced"]),
            fx_rates=valued.fx_json, breakdown=breakdown,
        )


def _portfolios_of(wallet_ids: list[int]) -> dict[int, dict[int, list[int]]]:
    """owner -> portfolio -> member wallet ids, for the portfolios these wallets are in."""
    portfolios: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for pid, o, w in Portfolio.wallets.through.objects.filter(wallet_id__in=wallet_ids).values_list(
            "portfolio_id", "portfolio__owner_id", "wallet_id"):
        portfolios[o][pid].append(w)
    return portfolios


def do_materialise_scopes(owner_ids: Iterable[int] | None = None) -> int:
    """Build the series of wallet sets that have none yet (a portfolio just made or whose wallets
    changed) from their wallets' history, without taking a snapshot. Call it after editing a portfolio
    so its dashboard reads one short series at once. Returns the number of scopes built."""
    wallets = Wallet.objects.all() if owner_ids is None else Wallet.objects.filter(owner_id__in=list(owner_ids))
    by_owner: dict[int, list[int]] = defaultdict(list)
    for w, o in wallets.values_list("id", "owner_id"):
        by_owner[o].append(w)
    portfolios = _portfolios_of([w for ws in by_owner.values() for w in ws])
    built = 0
    for owner_id, ids in by_owner.items():
        scopes = owner_scopes(owner_id, ids, portfolios[owner_id])
        known = set(ScopeValue.objects.filter(owner_id=owner_id, scope_key__in=list(scopes)).values_list("scope_key", flat=True).distinct())
        for key, members in scopes.items():
            if key not in known:
                with transaction.atomic():
                    _write_history(owner_id, key, scope_history(members, covered_pairs(members)))
                built += 1
    return built


def breakdown_of(items: list) -> dict:
    """Allocation of (wallet, chain, asset, kind, value|None, raw) items as exact strings, for JSON.
    ``unpriced``: fungible assets held without a counted price; ``nfts_unvalued``: NFTs held without one."""
    sums = {"by_asset": defaultdict(lambda: ZERO), "by_chain": defaultdict(lambda: ZERO),
            "by_wallet": defaultdict(lambda: ZERO), "by_kind": defaultdict(lambda: ZERO)}
    unpriced, nfts_unvalued = set(), 0
    for w, c, a, kind, value, raw in items:
        if value is None:
            if kind == NFT:
                nfts_unvalued += raw
            else:
                unpriced.add(a)
            continue
        sums["by_asset"][a] += value
        sums["by_chain"][c] += value
        sums["by_wallet"][w] += value
        sums["by_kind"][kind] += value
    out: dict = {name: [[k, exact_text(v)] for k, v in table.items()] for name, table in sums.items()}
    out["unpriced"] = sorted(unpriced)
    out["nfts_unvalued"] = nfts_unvalued
    return out


@dataclass
class HistoryPoint:
    """One point of a scope's series summed from its wallets' history."""

    at: datetime
    resolution: str
    value: Decimal = ZERO
    flow: Decimal = ZERO
    market: Decimal = ZERO
    opening: Decimal = ZERO
    unpriced: int = 0
    fx_rates: dict = field(default_factory=dict)


def scope_history(members: list[int], covered, *, before: datetime | None = None, start: datetime | None = None) -> list[HistoryPoint]:
    """A scope's series from its wallets' stored history (oldest first): WalletValue totals, or, when
    an account is reached through two of its wallets (``covered`` pairs, see ``portfolio.overlaps``),
    the ValuePoints of the counted (wallet, chain) pairs only. ``start`` keeps the points after it and
    the last one at or before it (the base of a range)."""
    if covered:
        source = ValuePoint.objects.filter(wallet_id__in=members).exclude(value=None)
        fields = ("at", "resolution", "value", "flow_value", "market_value", "opening_value", "wallet_id", "chain_id")
    else:
        source = WalletValue.objects.filter(wallet_id__in=members)
        fields = ("at", "resolution", "value", "flow_value", "market_value", "opening_value", "unpriced", "fx_rates")
    if before is not None:
        source = source.filter(at__lt=before)
    if start is not None:
        base_at = source.filter(at__lte=start).aggregate(last=Max("at"))["last"]
        source = source.filter(at__gte=base_at) if base_at else source.filter(at__gt=start)
    sums: dict[datetime, HistoryPoint] = {}
    with exact():
        for row in source.values_list(*fields).iterator(chunk_size=5000):
            if covered and (row[6], row[7]) in covered:
                continue
            p = sums.get(row[0])
            if p is None:
                p = sums[row[0]] = HistoryPoint(row[0], row[1])
            p.value += row[2] or ZERO
            p.flow += row[3] or ZERO
            p.market += row[4] or ZERO
            p.opening += row[5] or ZERO
            if not covered:
                p.unpriced, p.fx_rates = max(p.unpriced, row[6]), row[7]
    if covered and sums:  # ValuePoints carry no FX rates: take each moment's from the wallets' totals
        for at, fx in WalletValue.objects.filter(wallet_id__in=members, at__in=list(sums)).values_list("at", "fx_rates"):
            sums[at].fx_rates = fx
    return [sums[at] for at in sorted(sums)]


def _write_history(owner_id: int, key: str, history: list[HistoryPoint]) -> None:
    """A scope seen for the first time (new portfolio, changed membership): store its history."""
    ScopeValue.objects.bulk_create(
        [ScopeValue(owner_id=owner_id, scope_key=key, at=p.at, resolution=p.resolution, value=p.value, flow_value=p.flow,
                    market_value=p.market, opening_value=p.opening, unpriced=p.unpriced, fx_rates=p.fx_rates) for p in history],
        batch_size=1000,
        # Two workers may build the same new scope at once (one materialise task per added wallet): the
        # rows are the same sums of the same history, so the second one's are skipped.
        ignore_conflicts=True,
    )


# --------------------------------------------------------------------------- downsampling


@dataclass
class DownsampleReport:
    value_points_removed: int = 0
    wallet_values_removed: int = 0
    scope_values_removed: int = 0
    prices_removed: int = 0


def do_downsample(now: datetime | None = None) -> DownsampleReport:
    """Points of the last 48 hours stay as taken; older ones become one per hour, and after 7 days one
    per day: the last point of each hour (day) is kept (its amount, price and value are the close) and
    the flows, market moves and openings of the others are added to it, so ``value change == flow +
    market + opening`` still holds between kept points. Works day by day (one transaction each), so
    it can be stopped and run again. Stored prices older than 7 days are thinned the same way (the last
    of each asset, source and day)."""
    now = now or timezone.now()
    daily_cutoff = (now - HOURLY_KEEP).replace(hour=0, minute=0, second=0, microsecond=0)
    report = DownsampleReport()
    report.prices_removed = _thin_prices(daily_cutoff)
    _fold_days(report, (ValuePoint.RAW,), hour_bucket(now - RAW_KEEP), hour_bucket, ValuePoint.HOURLY)
    _fold_days(report, (ValuePoint.RAW, ValuePoint.HOURLY), daily_cutoff, _day_bucket, ValuePoint.DAILY)
    return report


def _day_bucket(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def _fold_days(report: DownsampleReport, resolutions: tuple[str, ...], cutoff: datetime, bucket, resolution: str) -> None:
    """Fold the rows of ``resolutions`` older than ``cutoff`` into one per ``bucket``, a day at a time."""
    starts = [m.objects.filter(resolution__in=resolutions, at__lt=cutoff).order_by("at").values_list("at", flat=True).first()
              for m in (WalletValue, ScopeValue)]
    starts = [d for d in starts if d is not None]
    if not starts:
        return
    day = _day_bucket(min(starts))
    while day < cutoff:
        end = min(day + timedelta(days=1), cutoff)
        window = {"at__gte": day, "at__lt": end, "resolution__in": resolutions}
        with transaction.atomic():
            report.value_points_removed += _fold(ValuePoint.objects.filter(**window), ("wallet_id", "chain_id", "asset_id"), bucket, resolution)
            report.wallet_values_removed += _fold(WalletValue.objects.filter(**window), ("wallet_id",), bucket, resolution)
            report.scope_values_removed += _fold(ScopeValue.objects.filter(**window), ("owner_id", "scope_key"), bucket, resolution)
        day = end


def _thin_prices(cutoff: datetime) -> int:
    """Keep one PricePoint per (asset, source, currency, UTC day) before ``cutoff``: the day's last."""
    groups = (PricePoint.objects.filter(at__lt=cutoff).annotate(day=TruncDate("at", tzinfo=dt_timezone.utc))
              .values("asset_id", "source", "currency", "day").annotate(n=Count("id"), last=Max("at")).filter(n__gt=1))
    removed = 0
    for g in list(groups):
        start = datetime.combine(g["day"], dt_time.min, tzinfo=dt_timezone.utc)
        same_day = PricePoint.objects.filter(asset_id=g["asset_id"], source=g["source"], currency=g["currency"],
                                             at__gte=start, at__lt=start + timedelta(days=1))
        keep = same_day.filter(at=g["last"]).order_by("-id").values_list("id", flat=True).first()
        removed += same_day.exclude(id=keep).delete()[0]
    return removed


def _fold(queryset, group_fields: tuple[str, ...], bucket, resolution: str) -> int:
    """Fold the rows of each group and ``bucket`` (hour or day) into its last row: flows, market moves
    and openings summed, the kept row marked ``resolution``."""
    groups: dict[tuple, list] = {}
    rows = queryset.order_by("at", "id").values_list("id", "at", "flow_value", "market_value", "opening_value", *group_fields)
    with exact():
        for pk, at, flow, market, opening, *key in rows.iterator(chunk_size=5000):
            group = (bucket(at), *key)
            g = groups.get(group)
            if g is None:
                groups[group] = [pk, flow or ZERO, market or ZERO, opening or ZERO, []]
                continue
            g[4].append(g[0])
            g[0] = pk
            g[1] += flow or ZERO
            g[2] += market or ZERO
            g[3] += opening or ZERO
    model = queryset.model
    keep = [model(pk=g[0], flow_value=g[1], market_value=g[2], opening_value=g[3], resolution=resolution) for g in groups.values()]
    model.objects.bulk_update(keep, ["flow_value", "market_value", "opening_value", "resolution"], batch_size=1000)
    drop = [pk for g in groups.values() for pk in g[4]]
    for i in range(0, len(drop), 5000):
        model.objects.filter(pk__in=drop[i:i + 5000]).delete()
    return len(drop)


# --------------------------------------------------------------------------- series rebuilt after a backfill


def rebuild_wallet_values(wallet_id: int, moments: Iterable[datetime]) -> int:
    """The wallet's totals at ``moments`` from its stored ValuePoints (every chain), after a backfill
    wrote or changed some of them: a moment with a total already (a live snapshot) keeps its FX rates
    and resolution; a new one gets the FX rates of that moment and the daily resolution. Moments where
    the wallet has no point get no total. Returns the number of totals written."""
    moments = sorted(set(moments))
    sums: dict[datetime, PairTotal] = {}
    with exact():
        for i in range(0, len(moments), 500):
            rows = ValuePoint.objects.filter(wallet_id=wallet_id, at__in=moments[i:i + 500]).values_list(
                "at", "value", "flow_value", "market_value", "opening_value", "price", "amount", "asset_id", "asset__kind")
            for at, value, flow, market, opening, price, amount, asset_id, kind in rows.iterator(chunk_size=5000):
                t = sums.setdefault(at, PairTotal())
                t.value, t.flow, t.market = t.value + (value or ZERO), t.flow + (flow or ZERO), t.market + (market or ZERO)
                t.opening += opening or ZERO
                if price is None and amount != 0 and kind != Asset.NFT_COLLECTION:
                    t.unpriced.add(asset_id)
    existing = {w.at: w for w in WalletValue.objects.filter(wallet_id=wallet_id, at__in=list(sums))}
    new, changed = [], []
    for at, t in sums.items():
        row = existing.get(at) or WalletValue(wallet_id=wallet_id, at=at, resolution=ValuePoint.DAILY,
                                              fx_rates=rates_to_json(latest_fx_rates(at)))
        row.value, row.flow_value, row.market_value, row.opening_value, row.unpriced = t.value, t.flow, t.market, t.opening, len(t.unpriced)
        (changed if row.pk else new).append(row)
    WalletValue.objects.bulk_update(changed, ["value", "flow_value", "market_value", "opening_value", "unpriced"], batch_size=1000)
    WalletValue.objects.bulk_create(new, batch_size=1000)
    return len(sums)


def rebuild_scope_values(owner_id: int, moments: Iterable[datetime]) -> int:
    """Every scope of the owner (all wallets, each portfolio) summed again at ``moments`` from its
    wallets' totals (after a backfill); rows there are updated in place, so the latest one keeps its
    allocation breakdown. Returns the number of scope points written."""
    moments = set(moments)
    if not moments:
        return 0
    wallet_ids = list(Wallet.objects.filter(owner_id=owner_id).values_list("pk", flat=True))
    scopes = owner_scopes(owner_id, wallet_ids, _portfolios_of(wallet_ids)[owner_id])
    written = 0
    fields = ["value", "flow_value", "market_value", "opening_value", "unpriced", "fx_rates", "resolution"]
    for key, members in scopes.items():
        history = [p for p in scope_history(members, covered_pairs(members), start=min(moments) - timedelta(seconds=1)) if p.at in moments]
        existing = {s.at: s for s in ScopeValue.objects.filter(owner_id=owner_id, scope_key=key, at__in=[p.at for p in history])}
        new, changed = [], []
        for p in history:
            row = existing.get(p.at) or ScopeValue(owner_id=owner_id, scope_key=key, at=p.at, resolution=p.resolution)
            row.value, row.flow_value, row.market_value, row.opening_value = p.value, p.flow, p.market, p.opening
            row.unpriced, row.fx_rates = p.unpriced, p.fx_rates
            (changed if row.pk else new).append(row)
        ScopeValue.objects.bulk_update(changed, fields, batch_size=1000)
        ScopeValue.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
        written += len(history)
    return written
