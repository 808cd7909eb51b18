"""Price services: store oracle quotes from a sync, refresh prices and FX from the HTTP source, set
manual prices, and read the latest usable price of many assets in one query."""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable, Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import Max, OuterRef, Q, Subquery
from django.utils import timezone

from portfolio.models import Asset, Chain, FxRate, Holding, PositionLeg, PricePoint
from portfolio.pricing.base import PriceRateLimited, PricingError
from portfolio.pricing.coingecko import CoinGeckoClient, CoinGeckoSource
from portfolio.pricing.fx import USD
from portfolio.pricing.registry import SOURCES, get_source, source_order
from portfolio.valuation import exact

log = logging.getLogger(__name__)


def stale_after() -> timedelta:
    """A price older than this is "stale": the next source in the asset's order is preferred."""
    return timedelta(seconds=settings.PRICE_STALE_AFTER_SECONDS)


def fresh_for() -> timedelta:
    """do_refresh_prices skips an asset whose chosen price is younger than this."""
    return timedelta(seconds=settings.PRICE_FRESH_SECONDS)


# --------------------------------------------------------------------------- writing


def store_quotes(chain: Chain | int, quotes: Iterable, *, at: datetime | None = None) -> int:
    """Store oracle prices read during a sync (``chains.base.PriceQuote``) as PricePoints with source
    ``oracle:<adapter source>`` (e.g. ``oracle:chainlink:0xFeed``). ``chain`` is a Chain or its id.
    Quotes for assets not in the database (by chain and address, case-insensitive; native = empty
    address) are skipped. Returns the number stored."""
    quotes = list(quotes)
    if not quotes:
        return 0
    at = at or timezone.now()
    addresses = {q.asset.address or "" for q in quotes}
    chain_id = getattr(chain, "pk", chain)
    wanted = {a.lower() for a in addresses}
    assets = {address.lower(): pk for pk, address in Asset.objects.filter(chain_id=chain_id).exclude(kind=Asset.NFT_COLLECTION)
              .values_list("pk", "address") if address.lower() in wanted}
    rows = []
    for q in quotes:
        asset_id = assets.get((q.asset.address or "").lower())
        if asset_id is None or q.price is None or q.price < 0:
            continue
        source = q.source if q.source.startswith("oracle:") else f"oracle:{q.source}"
        rows.append(PricePoint(asset_id=asset_id, at=at, currency=(q.currency or USD).upper(), price=q.price, source=source[:120]))
    PricePoint.objects.bulk_create(rows)
    return len(rows)


def set_manual_price(asset: Asset, price: Decimal, *, currency: str = USD, at: datetime | None = None) -> PricePoint:
    """An admin's price for ``asset`` (per whole unit, in ``currency``). Raises ValueError for a negative price."""
    if price < 0:
        raise ValueError("a price cannot be negative")
    return PricePoint.objects.create(asset=asset, price=price, currency=currency.upper(), source="manual", at=at or timezone.now())


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Price:
    """The price chosen for an asset: per whole unit, in USD (converted at the current FX rate when it
    was entered in another currency), the stored source (``coingecko``, ``oracle:chainlink:0x..``,
    ``manual``), its time and whether it is older than ``stale_after()``."""

    usd: Decimal
    source: str
    source_name: str
    at: datetime
    stale: bool


def counted_price(price: Price | None) -> Price | None:
    """The one definition of "priced", used by every total (snapshots, dashboard, holdings, API, CSV):
    a price counts when there is one and it is fresh. A stale price (older than
    ``PRICE_STALE_AFTER_SECONDS``; manual prices never are) is shown with its age, but its asset is
    unpriced: left out of values and returns, and counted in "unpriced"."""
    return price if price is not None and not price.stale else None


# What a holding counts as. The one definition every page, the API, the CSV and snapshots use:
PRICED = "priced"  # a fungible/native asset with a fresh-enough price: in every total
UNPRICED = "unpriced"  # a fungible/native asset without one (no price, or only a stale one): left out, counted
NFT_NOT_VALUED = "nft"  # NFTs: never valued here, counted apart as "NFTs not valued"
SPAM = "spam"  # spam: in no total and in neither count (listed only when the user shows spam)


def price_status(kind: str, is_spam: bool, price: "Price | None") -> str:
    """PRICED, UNPRICED, NFT_NOT_VALUED or SPAM for an asset of ``kind`` (Asset.kind) with the price
    ``latest_prices`` chose for it (None when no source has one). A stale price counts as unpriced:
    showing it is fine, adding it to a total is not."""
    if is_spam:
        return SPAM
    if kind == Asset.NFT_COLLECTION:
        return NFT_NOT_VALUED
    if counted_price(price) is None:
        return UNPRICED
    return PRICED


def usable_price(kind: str, is_spam: bool, price: "Price | None") -> "Price | None":
    """The price a total may use (``price_status`` is PRICED), else None. Spam is never valued."""
    return price if price_status(kind, is_spam, price) == PRICED else None


def latest_prices(asset_ids: Iterable[int], *, now: datetime | None = None, fx: dict[str, Decimal] | None = None,
                  orders: dict[int, Sequence[str]] | None = None, as_of: datetime | None = None) -> dict[int, Price]:
    """The usable price of each asset, by its source order: the first source with a fresh price, else
    the first with any price (flagged stale). Assets with no price at all are absent (= unpriced).

    Two queries however many assets and however long their history: the id of each source's latest
    price per asset (a correlated subquery per source, one probe of the ``price_latest_by_kind`` index),
    then those prices. ``orders`` maps asset id -> source order when the caller already has
    Asset.price_sources; else it is read in the first query.
    ``as_of`` ignores prices stored after that time (a past snapshot).
    """
    ids = sorted(set(asset_ids))
    if not ids:
        return {}
    now = now or as_of or timezone.now()
    fx = fx if fx is not None else latest_fx_rates(as_of)
    annotations = {}
    for name in SOURCES:
        latest = PricePoint.objects.filter(asset=OuterRef("pk"), kind=name)  # one probe of price_latest_by_kind
        if as_of is not None:
            latest = latest.filter(at__lte=as_of)
        # One subquery per source (the row's id), not one per column: four times fewer index probes.
        annotations[name] = Subquery(latest.order_by("-at", "-id").values("id")[:1])
    rows = list(Asset.objects.filter(pk__in=ids).annotate(**annotations).order_by()
                .values_list("pk", "price_sources", *annotations))
    wanted = sorted({pk for row in rows for pk in row[2:] if pk is not None})
    points = {pk: rest for pk, *rest in PricePoint.objects.filter(pk__in=wanted).order_by().values_list(
        "pk", "price", "at", "source", "currency")} if wanted else {}
    limit = now - stale_after()
    out: dict[int, Price] = {}
    with exact():
        for asset_id, price_sources, *point_ids in rows:
            latest_of = dict(zip(annotations, point_ids))
            order = (orders or {}).get(asset_id) or source_order(price_sources)
            chosen = _choose(order, lambda name: points.get(latest_of.get(name)) or (None, None, None, None), fx, limit)
            if chosen is not None:
                out[asset_id] = chosen
    return out


def next_price_after(asset_ids: Iterable[int], at: datetime) -> datetime | None:
    """The first moment after ``at`` at which a stored price of one of these assets (of a registered
    source) or an FX rate was taken: until then ``latest_prices(as_of=...)`` and ``latest_fx_rates``
    answer as they did at ``at``. Two queries (one index probe per asset and source)."""
    ids = sorted(set(asset_ids))
    firsts = []
    if ids:
        annotations = {name: Subquery(PricePoint.objects.filter(asset=OuterRef("pk"), kind=name, at__gt=at)
                                      .order_by("at").values("at")[:1]) for name in SOURCES}
        rows = Asset.objects.filter(pk__in=ids).annotate(**annotations).order_by().values_list(*annotations)
        firsts = [t for row in rows for t in row if t is not None]
    fx = FxRate.objects.filter(at__gt=at).order_by("at").values_list("at", flat=True).first()
    return min(firsts + ([fx] if fx is not None else []), default=None)


def _choose(order: Sequence[str], latest_of, fx: dict[str, Decimal], limit: datetime) -> Price | None:
    """The price of one asset among its sources' latest stored ones (``latest_of(name) -> (price, at,
    source, currency)``, price None when that source has none): the first fresh one in ``order``,
    else the first (flagged stale); prices in a currency without a known rate cannot be used."""
    candidates = []
    for name in order:
        price, at, source, currency = latest_of(name)
        if price is None:
            continue
        currency = currency or USD
        rate = Decimal(1) if currency == USD else fx.get(currency)
        if not rate:
            continue  # a manual EUR price with no EUR rate known: cannot be used
        usd = price if currency == USD else price / rate
        candidates.append(Price(usd, source, name, at, not get_source(name).never_stale and at < limit))
    fresh = [c for c in candidates if not c.stale]
    return (fresh or candidates)[0] if candidates else None


def prices_at(asset_ids: Iterable[int], moments: Sequence[datetime]) -> dict[datetime, dict[int, Price]]:
    """``latest_prices(asset_ids, as_of=m)`` for each of many past moments (a backfill's days), from
    one read of the assets' stored prices and FX rates instead of queries per moment."""
    ids, moments = sorted(set(asset_ids)), sorted(set(moments))
    if not ids or not moments:
        return {m: {} for m in moments}
    names = {name: get_source(name).stored_prefixes for name in SOURCES}
    series: dict[tuple[int, str], list[tuple]] = {}
    for asset_id, at, price, source, currency in PricePoint.objects.filter(asset_id__in=ids, at__lte=moments[-1]).order_by(
            "at", "id").values_list("asset_id", "at", "price", "source", "currency").iterator(chunk_size=5000):
        for name, prefixes in names.items():
            if source.startswith(prefixes):
                series.setdefault((asset_id, name), []).append((at, price, source, currency))
                break
    times = {key: [row[0] for row in rows] for key, rows in series.items()}
    orders = {pk: source_order(sources) for pk, sources in Asset.objects.filter(pk__in=ids).values_list("pk", "price_sources")}
    fx_rows = list(FxRate.objects.filter(at__lte=moments[-1]).order_by("at", "id").values_list("at", "currency", "rate"))
    out: dict[datetime, dict[int, Price]] = {}
    fx: dict[str, Decimal] = {}
    next_fx = 0
    with exact():
        for m in moments:
            while next_fx < len(fx_rows) and fx_rows[next_fx][0] <= m:  # the rates as of m (moments ascend)
                fx[fx_rows[next_fx][1]] = fx_rows[next_fx][2]
                next_fx += 1

            def latest_of(name: str, asset_id: int, m: datetime = m) -> tuple:
                rows = series.get((asset_id, name))
                i = bisect.bisect_right(times[(asset_id, name)], m) if rows else 0
                if not i:
                    return None, None, None, None
                at, price, source, currency = rows[i - 1]
                return price, at, source, currency

            chosen = {a: _choose(orders[a], lambda name, a=a: latest_of(name, a), fx, m - stale_after()) for a in ids}
            out[m] = {a: p for a, p in chosen.items() if p is not None}
    return out


def latest_fx_rates(at: datetime | None = None) -> dict[str, Decimal]:
    """Units per USD of every quote currency with a rate, as of ``at`` (default now). Two queries."""
    qs = FxRate.objects.all()
    if at is not None:
        qs = qs.filter(at__lte=at)
    last = list(qs.values("currency").annotate(last=Max("at")))
    if not last:
        return {}
    match = Q()
    for row in last:
        match |= Q(currency=row["currency"], at=row["last"])
    rates: dict[str, Decimal] = {}
    for currency, rate in FxRate.objects.filter(match).order_by("id").values_list("currency", "rate"):
        rates[currency] = rate
    return rates


# --------------------------------------------------------------------------- refreshing


@dataclass
class RefreshReport:
    """What a refresh did: prices stored, assets asked, assets skipped as fresh, and a problem if any."""

    stored: int = 0
    asked: int = 0
    skipped_fresh: int = 0
    requests: int = 0
    rate_limited: bool = False
    retry_after: float | None = None
    errors: list[str] = field(default_factory=list)


def held_asset_ids() -> set[int]:
    """Assets held (non-zero) in any wallet, as a balance or a position leg."""
    held = set(Holding.objects.exclude(amount=0).values_list("asset_id", flat=True).distinct())
    held |= set(PositionLeg.objects.exclude(amount=0).values_list("asset_id", flat=True).distinct())
    return held


def do_refresh_prices(asset_ids: Iterable[int] | None = None, *, now: datetime | None = None,
                      client: CoinGeckoClient | None = None) -> RefreshReport:
    """Fetch prices from the HTTP source for held assets (or ``asset_ids``) that have no fresh price
    from a source ranked before it, and store them as PricePoints. Spam assets are never priced.

    Stops at a 429 and keeps what was fetched before it (``report.rate_limited``, ``retry_after``);
    other failures are logged into ``report.errors``. A no-op when COINGECKO_API_URL is empty.
    """
    now = now or timezone.now()
    report = RefreshReport()
    client = client or CoinGeckoClient.from_settings()
    if client is None:
        return report
    ids = set(asset_ids) if asset_ids is not None else held_asset_ids()
    assets = list(Asset.objects.filter(pk__in=ids, is_spam=False).exclude(kind=Asset.NFT_COLLECTION).select_related("chain"))
    current = latest_prices([a.id for a in assets], now=now)
    due = []
    for asset in assets:
        order = source_order(asset.price_sources)
        if "coingecko" not in order:
            continue
        chosen = current.get(asset.id)
        ahead = order[: order.index("coingecko") + 1]
        if chosen and chosen.source_name in ahead and not chosen.stale and now - chosen.at < fresh_for():
            report.skipped_fresh += 1
            continue
        if chosen and chosen.source_name in ahead and chosen.source_name != "coingecko" and not chosen.stale:
            report.skipped_fresh += 1  # a higher-ranked source (an oracle) has a usable price
            continue
        due.append(asset)
    report.asked = len(due)
    if not due:
        return report
    source = get_source("coingecko")
    assert isinstance(source, CoinGeckoSource)
    before = client.request_count
    try:
        found = source.refresh(due, now=now, client=client)
    except PriceRateLimited as exc:
        report.rate_limited, report.retry_after = True, exc.retry_after
        report.errors.append(str(exc))
        found = []
    except PricingError as exc:
        report.errors.append(str(exc))
        log.warning("price refresh failed: %s", exc)
        found = []
    report.requests = client.request_count - before
    with transaction.atomic():
        PricePoint.objects.bulk_create(
            [PricePoint(asset_id=p.asset_id, at=p.at, currency=p.currency, price=p.price, source=p.source) for p in found]
        )
    report.stored = len(found)
    return report


def do_refresh_fx(*, now: datetime | None = None, client: CoinGeckoClient | None = None) -> int:
    """Store the current rate of each configured quote currency (settings.QUOTE_CURRENCIES) from
    /exchange_rates as FxRate rows (source "coingecko"). Returns the number stored (0 when off).
    Raises PricingError when the API fails (the caller, a task, decides on retry)."""
    client = client or CoinGeckoClient.from_settings()
    if client is None:
        return 0
    now = now or timezone.now()
    rates = client.exchange_rates()
    rows = [FxRate(at=now, currency=c, rate=rates[c], source="coingecko")
            for c in settings.QUOTE_CURRENCIES if c != USD and c in rates]
    FxRate.objects.bulk_create(rows)
    return len(rows)


def do_import_price_history(asset: Asset, *, days: int = 365, client: CoinGeckoClient | None = None) -> int:
    """Store an asset's price history (/coins/{id}/market_chart) as coingecko PricePoints, skipping
    times already stored. Needs a coingecko id (or the chain's native id). Returns rows stored."""
    client = client or CoinGeckoClient.from_settings()
    coin = asset.coingecko_id or (asset.chain.native_coingecko_id if asset.kind == Asset.NATIVE else "")
    if client is None or not coin:
        return 0
    return _store_history(asset, client.market_chart(coin, days))


def do_import_price_range(assets: Iterable[Asset], start: datetime, end: datetime, *, client: CoinGeckoClient | None = None) -> int:
    """Store the daily prices between ``start`` and ``end`` (/coins/{id}/market_chart/range) of the
    assets with a coingecko id (or their chain's native id) whose price sources include coingecko, as
    coingecko PricePoints; times already stored are skipped, so running it again adds nothing. A
    failing or rate-limited source is logged and leaves those days unpriced. Returns rows stored."""
    client = client or CoinGeckoClient.from_settings()
    if client is None:
        return 0
    stored = 0
    for asset in assets:
        coin = asset.coingecko_id or (asset.chain.native_coingecko_id if asset.kind == Asset.NATIVE else "")
        if not coin or asset.is_spam or "coingecko" not in source_order(asset.price_sources):
            continue
        try:
            stored += _store_history(asset, client.market_chart_range(coin, start, end))
        except PricingError as exc:
            log.warning("price history of %s not imported: %s", asset.symbol, exc)
    return stored


def _store_history(asset: Asset, history: list[tuple[datetime, Decimal]]) -> int:
    known = set(PricePoint.objects.filter(asset=asset, source="coingecko").values_list("at", flat=True))
    rows = [PricePoint(asset=asset, at=at, price=price, currency=USD, source="coingecko") for at, price in history if at not in known]
    PricePoint.objects.bulk_create(rows)
    return len(rows)
