"""Read models for the pages: scope, holdings, dashboard summary (net worth, performance, series,
allocation, freshness), NFTs and positions. Read-only, owner-scoped, a fixed number of queries each
(never one per wallet or holding), money as Decimal in the user's quote currency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable

from django.db import connection
from django.db.models import CharField, Count, Max, Min, Q, Sum, Value
from django.db.models.fields.json import KT
from django.shortcuts import get_object_or_404
from django.utils import timezone

from portfolio.models import Asset, Chain, NftItem, Portfolio, Position, ScopeValue, Wallet, WalletChain, WalletValue
from portfolio.pricing.fx import USD, rate_for
from portfolio.services.prices import latest_fx_rates, latest_prices, usable_price
from portfolio.services.snapshots import breakdown_of, current_amounts, scope_key
from portfolio.valuation import ZERO, Period, Slice, allocation, exact, range_figures, to_units

RANGES: dict[str, timedelta | None] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "1y": timedelta(days=365),
    "all": None,
}
KIND_LABELS = {"token": "Tokens", "nft": "NFTs", "defi": "DeFi positions"}


# --------------------------------------------------------------------------- scope


def scope_wallet_ids(user, portfolio_id: int | None = None) -> list[int]:
    """Ids of the user's wallets: all of them, or those of one of the user's portfolios.

    Raises Http404 when ``portfolio_id`` is not one of the user's portfolios."""
    if portfolio_id is None:
        return list(Wallet.objects.filter(owner=user).order_by("pk").values_list("pk", flat=True))
    portfolio = get_object_or_404(Portfolio, pk=portfolio_id, owner=user)
    return list(portfolio.wallets.filter(owner=user).order_by("pk").values_list("pk", flat=True))


def _owned(user, wallet_ids: Iterable[int]) -> list[int]:
    return _owned_scope(user, wallet_ids)[0]


def _owned_scope(user, wallet_ids: Iterable[int]) -> tuple[list[int], bool]:
    """The requested ids that are the user's, and whether they are all of the user's wallets (then
    queries filter by owner instead of a long IN list). One query."""
    mine = set(Wallet.objects.filter(owner=user).values_list("pk", flat=True))
    ids = sorted(mine.intersection(wallet_ids))
    return ids, len(ids) == len(mine) and bool(ids)


def _quote(currency: str, fx: dict[str, Decimal]) -> tuple[str, Decimal, bool]:
    """(currency used, units per USD, fx_missing): falls back to USD when no rate is known."""
    rate = rate_for(currency, fx)
    if rate is None:
        return USD, Decimal(1), True
    return currency, rate, False


# --------------------------------------------------------------------------- holdings
# Per-asset holdings and their per-wallet parts: portfolio/holdings.py.


# --------------------------------------------------------------------------- dashboard


@dataclass
class ChainFreshness:
    """How fresh the scope's data is on one chain: wallets there, oldest/newest good read, how many
    failed or were never read, and the highest block height seen."""

    chain: Chain
    wallets: int
    oldest_ok: datetime | None
    newest_ok: datetime | None
    failed: int
    never: int
    height: int | None
    active: int = 0  # queued or running now


@dataclass
class Summary:
    """The dashboard of a scope over a range, money in ``currency`` (USD when the chosen currency has
    no FX rate yet: ``fx_missing``).

    ``net_worth`` is the latest snapshot's priced value (``as_of``); unpriced assets are left out and
    listed in ``unpriced`` (Asset rows, ``unpriced_count``). Over the range: ``change`` and ``pct``
    (None when the range starts at 0), ``net_flows`` (deposits - withdrawals, transfers between the
    scope's own wallets cancel), ``profit`` (= change - net flows), ``twr`` (time-weighted return).
    ``series`` is [(at, value)] oldest first (hourly for 7 days, daily before). ``allocation`` maps
    "asset", "chain", "wallet", "kind" to lists of valuation.Slice (key, label, value, share), largest
    first. ``history`` says where the series came from: "materialised", "wallet_totals" or "live"
    (no snapshot yet: net worth and allocation from current balances, no series)."""

    currency: str
    range_key: str
    net_worth: Decimal
    as_of: datetime | None
    unpriced_count: int
    unpriced: list[Asset]
    change: Decimal | None
    pct: Decimal | None
    twr: Decimal | None
    profit: Decimal | None
    net_flows: Decimal | None
    market: Decimal | None
    series: list[tuple[datetime, Decimal]]
    allocation: dict[str, list[Slice]]
    freshness: list[ChainFreshness]
    fx_rate: Decimal
    fx_missing: bool
    history: str


_POINT_FIELDS = ("at", "value", "flow_value", "market_value", "unpriced")


def _point_values(qs, currency: str):
    """values_list of a series' fields plus the stored FX rate of ``currency`` as text (read with a JSON
    key lookup, so the JSON column is not decoded per row); None for USD."""
    if currency == USD:
        return qs.values_list(*_POINT_FIELDS, Value(None, output_field=CharField()))
    return qs.values_list(*_POINT_FIELDS, KT(f"fx_rates__{currency}"))


def _scope_points(user, ids: list[int], is_all: bool, start: datetime | None, currency: str) -> tuple[list[tuple], tuple | None, dict | None, str]:
    """Points of the scope's series after ``start``, the base point at or before it, the latest point's
    breakdown, and where they came from. Three queries when the series is materialised; each point is
    (at, value, flow, market, unpriced, rate text of ``currency`` or None)."""
    key = scope_key(ids)
    qs = ScopeValue.objects.filter(owner=user, scope_key=key)
    rows = list(_point_values((qs.filter(at__gt=start) if start else qs).order_by("at"), currency))
    base = _point_values(qs.filter(at__lte=start).order_by("-at"), currency).first() if start else None
    if rows or base:
        latest = qs.order_by("-at").values_list("breakdown", flat=True).first()
        return rows, base, latest or None, "materialised"
    # No materialised series for this wallet set (yet): sum the wallets' totals in Python.
    totals = WalletValue.objects.filter(wallet__owner=user) if is_all else WalletValue.objects.filter(wallet_id__in=ids)
    sums: dict[datetime, list] = {}
    base_at = None
    if start is not None:
        base_at = totals.filter(at__lte=start).aggregate(last=Max("at"))["last"]
    window = totals.filter(at__gte=base_at) if base_at else (totals.filter(at__gt=start) if start else totals)
    if connection.vendor == "postgresql":
        # NUMERIC columns: SQL sums are exact here (on SQLite the columns are TEXT: sum in Python).
        fx = Value(None, output_field=CharField()) if currency == USD else Max(KT(f"fx_rates__{currency}"))
        for row in window.values("at").annotate(v=Sum("value"), f=Sum("flow_value"), m=Sum("market_value"),
                                                u=Max("unpriced"), fx=fx).values_list("at", "v", "f", "m", "u", "fx"):
            sums[row[0]] = list(row)
    else:
        with exact():
            for at, value, flow, market, unpriced, fx in _point_values(window, currency).iterator(chunk_size=5000):
                s = sums.setdefault(at, [at, ZERO, ZERO, ZERO, 0, fx])
                s[1] += value
                s[2] += flow
                s[3] += market
                s[4] = max(s[4], unpriced)
    ordered = [tuple(sums[at]) for at in sorted(sums)]
    base = ordered.pop(0) if base_at and ordered and ordered[0][0] == base_at else None
    return ordered, base, None, "wallet_totals" if ordered or base else "live"


def _live_breakdown(ids: list[int], fx: dict) -> dict:
    """The allocation of current balances at current prices (when no snapshot has one)."""
    _, parts = current_amounts(ids)
    asset_ids = {k[2] for k in parts}
    decimals = dict(Asset.objects.filter(pk__in=asset_ids).values_list("id", "decimals"))
    prices = latest_prices(asset_ids, fx=fx)
    items = []
    with exact():
        for (w, c, a, kind), raw in parts.items():
            if raw:
                p = prices.get(a)
                items.append((w, c, a, kind, to_units(raw, decimals[a]) * p.usd if p else None))
    return breakdown_of(items)


def dashboard_summary(user, wallet_ids: Iterable[int], currency: str, range_key: str, *, now: datetime | None = None) -> Summary:
    """Net worth, performance over ``range_key`` (24h, 7d, 30d, 90d, 1y, all), series, allocation and
    freshness of the user's ``wallet_ids``. A fixed number of queries (about eight) whatever the
    number of wallets, holdings or points: the series and the allocation are read from the scope's
    materialised ScopeValue rows (written by each snapshot)."""
    ids, is_all = _owned_scope(user, wallet_ids)
    now = now or timezone.now()
    delta = RANGES.get(range_key, RANGES["30d"])
    start = now - delta if delta else None
    points, base, breakdown, history = _scope_points(user, ids, is_all, start, currency) if ids else ([], None, None, "live")

    fx_now: dict[str, Decimal] | None = None
    latest_rate = (points[-1] if points else base or (None,) * 6)[5]
    if currency == USD:
        rate_now, fx_missing = Decimal(1), False
    elif latest_rate is not None:
        rate_now, fx_missing = Decimal(latest_rate), False
    else:
        fx_now = latest_fx_rates()
        currency, rate_now, fx_missing = _quote(currency, fx_now)
    parsed: dict[str, Decimal] = {}

    def rate_of(text) -> Decimal:
        if text is None:
            return rate_now
        if text not in parsed:
            parsed[text] = Decimal(text)
        return parsed[text]

    with exact():
        # Convert each point at its own FX rate; the FX move between points goes to "market" so that
        # profit == change - flows holds in the quote currency too.
        series: list[tuple[datetime, Decimal]] = []
        periods: list[Period] = []
        start_value = base[1] * rate_of(base[5]) if base else ZERO
        previous = start_value
        for at, value, flow, market, _unpriced, fx_text in points:
            r = rate_of(fx_text)
            value_q, flow_q = value * r, flow * r
            periods.append(Period(value_q, flow_q, value_q - previous - flow_q))
            series.append((at, value_q))
            previous = value_q
        if base:
            series.insert(0, (base[0], start_value))
        figures = range_figures(start_value, periods) if (points or base) else None

        if breakdown is None and ids:
            fx_now = fx_now if fx_now is not None else latest_fx_rates()
            breakdown = _live_breakdown(ids, fx_now)
            history = history if series else "live"
        breakdown = breakdown or {"by_asset": [], "by_chain": [], "by_wallet": [], "by_kind": [], "unpriced": []}
        alloc_rate = rate_now

        # Labels from a few columns (model instances for hundreds of slices would cost more than the rest).
        chains = {c.pk: c for c in Chain.objects.all()}
        chain_names = {pk: c.name for pk, c in chains.items()}
        label_fields = ("pk", "symbol", "name", "chain_id", "address", "kind", "decimals", "logo_url", "is_spam")
        wanted = {int(k) for k, _ in breakdown["by_asset"]} | set(breakdown["unpriced"])
        asset_rows = {row[0]: row for row in Asset.objects.filter(pk__in=sorted(wanted)).values_list(*label_fields)}
        assets = {pk: (row[1], row[3]) for pk, row in asset_rows.items()}
        unpriced_assets = {}
        for pk in breakdown["unpriced"]:
            if pk in asset_rows:
                a = Asset(**dict(zip(("id",) + label_fields[1:], asset_rows[pk])))
                a.chain = chains[a.chain_id]
                unpriced_assets[pk] = a
        wallets = {pk: label or (a if len(a) <= 16 else f"{a[:8]}…{a[-6:]}") for pk, label, a in
                   Wallet.objects.filter(owner=user).values_list("pk", "label", "address")}

        def asset_label(pk):
            if pk not in assets:
                return str(pk)
            symbol, chain_id = assets[pk]
            return f"{symbol} ({chain_names[chain_id]})" if chain_id in chain_names else symbol

        alloc = {
            "asset": allocation((int(k), asset_label(int(k)), Decimal(v) * alloc_rate) for k, v in breakdown["by_asset"]),
            "chain": allocation((int(k), chain_names.get(int(k), str(k)), Decimal(v) * alloc_rate) for k, v in breakdown["by_chain"]),
            "wallet": allocation((int(k), str(wallets.get(int(k), k)), Decimal(v) * alloc_rate) for k, v in breakdown["by_wallet"]),
            "kind": allocation((k, KIND_LABELS.get(k, k), Decimal(v) * alloc_rate) for k, v in breakdown["by_kind"]),
        }
        if series:
            as_of, net_worth = series[-1]
        else:
            net_worth, as_of = sum((s.value for s in alloc["kind"]), ZERO), None

    unpriced = [unpriced_assets[a] for a in breakdown["unpriced"] if a in unpriced_assets]
    return Summary(
        currency=currency, range_key=range_key if range_key in RANGES else "30d", net_worth=net_worth, as_of=as_of,
        unpriced_count=len(unpriced), unpriced=unpriced,
        change=figures.change if figures else None, pct=figures.pct if figures else None,
        twr=figures.twr if figures else None, profit=figures.profit if figures else None,
        net_flows=figures.net_flows if figures else None, market=figures.market if figures else None,
        series=series, allocation=alloc, freshness=chain_freshness(user, ids, is_all, chains), fx_rate=rate_now, fx_missing=fx_missing,
        history=history,
    )


def chain_freshness(user, wallet_ids: list[int], is_all: bool = False, chains: dict | None = None) -> list[ChainFreshness]:
    """Per chain: how many of the user's ``wallet_ids`` are there and how old their data is. Two queries."""
    if not wallet_ids:
        return []
    qs = WalletChain.objects.filter(wallet__owner=user)
    rows = list((qs if is_all else qs.filter(wallet_id__in=wallet_ids)).values("chain_id").annotate(
        wallets=Count("id"), oldest_ok=Min("last_ok_at"), newest_ok=Max("last_ok_at"), height=Max("height"),
        failed=Count("id", filter=Q(status=WalletChain.FAILED)), never=Count("id", filter=Q(last_ok_at__isnull=True)),
        active=Count("id", filter=Q(status__in=[WalletChain.QUEUED, WalletChain.RUNNING]))))
    chains = chains or Chain.objects.in_bulk([r["chain_id"] for r in rows])
    out = [ChainFreshness(chains[r["chain_id"]], r["wallets"], r["oldest_ok"], r["newest_ok"], r["failed"], r["never"], r["height"],
                          r["active"]) for r in rows]
    out.sort(key=lambda f: (f.chain.sort_order, f.chain.name))
    return out


# --------------------------------------------------------------------------- NFTs and positions


def nft_items(user, wallet_ids: Iterable[int]):
    """The user's NFTs in ``wallet_ids`` (a QuerySet of NftItem with ``collection``, ``collection.chain``,
    ``wallet_chain.wallet`` and ``wallet_chain.chain`` loaded), by collection name then token id. NFTs
    have no floor price here: they are counted as unpriced in the dashboard unless an admin prices the
    collection."""
    return (
        NftItem.objects.filter(wallet_chain__wallet__owner=user, wallet_chain__wallet_id__in=list(wallet_ids))
        .select_related("collection__chain", "wallet_chain__wallet", "wallet_chain__chain")
        .order_by("collection__name", "collection_id", "token_id")
    )


@dataclass
class Leg:
    """One asset of a position: whole-unit ``amount`` (positive; ``role`` says supplied/borrowed/...),
    ``price`` and ``value`` in the quote currency (None when unpriced; ``value`` is negative when borrowed)."""

    asset: Asset
    amount: Decimal
    role: str
    price: Decimal | None = None
    value: Decimal | None = None


@dataclass
class PositionRow:
    """A DeFi or staking position. ``supplied`` holds supplied/staked legs, ``borrowed`` the debt,
    ``rewards`` reward/pending legs. ``value`` is the net of the priced legs (debt negative), None when
    no leg is priced; ``unpriced_legs`` counts legs left out of it."""

    id: int
    protocol: str
    kind: str
    label: str
    ref: str
    wallet: Wallet
    chain: Chain
    supplied: list[Leg]
    borrowed: list[Leg]
    rewards: list[Leg]
    value: Decimal | None
    unpriced_legs: int
    currency: str
    health_factor: Decimal | None
    height: int | None
    fetched_at: datetime | None


def positions(user, wallet_ids: Iterable[int], currency: str) -> list[PositionRow]:
    """The user's DeFi/staking positions in ``wallet_ids`` with legs valued at current prices. Five
    queries (positions, legs, prices, FX) whatever their number."""
    qs = list(
        Position.objects.filter(wallet_chain__wallet__owner=user, wallet_chain__wallet_id__in=list(wallet_ids))
        .select_related("wallet_chain__wallet", "wallet_chain__chain")
        .prefetch_related("legs__asset")
        .order_by("protocol", "wallet_chain__wallet_id", "id")
    )
    fx = latest_fx_rates()
    currency, rate, _ = _quote(currency, fx)
    prices = latest_prices({leg.asset_id for p in qs for leg in p.legs.all()}, fx=fx)
    out = []
    with exact():
        for p in qs:
            groups: dict[str, list[Leg]] = {"supplied": [], "borrowed": [], "rewards": []}
            net, priced, unpriced = ZERO, 0, 0
            for leg in p.legs.all():
                units = to_units(leg.amount, leg.asset.decimals)
                usable = usable_price(leg.asset.kind, leg.asset.is_spam, prices.get(leg.asset_id))
                price = usable.usd * rate if usable else None
                value = units * price * leg.sign if price is not None else None
                key = "borrowed" if leg.role == "borrowed" else ("rewards" if leg.role in ("reward", "pending") else "supplied")
                groups[key].append(Leg(leg.asset, units, leg.role, price, value))
                if value is None:
                    unpriced += 1
                else:
                    net += value
                    priced += 1
            out.append(PositionRow(p.pk, p.protocol, p.kind, p.label, p.ref, p.wallet_chain.wallet, p.wallet_chain.chain,
                                   groups["supplied"], groups["borrowed"], groups["rewards"], net if priced else None,
                                   unpriced, currency, p.health_factor, p.height, p.fetched_at))
    return out
