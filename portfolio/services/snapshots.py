"""Value snapshots: per wallet, chain and asset (ValuePoint), per wallet (WalletValue) and per set of an
owner's wallets (ScopeValue, materialised so a dashboard series is one short query), and downsampling
of points older than 7 days to one per day with flows and market moves summed so attribution stays exact.

Values are stored in USD with the FX rates of the moment (``fx_rates``), so history is never re-priced."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time as dt_time, timedelta, timezone as dt_timezone
from decimal import Decimal
from typing import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Max
from django.db.models.functions import TruncDate
from django.utils import timezone

from portfolio.models import (
    Asset, Holding, NftItem, Portfolio, PositionLeg, PricePoint, ScopeValue, ValuePoint, Wallet, WalletValue,
)
from portfolio.pricing.fx import rates_to_json
from portfolio.services.prices import latest_fx_rates, latest_prices
from portfolio.valuation import ZERO, exact, exact_text, split_change, to_units

HOURLY_KEEP = timedelta(days=7)
TOKEN, NFT, DEFI = "token", "nft", "defi"


def hour_bucket(at: datetime) -> datetime:
    """The start of ``at``'s hour: snapshots taken in the same hour update one point."""
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


def do_snapshot(wallet_ids: Iterable[int] | None = None, at: datetime | None = None) -> SnapshotReport:
    """Store value points at ``at``'s hour (default now) for the owners of ``wallet_ids`` (default: every
    wallet). All wallets of an affected owner are snapshotted together, so every series of that owner
    (all wallets, each portfolio) has its points at the same times and sums stay exact.

    Per (wallet, chain, asset): amount (holdings + position legs, borrowed negative, + NFT count),
    USD price (None = unpriced: kept with its amount, excluded from value), value, and the flow/market
    split against the wallet's previous point. Re-running in the same hour replaces that hour's rows.
    """
    if wallet_ids is None:
        # Owner by owner: bounded memory and short transactions however many users there are.
        total = SnapshotReport(at=hour_bucket(at or timezone.now()))
        owners = sorted(set(Wallet.objects.values_list("owner_id", flat=True)))
        for owner_id in owners:
            part = do_snapshot(list(Wallet.objects.filter(owner_id=owner_id).values_list("pk", flat=True)), at=at)
            total.wallets += part.wallets
            total.points += part.points
            total.unpriced += part.unpriced
            total.scopes += part.scopes
        return total
    as_of = at  # an explicit time (a past snapshot) reads prices and FX as they were then
    at = hour_bucket(at or timezone.now())
    owners = Wallet.objects.filter(pk__in=list(wallet_ids)).values("owner_id").distinct()
    wallets = Wallet.objects.filter(owner_id__in=owners)
    wallet_owner = dict(wallets.values_list("id", "owner_id"))
    report = SnapshotReport(at=at, wallets=len(wallet_owner))
    if not wallet_owner:
        return report
    ids = list(wallet_owner)

    amounts, parts = current_amounts(ids)
    previous = _previous_points(ids, at)
    asset_ids = {k[2] for k in amounts} | {k[2] for k in previous}
    decimals = dict(Asset.objects.filter(pk__in=asset_ids).values_list("id", "decimals"))
    fx = latest_fx_rates(as_of)
    prices = latest_prices(asset_ids, fx=fx, as_of=as_of)
    fx_json = rates_to_json(fx)

    points: list[ValuePoint] = []
    totals: dict[int, list] = {w: [ZERO, ZERO, ZERO, set()] for w in ids}  # value, flow, market, unpriced assets
    with exact():
        for key in set(amounts) | {k for k, (amount, _) in previous.items() if amount}:
            w, c, a = key
            raw = amounts.get(key, 0)
            prev_raw, p0 = previous.get(key, (0, None))
            if raw == 0 and prev_raw == 0:
                continue
            price = prices.get(a)
            p1 = price.usd if price else None
            a1, a0 = to_units(raw, decimals[a]), to_units(prev_raw, decimals[a])
            change = split_change(a0, p0, a1, p1)
            value = a1 * p1 if p1 is not None else None
            points.append(ValuePoint(wallet_id=w, chain_id=c, asset_id=a, at=at, resolution=ValuePoint.HOURLY, amount=raw,
                                     price=p1, value=value, flow_value=change.flow, market_value=change.market,
                                     currency="USD", price_source=price.source if price else ""))
            total = totals[w]
            total[0] += value or ZERO
            total[1] += change.flow
            total[2] += change.market
            if p1 is None and raw != 0:
                total[3].add(a)
        wallet_rows = [WalletValue(wallet_id=w, at=at, value=t[0], flow_value=t[1], market_value=t[2], unpriced=len(t[3]),
                                   fx_rates=fx_json) for w, t in totals.items()]
        # Allocation items of the current state, by kind (a holding and a loan of one asset stay apart).
        items = []
        for (w, c, a, kind), raw in parts.items():
            if raw == 0:
                continue
            price = prices.get(a)
            items.append((w, c, a, kind, to_units(raw, decimals[a]) * price.usd if price else None))

    with transaction.atomic():
        # Serialise snapshots of the same owners (a sync's snapshot meeting the hourly one): the
        # second waits, then replaces the hour's rows instead of failing on the unique constraints.
        list(get_user_model().objects.select_for_update().filter(pk__in=sorted(set(wallet_owner.values()))).values_list("pk"))
        ValuePoint.objects.filter(wallet_id__in=ids, at=at).delete()
        ValuePoint.objects.bulk_create(points, batch_size=2000)
        WalletValue.objects.filter(wallet_id__in=ids, at=at).delete()
        WalletValue.objects.bulk_create(wallet_rows, batch_size=2000)
        report.scopes = _materialise_scopes(wallet_owner, totals, items, at, fx_json)
    report.points = len(points)
    report.unpriced = len({a for t in totals.values() for a in t[3]})
    return report


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


def _previous_points(wallet_ids: list[int], at: datetime) -> dict[tuple[int, int, int], tuple[int, Decimal | None]]:
    """Each wallet's points at its latest snapshot before ``at``: key -> (raw amount, USD price)."""
    last = WalletValue.objects.filter(wallet_id__in=wallet_ids, at__lt=at).values("wallet_id").annotate(last=Max("at"))
    by_at: dict[datetime, list[int]] = defaultdict(list)
    for row in last:
        by_at[row["last"]].append(row["wallet_id"])
    out = {}
    for prev_at, wallets in by_at.items():
        for w, c, a, amount, price in ValuePoint.objects.filter(wallet_id__in=wallets, at=prev_at).values_list(
                "wallet_id", "chain_id", "asset_id", "amount", "price").iterator(chunk_size=5000):
            out[(w, c, a)] = (amount, price)
    return out


def _materialise_scopes(wallet_owner: dict[int, int], totals: dict[int, list], items: list, at: datetime, fx_json: dict) -> int:
    """Write the ScopeValue at ``at`` of every scope of the owners (sum of their wallets' totals) with
    the allocation breakdown; backfill a scope's history from WalletValue the first time it is seen."""
    by_owner: dict[int, list[int]] = defaultdict(list)
    for w, o in wallet_owner.items():
        by_owner[o].append(w)
    portfolios: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for pid, o, w in Portfolio.wallets.through.objects.filter(wallet_id__in=list(wallet_owner)).values_list(
            "portfolio_id", "portfolio__owner_id", "wallet_id"):
        portfolios[o][pid].append(w)
    items_by_wallet = defaultdict(list)
    for item in items:
        items_by_wallet[item[0]].append(item)
    rows, count = [], 0
    for owner_id, wallets in by_owner.items():
        scopes = owner_scopes(owner_id, wallets, portfolios[owner_id])
        known = set(ScopeValue.objects.filter(owner_id=owner_id, scope_key__in=list(scopes), at__lt=at)
                    .values_list("scope_key", flat=True).distinct())
        for key, members in scopes.items():
            if key not in known:
                _backfill_scope(owner_id, key, members, at)
            with exact():
                value = sum((totals[w][0] for w in members), ZERO)
                flow = sum((totals[w][1] for w in members), ZERO)
                market = sum((totals[w][2] for w in members), ZERO)
                breakdown = breakdown_of([i for w in members for i in items_by_wallet[w]])
            rows.append(ScopeValue(owner_id=owner_id, scope_key=key, at=at, value=value, flow_value=flow, market_value=market,
                                   unpriced=len(breakdown["unpriced"]), fx_rates=fx_json, breakdown=breakdown))
            count += 1
        ScopeValue.objects.filter(owner_id=owner_id, scope_key__in=list(scopes), at=at).delete()
        # Only the latest point carries an allocation: older breakdowns are dropped to keep rows small.
        ScopeValue.objects.filter(owner_id=owner_id, at__lt=at).exclude(breakdown={}).update(breakdown={})
    ScopeValue.objects.bulk_create(rows, batch_size=1000)
    return count


def do_materialise_scopes(owner_ids: Iterable[int] | None = None) -> int:
    """Build the series of wallet sets that have none yet (a portfolio just made or whose wallets
    changed) from their wallets' WalletValue rows, without taking a snapshot. Call it after editing a
    portfolio so its dashboard reads one short series at once. Returns the number of scopes built."""
    wallets = Wallet.objects.all() if owner_ids is None else Wallet.objects.filter(owner_id__in=list(owner_ids))
    by_owner: dict[int, list[int]] = defaultdict(list)
    for w, o in wallets.values_list("id", "owner_id"):
        by_owner[o].append(w)
    portfolios: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for pid, o, w in Portfolio.wallets.through.objects.filter(wallet_id__in=[w for ws in by_owner.values() for w in ws]).values_list(
            "portfolio_id", "portfolio__owner_id", "wallet_id"):
        portfolios[o][pid].append(w)
    built = 0
    far = timezone.now() + timedelta(days=3650)
    for owner_id, ids in by_owner.items():
        scopes = owner_scopes(owner_id, ids, portfolios[owner_id])
        known = set(ScopeValue.objects.filter(owner_id=owner_id, scope_key__in=list(scopes)).values_list("scope_key", flat=True).distinct())
        for key, members in scopes.items():
            if key not in known:
                with transaction.atomic():
                    _backfill_scope(owner_id, key, members, far)
                built += 1
    return built


def breakdown_of(items: list) -> dict:
    """Allocation of (wallet, chain, asset, kind, value|None) items as exact strings, for JSON."""
    sums = {"by_asset": defaultdict(lambda: ZERO), "by_chain": defaultdict(lambda: ZERO),
            "by_wallet": defaultdict(lambda: ZERO), "by_kind": defaultdict(lambda: ZERO)}
    unpriced = set()
    for w, c, a, kind, value in items:
        if value is None:
            unpriced.add(a)
            continue
        sums["by_asset"][a] += value
        sums["by_chain"][c] += value
        sums["by_wallet"][w] += value
        sums["by_kind"][kind] += value
    out: dict = {name: [[k, exact_text(v)] for k, v in table.items()] for name, table in sums.items()}
    out["unpriced"] = sorted(unpriced)
    return out


def _backfill_scope(owner_id: int, key: str, members: list[int], before: datetime) -> None:
    """A scope seen for the first time (new portfolio, changed membership): build its history from the
    wallets' WalletValue rows, so its series starts with the wallets' history, not today."""
    sums: dict[datetime, list] = {}
    with exact():
        for at, resolution, value, flow, market, unpriced, fx in WalletValue.objects.filter(
                wallet_id__in=members, at__lt=before).values_list(
                "at", "resolution", "value", "flow_value", "market_value", "unpriced", "fx_rates").iterator(chunk_size=5000):
            s = sums.setdefault(at, [resolution, ZERO, ZERO, ZERO, 0, fx])
            s[1] += value
            s[2] += flow
            s[3] += market
            s[4] = max(s[4], unpriced)
    ScopeValue.objects.bulk_create(
        [ScopeValue(owner_id=owner_id, scope_key=key, at=at, resolution=s[0], value=s[1], flow_value=s[2], market_value=s[3],
                    unpriced=s[4], fx_rates=s[5]) for at, s in sums.items()],
        batch_size=1000,
        # Two workers may build the same new scope at once (one materialise task per added wallet): the
        # rows are the same sums of the same WalletValues, so the second one's are skipped.
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
    """Keep hourly points for 7 days; older ones become one per day: the last point of each day is
    kept (its amount, price and value are that day's close) and the flows and market moves of the
    day's other points are added to it, so ``value change == flow + market`` still holds between the
    kept points. Works day by day (one transaction each), so it can be stopped and run again.
    Stored prices older than 7 days are thinned the same way (the last of each asset, source and day)."""
    now = now or timezone.now()
    cutoff = (now - HOURLY_KEEP).replace(hour=0, minute=0, second=0, microsecond=0)
    report = DownsampleReport()
    report.prices_removed = _thin_prices(cutoff)
    oldest = WalletValue.objects.filter(resolution=ValuePoint.HOURLY, at__lt=cutoff).order_by("at").values_list("at", flat=True).first()
    oldest_scope = ScopeValue.objects.filter(resolution=ValuePoint.HOURLY, at__lt=cutoff).order_by("at").values_list("at", flat=True).first()
    starts = [d for d in (oldest, oldest_scope) if d is not None]
    if not starts:
        return report
    day = min(starts).replace(hour=0, minute=0, second=0, microsecond=0)
    while day < cutoff:
        end = day + timedelta(days=1)
        with transaction.atomic():
            report.value_points_removed += _fold(ValuePoint.objects.filter(at__gte=day, at__lt=end, resolution=ValuePoint.HOURLY),
                                                 ("wallet_id", "chain_id", "asset_id"))
            report.wallet_values_removed += _fold(WalletValue.objects.filter(at__gte=day, at__lt=end, resolution=ValuePoint.HOURLY),
                                                  ("wallet_id",))
            report.scope_values_removed += _fold(ScopeValue.objects.filter(at__gte=day, at__lt=end, resolution=ValuePoint.HOURLY),
                                                 ("owner_id", "scope_key"))
        day = end
    return report


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


def _fold(queryset, group_fields: tuple[str, ...]) -> int:
    """Fold one day of hourly rows per group into the group's last row (flows and market summed)."""
    groups: dict[tuple, list] = {}
    for row in queryset.order_by("at", "id").values_list("id", "flow_value", "market_value", *group_fields).iterator(chunk_size=5000):
        pk, flow, market, key = row[0], row[1], row[2], row[3:]
        g = groups.get(key)
        if g is None:
            groups[key] = [pk, flow or ZERO, market or ZERO, []]
        else:
            g[3].append(g[0])
            g[0] = pk
            with exact():
                g[1] += flow or ZERO
                g[2] += market or ZERO
    model = queryset.model
    keep = [model(pk=g[0], flow_value=g[1], market_value=g[2], resolution=ValuePoint.DAILY) for g in groups.values()]
    model.objects.bulk_update(keep, ["flow_value", "market_value", "resolution"], batch_size=1000)
    drop = [pk for g in groups.values() for pk in g[3]]
    for i in range(0, len(drop), 5000):
        model.objects.filter(pk__in=drop[i:i + 5000]).delete()
    return len(drop)
