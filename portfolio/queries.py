"""Read models for the pages: scope, holdings, dashboard summary (net worth, performance, series,
allocation, freshness), NFTs and positions. Read-only, owner-scoped, a fixed number of queries each
(never one per wallet or holding), money as Decimal in the user's quote currency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable

from django.db.models import CharField, Count, Max, Min, OuterRef, Q, Subquery, Value
from django.db.models.fields.json import KT
from django.shortcuts import get_object_or_404
from django.utils import timezone

from portfolio import freshness
from portfolio.fields import ExactDecimalField
from portfolio.models import Asset, Chain, NftItem, Portfolio, Position, ScopeValue, ValuePoint, Wallet, WalletChain, WalletValue
from portfolio.pricing.fx import USD, rate_for
from portfolio.overlaps import covered_pairs
from portfolio.services.prices import counted_price, latest_fx_rates, latest_prices, usable_price
from portfolio.services.snapshots import breakdown_of, current_amounts, scope_key
from portfolio.valuation import ZERO, Period, Slice, allocation, exact, exact_text, range_figures, to_units

RANGES: dict[str, timedelta | None] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "1y": timedelta(days=365),
    "all": None,
}
KIND_LABELS = {"token": "Tokens", "nft": "NFTs", "defi": "DeFi and staking"}


# --------------------------------------------------------------------------- scope


class ScopeIds(list):
    """Wallet ids read as one user's scope (``scope_wallet_ids``): sorted, all the user's, and ``is_all``
    when they are all of the user's wallets, so readers need not check them again (one query less,
    and no read of every wallet id per reader)."""

    def __init__(self, ids: Iterable[int] = (), owner_id: int | None = None, is_all: bool = False,
                 portfolio_id: int | None = None) -> None:
        super().__init__(ids)  # (a copy made without an owner, as the ORM makes of a lookup value, vouches for nothing)
        self.owner_id, self.is_all, self.portfolio_id = owner_id, is_all, portfolio_id


@dataclass(frozen=True)
class AllWallets:
    """All of one owner's wallets with their ids not read (``scope_all``): ``count`` of them, the highest
    id ``top``. ``dashboard_summary`` takes it for "All wallets" (flat in the number of wallets); false
    when the owner has none."""

    owner_id: int
    count: int
    top: int | None

    def __bool__(self) -> bool:
        return self.count > 0


def scope_all(user) -> AllWallets:
    """The user's "All wallets" without its ids: one aggregate on the owner's index."""
    agg = Wallet.objects.filter(owner=user).aggregate(n=Count("id"), top=Max("id"))
    return AllWallets(user.pk, agg["n"], agg["top"])


def scope_wallet_ids(user, portfolio_id: int | None = None) -> ScopeIds:
    """Ids of the user's wallets: all of them, or those of one of the user's portfolios.

    Raises Http404 when ``portfolio_id`` is not one of the user's portfolios."""
    if portfolio_id is None:
        ids = list(Wallet.objects.filter(owner=user).order_by("pk").values_list("pk", flat=True))
        return ScopeIds(ids, user.pk, bool(ids))
    portfolio = get_object_or_404(Portfolio, pk=portfolio_id, owner=user)
    ids = list(portfolio.wallets.filter(owner=user).order_by("pk").values_list("pk", flat=True))
    return ScopeIds(ids, user.pk, False, portfolio.pk)


def _owned(user, wallet_ids: Iterable[int]) -> list[int]:
    return _owned_scope(user, wallet_ids)[0]


def _owned_scope(user, wallet_ids: Iterable[int]) -> tuple[list[int], bool]:
    """The requested ids that are the user's, and whether they are all of the user's wallets (then
    queries filter by owner instead of a long IN list). One query, none for the user's ``ScopeIds``.

    A portfolio's ``ScopeIds`` says ``is_all`` False even when it holds every wallet: its readers then
    filter by its ids, which is the same set."""
    if isinstance(wallet_ids, ScopeIds) and wallet_ids.owner_id == user.pk:
        return list(wallet_ids), wallet_ids.is_all
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

    ``net_worth`` is the latest snapshot's priced value (``as_of``); unpriced fungible assets are left
    out and listed in ``unpriced`` (Asset rows, ``unpriced_count``); NFTs without a price are counted in
    ``nfts_unvalued``. Over the range: ``change`` (growth: value change less the opening balances of
    accounts first seen inside it, so adding a wallet is never a gain) and ``pct`` (None when the range
    starts at 0), ``net_flows`` (deposits - withdrawals; transfers between the scope's own wallets
    cancel), ``profit`` (= change - net flows), ``twr`` (time-weighted return). When the range reaches
    back before the scope's first point, the figures start at that point and ``since`` says when.
    ``series`` is [(at, value)] oldest first. ``allocation`` maps "asset", "chain", "wallet", "kind" to
    lists of valuation.Slice, largest first. ``history``: "materialised" (the scope's own series),
    "pending" (its series is being built: current totals only) or "live" (no snapshot yet)."""

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
    since: datetime | None = None
    nfts_unvalued: int = 0


@dataclass(frozen=True)
class _Point:
    """One point of a scope's series in USD, with the FX rate of ``currency`` at that moment as text
    (None: USD, or no rate stored then)."""

    at: datetime
    value: Decimal
    flow: Decimal
    market: Decimal
    opening: Decimal
    fx_text: str | None


_POINT_FIELDS = ("at", "value", "flow_value", "market_value", "opening_value")
EMPTY_BREAKDOWN = {"by_asset": [], "by_chain": [], "by_wallet": [], "by_kind": [], "unpriced": [], "nfts_unvalued": 0}


def _points(qs, currency: str) -> list[_Point]:
    """A series' points with the stored FX rate of ``currency`` read by a JSON key lookup (the JSON
    column is not decoded per row)."""
    fx = Value(None, output_field=CharField()) if currency == USD else KT(f"fx_rates__{currency}")
    return [_Point(*row) for row in qs.values_list(*_POINT_FIELDS, fx)]


def _scope_points(user, key: str, start: datetime | None, currency: str) -> tuple[list[_Point], _Point | None, dict | None]:
    """The scope's materialised series: points after ``start``, the base point at or before it, and the
    latest point's breakdown. Three queries; ([], None, None) when the series is not built yet."""
    qs = ScopeValue.objects.filter(owner=user, scope_key=key)
    points = _points((qs.filter(at__gt=start) if start else qs).order_by("at"), currency)
    base = _points(qs.filter(at__lte=start).order_by("-at")[:1], currency) if start else []
    if not points and not base:
        return [], None, None
    latest = qs.order_by("-at").values_list("breakdown", flat=True).first()
    return points, (base[0] if base else None), latest or None


def _pending_breakdown(user, ids: list[int]) -> dict:
    """A scope whose series is not built yet (a portfolio just edited): its current value by wallet
    from each member's latest total, read with one index probe per wallet (a correlated subquery on
    the (wallet, at) unique index), never a scan of its history. Accounts reached through two of its
    wallets count once (the covered pairs' latest points are taken out)."""
    latest = WalletValue.objects.filter(wallet=OuterRef("pk")).order_by("-at")
    totals = {pk: (at, value) for pk, at, value in Wallet.objects.filter(owner=user, pk__in=ids).annotate(
        v_at=Subquery(latest.values("at")[:1]), v_value=Subquery(latest.values("value")[:1], output_field=ExactDecimalField()),
    ).filter(v_at__isnull=False).values_list("pk", "v_at", "v_value")}
    by_wallet: dict[int, Decimal] = {w: value for w, (_at, value) in totals.items()}
    with exact():
        for cover in covered_pairs(ids).values():
            if cover.wallet_id in totals:
                taken = ValuePoint.objects.filter(wallet_id=cover.wallet_id, chain_id=cover.chain_id,
                                                  at=totals[cover.wallet_id][0]).values_list("value", flat=True)
                by_wallet[cover.wallet_id] -= sum((v or ZERO for v in taken), ZERO)
    return {**EMPTY_BREAKDOWN, "by_wallet": [[w, exact_text(v)] for w, v in by_wallet.items() if v],
            "by_kind": [["token", exact_text(sum(by_wallet.values(), ZERO))]] if by_wallet else []}


def _live_breakdown(ids: list[int], fx: dict) -> dict:
    """The allocation of current balances at current prices (before the first snapshot)."""
    _, parts = current_amounts(ids)
    covered = covered_pairs(ids)
    asset_ids = {k[2] for k in parts}
    info = {a: (d, spam) for a, d, spam in Asset.objects.filter(pk__in=asset_ids).values_list("id", "decimals", "is_spam")}
    prices = latest_prices(asset_ids, fx=fx)
    items = []
    with exact():
        for (w, c, a, kind), raw in parts.items():
            if raw and not info[a][1] and (w, c) not in covered:
                p = counted_price(prices.get(a))
                items.append((w, c, a, kind, to_units(raw, info[a][0]) * p.usd if p else None, raw))
    return breakdown_of(items)


class _Rates:
    """FX rates of ``currency`` per point (text parsed once each), falling back to the current rate."""

    def __init__(self, current: Decimal) -> None:
        self.current, self._parsed = current, {}

    def __call__(self, text: str | None) -> Decimal:
        if text is None:
            return self.current
        if text not in self._parsed:
            self._parsed[text] = Decimal(text)
        return self._parsed[text]


def _current_rate(currency: str, points: list[_Point], base: _Point | None) -> tuple[str, Decimal, bool]:
    """(currency, rate now, fx_missing): the latest point's stored rate, else the latest FxRate."""
    if currency == USD:
        return currency, Decimal(1), False
    latest = points[-1] if points else base
    if latest is not None and latest.fx_text is not None:
        return currency, Decimal(latest.fx_text), False
    return _quote(currency, latest_fx_rates())


def _performance(points: list[_Point], base: _Point | None, rate: _Rates):
    """(series, figures, since) in the quote currency. Each point is converted at its own FX rate; the
    FX move between points goes to "market", so profit == change - flows holds in the quote currency
    too. Without a base before the range, the figures start at its first point (``since``)."""
    since = None
    if base is None and points:
        base, points, since = points[0], points[1:], points[0].at
    if base is None:
        return [], None, None
    start_value = base.value * rate(base.fx_text)
    series, periods, previous = [(base.at, start_value)], [], start_value
    for p in points:
        r = rate(p.fx_text)
        value, flow, opening = p.value * r, p.flow * r, p.opening * r
        periods.append(Period(value, flow, value - previous - flow - opening, opening))
        series.append((p.at, value))
        previous = value
    return series, range_figures(start_value, periods), since


def _largest(pairs: list, top: int | None) -> list:
    """The keys of the ``top`` largest [key, value text] pairs, ties at the cut included (all of them
    when ``top`` is None)."""
    if top is None or len(pairs) <= top:
        return [k for k, _ in pairs]
    values = sorted(((Decimal(v), k) for k, v in pairs), key=lambda vk: vk[0], reverse=True)
    cut = values[top - 1][0]
    return [k for v, k in values if v >= cut]


def _labels(user, breakdown: dict, chains: dict, top: int | None = None) -> tuple[dict, dict, dict]:
    """Asset, chain and wallet labels for the breakdown's keys (of its ``top`` largest slices only, when
    a page shows no more), from a few columns (model instances for hundreds of slices would cost more
    than the rest); unpriced assets as Asset rows."""
    label_fields = ("pk", "symbol", "name", "chain_id", "address", "kind", "decimals", "logo_url", "is_spam")
    wanted = {int(k) for k in _largest(breakdown["by_asset"], top)} | set(breakdown["unpriced"])
    rows = {row[0]: row for row in Asset.objects.filter(pk__in=sorted(wanted)).values_list(*label_fields)}
    # "BTC · Bitcoin (regtest)": a chain's own name may hold brackets, so the chain is not put in brackets.
    assets = {pk: f"{row[1]} · {chains[row[3]].name}" if row[3] in chains else row[1] for pk, row in rows.items()}
    unpriced = {}
    for pk in breakdown["unpriced"]:
        if pk in rows:
            a = Asset(**dict(zip(("id",) + label_fields[1:], rows[pk])))
            a.chain = chains[a.chain_id]
            unpriced[pk] = a
    wallet_ids = sorted({int(k) for k in _largest(breakdown["by_wallet"], top)})
    wallets = {pk: label or (a if len(a) <= 16 else f"{a[:8]}…{a[-6:]}") for pk, label, a in
               Wallet.objects.filter(owner=user, pk__in=wallet_ids).values_list("pk", "label", "address")} if wallet_ids else {}
    return assets, wallets, unpriced


def _allocation(breakdown: dict, rate: Decimal, assets: dict, wallets: dict, chains: dict) -> dict[str, list[Slice]]:
    def slices(name: str, label):
        return allocation((k, label(k), Decimal(v) * rate) for k, v in breakdown[name])

    return {
        "asset": slices("by_asset", lambda k: assets.get(int(k), str(k))),
        "chain": slices("by_chain", lambda k: chains[int(k)].name if int(k) in chains else str(k)),
        "wallet": slices("by_wallet", lambda k: str(wallets.get(int(k), k))),
        "kind": slices("by_kind", lambda k: KIND_LABELS.get(k, k)),
    }


def dashboard_summary(user, wallet_ids: Iterable[int], currency: str, range_key: str, *, now: datetime | None = None,
                      labelled: int | None = None) -> Summary:
    """Net worth, performance over ``range_key`` (24h, 7d, 30d, 90d, 1y, all), series, allocation and
    freshness of the user's ``wallet_ids``. A fixed number of queries whatever the number of wallets,
    holdings or points: the series and the allocation come from the scope's materialised ScopeValue
    rows (written by each snapshot); a scope whose series is still being built shows its current
    totals per wallet. ``labelled``: only the largest slices of each allocation get their asset or
    wallet name (a page showing a few), the others keep their id."""
    if isinstance(wallet_ids, AllWallets) and wallet_ids.owner_id == user.pk:  # no read of every wallet id
        ids, is_all = None, bool(wallet_ids)
        key = freshness.all_wallets_key(user.pk, wallet_ids.count, wallet_ids.top) if wallet_ids else None
    else:
        ids, is_all = _owned_scope(user, wallet_ids)
        key = scope_key(ids) if ids else None
    now = now or timezone.now()
    delta = RANGES.get(range_key, RANGES["30d"])
    points, base, breakdown = _scope_points(user, key, now - delta if delta else None, currency) if key else ([], None, None)
    history = "materialised" if points or base else "live"
    currency, rate_now, fx_missing = _current_rate(currency, points, base)
    chains = {c.pk: c for c in Chain.objects.all()}
    with exact():
        series, figures, since = _performance(points, base, _Rates(rate_now))
        if breakdown is None and key:  # no snapshot of this scope carries an allocation yet
            ids = ids if ids is not None else scope_wallet_ids(user)
            if history == "materialised" or WalletValue.objects.filter(wallet_id__in=ids).exists():
                breakdown = _pending_breakdown(user, ids)
                history = "materialised" if series else "pending"
            else:
                breakdown = _live_breakdown(ids, latest_fx_rates())
        breakdown = {**EMPTY_BREAKDOWN, **(breakdown or {})}
        assets, wallets, unpriced_assets = _labels(user, breakdown, chains, labelled)
        alloc = _allocation(breakdown, rate_now, assets, wallets, chains)
        as_of, net_worth = series[-1] if series else (None, sum((s.value for s in alloc["kind"]), ZERO))
    unpriced = [unpriced_assets[a] for a in breakdown["unpriced"] if a in unpriced_assets]
    return Summary(
        currency=currency, range_key=range_key if range_key in RANGES else "30d", net_worth=net_worth, as_of=as_of,
        unpriced_count=len(unpriced), unpriced=unpriced,
        change=figures.change if figures else None, pct=figures.pct if figures else None,
        twr=figures.twr if figures else None, profit=figures.profit if figures else None,
        net_flows=figures.net_flows if figures else None, market=figures.market if figures else None,
        series=series, allocation=alloc, freshness=chain_freshness(user, wallet_ids if ids is None or getattr(wallet_ids, "portfolio_id", None) else ids, is_all, chains), fx_rate=rate_now, fx_missing=fx_missing,
        history=history, since=since, nfts_unvalued=int(breakdown.get("nfts_unvalued") or 0),
    )


def _freshness_counts(qs, *group) -> list[dict]:
    """Per ``group`` (chain, or portfolio and chain) of a WalletChain queryset: the freshness figures."""
    return list(qs.values(*group).annotate(
        wallets=Count("id"), oldest_ok=Min("last_ok_at"), newest_ok=Max("last_ok_at"), height=Max("height"),
        failed=Count("id", filter=Q(status=WalletChain.FAILED)), never=Count("id", filter=Q(last_ok_at__isnull=True)),
        active=Count("id", filter=Q(status__in=[WalletChain.QUEUED, WalletChain.RUNNING]))).order_by())


def portfolio_freshness(user, portfolio_ids: list[int]) -> dict[int, list[dict]]:
    """Per portfolio of the user's ``portfolio_ids``: its per-chain freshness rows (``freshness.FIELDS``),
    from their cache rows (portfolio/freshness.py); the stale ones counted together. Two queries when
    none changed, whatever the number of portfolios or wallets."""

    def count(ids: list[int]) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {pid: [] for pid in ids}
        for row in _freshness_counts(WalletChain.objects.filter(wallet__owner=user, wallet__portfolios__in=ids),
                                     "wallet__portfolios", "chain_id"):
            out[row.pop("wallet__portfolios")].append(row)
        return out

    return freshness.portfolio_rows(user.pk, portfolio_ids, count)


def chain_freshness(user, wallet_ids: list[int], is_all: bool = False, chains: dict | None = None) -> list[ChainFreshness]:
    """Per chain: how many of the user's ``wallet_ids`` are there and how old their data is. Two queries
    (all the user's wallets, or a portfolio's ``ScopeIds``: one cached row of ``portfolio.freshness``
    while no WalletChain changed)."""
    if not wallet_ids:
        return []
    qs = WalletChain.objects.filter(wallet__owner=user)
    portfolio_id = getattr(wallet_ids, "portfolio_id", None) if getattr(wallet_ids, "owner_id", None) == user.pk else None
    if is_all:  # "All wallets": one row, not a count per wallet
        rows = freshness.cached_rows(user.pk, lambda: _freshness_counts(qs, "chain_id"))
    elif portfolio_id is not None:
        rows = portfolio_freshness(user, [portfolio_id])[portfolio_id]
    else:
        rows = _freshness_counts(qs.filter(wallet_id__in=wallet_ids), "chain_id")
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
                                   unpriced, currency, p.health_factor, p.read_height, p.read_at))
    return out
