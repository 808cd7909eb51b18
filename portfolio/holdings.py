"""Holdings read model: per-asset totals of a scope (kept per scope by portfolio/totals.py, or summed in
the database for another set of wallets: never an object per holding), priced once per asset, net
worth = holdings outside positions + positions' net value, and one asset's per-wallet breakdown on
request. A fixed number of queries whatever the number of wallets or holdings."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable

from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.base import ModelState
from django.utils import timezone

from portfolio import holdings_cache
from portfolio.costbasis import CostBasis
from portfolio.fields import raw_rows
from portfolio.models import Asset, Chain, Holding, NftItem, ValuePoint, Wallet, WalletChain
from portfolio.overlaps import Cover, covered_pairs
from portfolio.pair_values import _valid_until
from portfolio.pair_values import holding_values as cached_pair_values
from portfolio.pricing.fx import rate_for
from portfolio.queries import RANGES, PositionRow, _owned_scope, _quote, positions
from portfolio.services.prices import (
    PRICED, UNPRICED, Price, latest_fx_rates, latest_prices, next_price_after, price_status,
)
from portfolio.totals import scope_totals
from portfolio.valuation import ZERO, exact, pct_change, share_of, to_units


@dataclass
class WalletAmount:
    """One wallet's part of a holding row: ``amount`` in whole units, ``value`` in the quote currency
    (None when unpriced), block ``height`` and ``fetched_at`` of the read. ``also_in`` names the wallet
    that counts this account when it is reached through several wallets (then it is in no total)."""

    wallet: Wallet
    chain: Chain
    amount: Decimal
    amount_raw: int
    unconfirmed_raw: int
    value: Decimal | None
    height: int | None
    fetched_at: datetime | None
    also_in: Wallet | None = None


@dataclass
class HoldingRow:
    """One asset across the scope's wallets (accounts reached twice counted once). ``asset`` has
    ``chain`` loaded. Money is in ``currency``.

    ``price`` is the latest price shown (possibly ``price_stale``); ``value`` uses it only when
    ``services.prices.price_status`` says PRICED, so a stale or missing price leaves ``value`` None and
    the row ``unpriced``. ``change_24h``/``change_7d``: price change as a fraction against the stored
    price then (``add_price_changes``); ``market_pnl`` the market part over ``pnl_range`` (when asked); ``share`` the fraction of the
    priced holdings total; ``holders`` how many wallet-chains hold it. ``wallets`` is filled only on
    request (``holding_parts``)."""

    asset: Asset
    currency: str
    amount: Decimal
    amount_raw: int
    price: Decimal | None
    price_source: str
    price_at: datetime | None
    price_stale: bool
    value: Decimal | None
    status: str
    holders: int = 0
    change_24h: Decimal | None = None
    change_7d: Decimal | None = None
    market_pnl: Decimal | None = None
    share: Decimal | None = None
    wallets: list[WalletAmount] | None = None
    cost_basis: CostBasis | None = None  # on request: activity.add_cost_basis

    @property
    def unpriced(self) -> bool:
        return self.status == UNPRICED


@dataclass
class Holdings:
    """A scope's holdings and net worth in ``currency``: ``rows`` (every asset, largest value first,
    unpriced last), ``positions`` (DeFi/staking, legs valued, debt negative) and the totals:
    ``net_worth = holdings_value + positions_value``, spam in neither. ``unpriced`` counts fungible
    assets (held or in a position leg) without a usable price, ``nfts_not_valued`` the NFTs held."""

    currency: str
    rows: list[HoldingRow]
    positions: list[PositionRow]
    holdings_value: Decimal
    positions_value: Decimal
    net_worth: Decimal
    unpriced: int
    nfts_not_valued: int
    covered: dict = field(default_factory=dict)
    rate: Decimal = Decimal(1)  # units of ``currency`` per USD
    day_before: dict[int, Decimal] | None = None  # the rows' prices 24 hours ago (``day_before``)
    change_24h: "TotalChange | None" = None  # the total's (``change_24h``)


# --------------------------------------------------------------------------- steps


def _pairs_q(pairs: Iterable[tuple[int, int]], prefix: str) -> Q:
    """A Q matching any of the (wallet id, chain id) ``pairs`` through ``prefix`` (e.g. "wallet_chain__")."""
    q = Q(pk__in=[])
    for wallet_id, chain_id in pairs:
        q |= Q(**{f"{prefix}wallet_id": wallet_id, f"{prefix}chain_id": chain_id})
    return q


def _scope_holdings(user, ids: list[int], is_all: bool, covered: dict):
    """The scope's non-zero fungible/native holdings, accounts reached twice left out (a QuerySet)."""
    qs = Holding.objects.filter(wallet_chain__wallet__owner=user)
    if not is_all:
        qs = qs.filter(wallet_chain__wallet_id__in=ids)
    qs = qs.exclude(amount=0).exclude(asset__kind=Asset.NFT_COLLECTION)
    return qs.exclude(_pairs_q(covered, "wallet_chain__")) if covered else qs


def asset_totals(holdings_qs) -> dict[int, tuple[int, int]]:
    """asset id -> (amount in base units, holders) of a Holding queryset, summed in the database on
    PostgreSQL (NUMERIC is exact there) and from two columns of plain tuples on SQLite (amounts are
    TEXT: SQL sums would be floats), so no model instance is built per holding. One query."""
    if connection.vendor == "postgresql":
        rows = holdings_qs.order_by().values("asset_id").annotate(total=Sum("amount"), holders=Count("id"))
        return {r["asset_id"]: (int(r["total"]), r["holders"]) for r in rows}
    totals: dict[int, int] = defaultdict(int)
    holders: dict[int, int] = defaultdict(int)
    for asset_id, amount in raw_rows(holdings_qs.order_by().values_list("asset_id", "amount")):
        totals[asset_id] += int(amount)  # int() of the stored text is exact
        holders[asset_id] += 1
    return {a: (totals[a], holders[a]) for a in totals}


def _totals(user, ids: list[int], is_all: bool, portfolio_id: int | None, covered: dict) -> dict[int, tuple[int, int]]:
    """asset id -> (amount, holders) of the scope, accounts reached twice counted once. "All wallets"
    and a whole portfolio read their maintained totals (one row per asset, portfolio/totals.py) less the
    covered pairs' holdings; any other set of wallets sums its holdings. Two queries at most."""
    if not (is_all or portfolio_id is not None):
        return asset_totals(_scope_holdings(user, ids, is_all, covered))
    totals = scope_totals(user.pk, None if is_all else portfolio_id)
    if covered:
        twice = Holding.objects.filter(_pairs_q(covered, "wallet_chain__")).exclude(amount=0)
        for asset_id, (amount, n) in asset_totals(twice).items():
            have, holders = totals.get(asset_id, (0, 0))
            totals[asset_id] = (have - amount, holders - n)
    return {a: t for a, t in totals.items() if t[1] > 0}


# The Asset columns a holdings row shows (``price_sources``, ``created_at``: loaded if ever read).
ASSET_COLUMNS = [f.attname for f in Asset._meta.concrete_fields if f.attname not in ("price_sources", "created_at")]


def _asset(values: tuple, chains: dict[int, Chain], db: str) -> Asset:
    """An Asset from its ASSET_COLUMNS values: what Model.from_db makes of a deferred row, without
    __init__'s work per field."""
    asset = Asset.__new__(Asset)
    asset.__dict__.update(zip(ASSET_COLUMNS, values))
    asset._state = state = ModelState()
    state.adding, state.db = False, db
    state.fields_cache = {"chain": chains[asset.chain_id]}  # what ``asset.chain = ...`` stores, without its checks
    return asset


def _assets_with_chains(asset_ids: Iterable[int]) -> dict[int, Asset]:
    """The fungible and native assets among ``asset_ids`` (NFT collections are not holdings rows),
    without the two columns no row shows (``price_sources``, ``created_at``: loaded if ever read).
    Built from plain column tuples: a scope's 2,000 assets through ``Model.__init__`` were a fifth of
    the holdings page's time. One query (two with the chains)."""
    chains = {c.pk: c for c in Chain.objects.all()}
    if not asset_ids:
        return {}
    qs = (Asset.objects.exclude(kind=Asset.NFT_COLLECTION).filter(pk__in=sorted(asset_ids)).order_by()
          .values_list(*ASSET_COLUMNS))
    return {values[0]: _asset(values, chains, qs.db) for values in qs}


def _priced_rows(totals: dict[int, tuple[int, int]], assets: dict[int, Asset], prices: dict[int, Price],
                 currency: str, rate: Decimal) -> list[HoldingRow]:
    """One row per asset: amount in whole units, price shown, value when the price is usable."""
    rows = []
    with exact():
        for asset_id, (raw, holders) in totals.items():
            if asset_id not in assets:
                continue
            asset, p = assets[asset_id], prices.get(asset_id)
            status = price_status(asset.kind, asset.is_spam, p)
            amount = to_units(raw, asset.decimals)
            price = p.usd * rate if p else None
            rows.append(HoldingRow(asset=asset, currency=currency, amount=amount, amount_raw=raw, price=price,
                                   price_source=p.source if p else "", price_at=p.at if p else None,
                                   price_stale=p.stale if p else False, status=status, holders=holders,
                                   value=amount * price if status == PRICED else None))
    rows.sort(key=lambda r: (r.value is None, -(r.value or ZERO), r.asset.symbol, r.asset.pk))
    return rows


def prices_then(asset_ids: Iterable[int], currency: str, rate_now: Decimal, at: datetime) -> dict[int, Decimal]:
    """Each asset's price per whole unit in ``currency`` as it stood at ``at``, from the stored price
    history (CoinGecko, oracle reads, manual points; the sources' order as for current prices), at
    that moment's FX rate (the current one when none was stored then). An asset whose newest price
    then was already stale (or that had none) is absent: there is nothing to compare with. Three queries."""
    return _prices_then(asset_ids, currency, rate_now, at)[0]


def _prices_then(asset_ids: Iterable[int], currency: str, rate_now: Decimal,
                 at: datetime) -> tuple[dict[int, Decimal], dict[int, Price]]:
    """``prices_then``, and the prices chosen then (their staleness then)."""
    ids = sorted(set(asset_ids))
    if not ids:
        return {}, {}
    fx_then = latest_fx_rates(at)
    rate = rate_for(currency, fx_then) or rate_now
    points = latest_prices(ids, now=at, as_of=at, fx=fx_then)
    with exact():
        return {a: p.usd * rate for a, p in points.items() if not p.stale}, points


def add_price_changes(rows: list[HoldingRow], currency: str, rate: Decimal, now: datetime,
                      day_before: dict[int, Decimal] | None = None) -> None:
    """Fill ``change_24h``/``change_7d`` of ``rows`` (a page, or every row for a total): the price now
    against the price 24 hours (7 days) before ``now`` in the stored price history (``prices_then``);
    None where no price then exists. ``day_before``: the prices 24 hours before ``now`` when the caller
    has them (``prices_then`` of these rows or more). A fixed number of queries whatever the number of rows."""
    wanted = [r.asset.pk for r in rows if r.price is not None]
    for label, delta in (("24h", timedelta(hours=24)), ("7d", timedelta(days=7))):
        if label == "24h" and day_before is not None:
            then = day_before
        else:
            then = prices_then(wanted, currency, rate, now - delta)
        for row in rows:
            if row.price is not None and row.asset.pk in then:
                setattr(row, f"change_{label}", pct_change(then[row.asset.pk], row.price))


@dataclass(frozen=True)
class TotalChange:
    """The 24h market move of what is held now: ``value`` (amount x (price now - price then), summed
    over the priced rows that had a price then) and ``pct`` against their value then. ``assets`` is how
    many rows had both prices; ``missing`` how many priced rows had none 24 hours ago."""

    value: Decimal | None
    pct: Decimal | None
    assets: int
    missing: int


def total_change_24h(rows: list[HoldingRow], currency: str, rate: Decimal, now: datetime,
                     day_before: dict[int, Decimal] | None = None) -> TotalChange:
    """The 24h change of the total of ``rows`` (their ``value``s) from the stored price history: each
    priced row's amount valued at the price 24 hours ago and now. Rows without a price then are left
    out of both sides (and counted in ``missing``); no such row at all: value and pct are None.
    ``day_before`` as for ``add_price_changes``."""
    priced = [r for r in rows if r.value is not None]
    then = day_before if day_before is not None else prices_then([r.asset.pk for r in priced], currency, rate,
                                                                 now - timedelta(hours=24))
    with exact():
        before = after = ZERO
        matched = 0
        for row in priced:
            if row.asset.pk in then:
                before += row.amount * then[row.asset.pk]
                after += row.value
                matched += 1
        if not matched:
            return TotalChange(None, None, 0, len(priced))
        return TotalChange(after - before, pct_change(before, after), matched, len(priced) - matched)


def add_market_pnl(rows: list[HoldingRow], ids: list[int], rate: Decimal, range_key: str, now: datetime) -> None:
    """Fill ``market_pnl`` of ``rows``: the market part of their value change over ``range_key``."""
    start = now - RANGES[range_key] if RANGES[range_key] else None
    points = ValuePoint.objects.filter(wallet_id__in=ids, asset_id__in=[r.asset.pk for r in rows])
    if start is not None:
        points = points.filter(at__gt=start)
    pnl: dict[int, Decimal] = defaultdict(lambda: ZERO)
    with exact():
        for a, market in points.values_list("asset_id", "market_value").iterator(chunk_size=5000):
            pnl[a] += (market or ZERO) * rate
    for row in rows:
        row.market_pnl = pnl.get(row.asset.pk, ZERO)


def _scope_positions(user, ids: list[int], currency: str, covered: dict) -> list[PositionRow]:
    return [p for p in positions(user, ids, currency) if (p.wallet.pk, p.chain.pk) not in covered]


def _nfts_not_valued(user, ids: list[int], is_all: bool, covered: dict) -> int:
    qs = NftItem.objects.filter(wallet_chain__wallet__owner=user, collection__is_spam=False)
    qs = qs if is_all else qs.filter(wallet_chain__wallet_id__in=ids)
    return (qs.exclude(_pairs_q(covered, "wallet_chain__")) if covered else qs).count()


def _unpriced_assets(rows: list[HoldingRow], position_rows: list[PositionRow]) -> int:
    """Distinct assets held or in a position leg without a usable price (spam and NFTs are not counted)."""
    ids = {r.asset.pk for r in rows if r.status == UNPRICED}
    for p in position_rows:
        for leg in p.supplied + p.borrowed + p.rewards:
            if leg.value is None and not leg.asset.is_spam and leg.asset.kind != Asset.NFT_COLLECTION:
                ids.add(leg.asset.pk)
    return len(ids)


# --------------------------------------------------------------------------- entry points


def holdings_rows(user, wallet_ids: Iterable[int], currency: str, *, now: datetime | None = None,
                  pnl_range: str | None = None) -> list[HoldingRow]:
    """Fungible and native balances of the user's ``wallet_ids`` aggregated per asset, largest value
    first, unpriced last, with 24h/7d price changes (and the market PnL over ``pnl_range`` when asked).
    For a page of a large scope, use ``scope_holdings`` and ``add_price_changes`` on the page only."""
    result = scope_holdings(user, wallet_ids, currency, with_positions=False)
    ids, _ = _owned_scope(user, wallet_ids)
    now = now or timezone.now()
    rate = _quote(currency, latest_fx_rates())[1] if result.rows else Decimal(1)
    add_price_changes(result.rows, result.currency, rate, now)
    if pnl_range in RANGES and result.rows:
        add_market_pnl(result.rows, ids, rate, pnl_range, now)
    return result.rows


def scope_holdings(user, wallet_ids: Iterable[int], currency: str, *, with_positions: bool = True,
                   portfolio_id: int | None = None, only_asset: int | None = None) -> Holdings:
    """Every asset row of the scope (no per-wallet parts) and its net worth. About ten queries whatever
    the number of wallets, holdings or positions. ``portfolio_id`` says ``wallet_ids`` are that
    portfolio's wallets: its maintained totals are read (one row per asset) instead of its holdings.
    ``only_asset``: that asset's row only (an expanded row: no other asset loaded or priced; the
    totals and shares are then that row's)."""
    ids, is_all = _owned_scope(user, wallet_ids)
    fx = latest_fx_rates() if ids else {}
    currency, rate, _ = _quote(currency, fx)
    if not ids:
        return Holdings(currency, [], [], ZERO, ZERO, ZERO, 0, 0, rate=rate)
    covered = covered_pairs(ids)
    day_before = change = None
    if only_asset is None and (is_all or portfolio_id is not None):
        rows, day_before, change = _kept_rows(user, ids, is_all, portfolio_id, covered, currency, rate, fx)
    else:
        totals = _totals(user, ids, is_all, portfolio_id, covered)
        if only_asset is not None:
            totals = {only_asset: totals[only_asset]} if only_asset in totals else {}
        assets = _assets_with_chains(totals)
        rows = _priced_rows(totals, assets, latest_prices(totals, fx=fx), currency, rate)
    position_rows = _scope_positions(user, ids, currency, covered) if with_positions else []
    with exact():
        holdings_value = sum((r.value for r in rows if r.value is not None), ZERO)
        positions_value = sum((p.value for p in position_rows if p.value is not None), ZERO)
        net_worth = holdings_value + positions_value
        for row in rows:  # a share of net worth (positions included); none when debt outweighs everything
            row.share = share_of(row.value, net_worth) if net_worth > 0 else None
    nfts = _nfts_not_valued(user, ids, is_all, covered) if with_positions else 0
    return Holdings(currency, rows, position_rows, holdings_value, positions_value, net_worth,
                    _unpriced_assets(rows, position_rows), nfts, covered, rate, day_before, change)


def _kept_rows(user, ids: list[int], is_all: bool, portfolio_id: int | None, covered: dict, currency: str,
               rate: Decimal, fx: dict[str, Decimal]) -> tuple[list[HoldingRow], dict[int, Decimal], "TotalChange"]:
    """The rows of "All wallets" or a whole portfolio, their prices of 24 hours ago and the total's 24h
    change: from the kept entry while its stamp is current (portfolio/holdings_cache.py: one query and
    the chains, nothing priced), else computed as for any scope and kept (six queries more)."""
    now = timezone.now()
    key = holdings_cache.key(user.pk, None if is_all else portfolio_id, currency, rate, ids, covered,
                             holdings_cache.stamp(user.pk))
    entry = holdings_cache.get(key, now)
    if entry is not None:
        chains, db = {c.pk: c for c in Chain.objects.all()}, Asset.objects.db
        rows = [HoldingRow(asset=_asset(values, chains, db), currency=currency, amount=amount, amount_raw=raw,
                           price=price, price_source=source, price_at=at, price_stale=stale, value=value,
                           status=status, holders=holders)
                for values, amount, raw, price, source, at, stale, value, status, holders in entry.rows]
        return rows, entry.day_before, entry.change_24h
    totals = _totals(user, ids, is_all, portfolio_id, covered)
    prices = latest_prices(totals, now=now, fx=fx)
    rows = _priced_rows(totals, _assets_with_chains(totals), prices, currency, rate)
    then = now - timedelta(hours=24)
    wanted = [r.asset.pk for r in rows if r.price is not None]
    day_before, points_then = _prices_then(wanted, currency, rate, then)
    change = total_change_24h(rows, currency, rate, now, day_before)
    # Until a price used turns stale (now, or as of 24 hours ago) or a price or rate stored after 24
    # hours ago starts to count as "24 hours ago" (each capped at holdings_cache.MAX_AGE).
    following = next_price_after(wanted, then) if wanted else None
    until = min(_valid_until(prices.values(), now), _valid_until(points_then.values(), then) + timedelta(hours=24),
                now + holdings_cache.MAX_AGE, *([following + timedelta(hours=24)] if following is not None else []))
    kept = [(tuple(r.asset.__dict__[c] for c in ASSET_COLUMNS), r.amount, r.amount_raw, r.price, r.price_source,
             r.price_at, r.price_stale, r.value, r.status, r.holders) for r in rows]
    holdings_cache.put(key, holdings_cache.Entry(kept, day_before, change, until), now)
    return rows, day_before, change


def rows_day_before(result: Holdings, now: datetime) -> dict[int, Decimal]:
    """The prices 24 hours before ``now`` of ``result``'s rows with a price: kept with the rows
    (``scope_holdings`` of "All wallets" or a portfolio), else read (three queries)."""
    if result.day_before is None:
        result.day_before = prices_then([r.asset.pk for r in result.rows if r.price is not None], result.currency,
                                        result.rate, now - timedelta(hours=24))
    return result.day_before


def scope_change_24h(result: Holdings, now: datetime) -> "TotalChange":
    """The 24h change of ``result``'s total (``total_change_24h`` of every row): kept, else computed."""
    if result.change_24h is None:
        result.change_24h = total_change_24h(result.rows, result.currency, result.rate, now,
                                             rows_day_before(result, now))
    return result.change_24h


def holding_parts(user, wallet_ids: Iterable[int], asset_ids: Iterable[int], currency: str,
                  prices: dict[int, Decimal | None] | None = None) -> dict[int, list[WalletAmount]]:
    """Per asset in ``asset_ids``: each wallet's part in the scope (largest first), including accounts
    reached through several wallets, marked ``also_in`` (they count in that wallet, not here).
    ``prices`` maps asset id -> usable price in ``currency`` (values are None without one). Three queries."""
    ids, _ = _owned_scope(user, wallet_ids)
    asset_ids = list(asset_ids)
    if not ids or not asset_ids:
        return {}
    covered: dict[tuple[int, int], Cover] = covered_pairs(ids)
    wallets = {w.pk: w for w in Wallet.objects.filter(owner=user, pk__in=ids)}
    chains = {c.pk: c for c in Chain.objects.all()}
    out: dict[int, list[WalletAmount]] = defaultdict(list)
    rows = (Holding.objects.filter(wallet_chain__wallet__owner=user, wallet_chain__wallet_id__in=ids, asset_id__in=asset_ids)
            .exclude(amount=0)
            .values_list("asset_id", "asset__decimals", "wallet_chain__wallet_id", "wallet_chain__chain_id", "amount",
                         "unconfirmed", *Holding.read_columns()))  # the row's own read, else its WalletChain's
    with exact():
        for asset_id, decimals, wallet_id, chain_id, raw, unconfirmed, height, fetched_at in rows:
            units = to_units(raw, decimals)
            price = (prices or {}).get(asset_id)
            cover = covered.get((wallet_id, chain_id))
            out[asset_id].append(WalletAmount(wallets[wallet_id], chains[chain_id], units, raw, unconfirmed,
                                              units * price if price is not None else None, height, fetched_at,
                                              wallets.get(cover.counted_in) if cover else None))
    for parts in out.values():
        parts.sort(key=lambda p: (p.also_in is not None, -p.amount_raw, p.wallet.pk))
    return dict(out)


@dataclass
class PairValues:
    """The current value of every (wallet, chain) pair of a user's wallets in ``currency``: priced
    holdings (as on Holdings: spam, NFTs and stale prices in no total) plus positions' net value.
    ``total`` is the user's net worth (accounts reached through two wallets counted once)."""

    currency: str
    values: dict[tuple[int, int], Decimal]
    total: Decimal
    by_wallet: dict[int, list[tuple[int, Decimal]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_wallet: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
        for (wallet_id, chain_id), value in self.values.items():
            by_wallet[wallet_id].append((chain_id, value))
        self.by_wallet = dict(by_wallet)

    def of(self, wallet_ids: Iterable[int], covered: dict | None = None) -> Decimal:
        """The value of a set of wallets, leaving out the ``covered`` pairs (overlaps.covered_pairs)."""
        covered = covered or {}
        with exact():
            return sum((v for w in set(wallet_ids) for c, v in self.by_wallet.get(w, ()) if (w, c) not in covered), ZERO)


def pair_values(user, currency: str) -> PairValues:
    """Every pair's value for the lists of wallets and portfolios: the holdings' part from the owner's
    cached pair values (portfolio/pair_values.py: no read of the holdings while they and the prices are
    unchanged), the positions' part live. A fixed number of queries whatever the number of wallets or
    holdings."""
    ids, _ = _owned_scope(user, Wallet.objects.filter(owner=user).values_list("pk", flat=True))
    fx = latest_fx_rates() if ids else {}
    currency, rate, _ = _quote(currency, fx)
    if not ids:
        return PairValues(currency, {}, ZERO)
    values: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO, cached_pair_values(user.pk, currency, fx, rate))
    with exact():
        for p in positions(user, ids, currency):
            if p.value is not None:
                values[(p.wallet.pk, p.chain.pk)] += p.value
    result = PairValues(currency, dict(values), ZERO)
    result.total = result.of(ids, covered_pairs(ids))
    return result


@dataclass(frozen=True)
class Freshness:
    """How fresh a wallet's (or portfolio's) data is: its oldest good read, and how many of its chains
    failed or were never read."""

    oldest_ok: datetime | None
    failed: int
    never: int


def add_values(wallets, values: PairValues, total: Decimal) -> None:
    """Set each wallet's ``value``, ``share`` (of ``total``) and ``freshness`` (wallet_chains prefetched):
    the wallet lists of the pages and of the API."""
    for wallet in wallets:
        wallet.value = values.of([wallet.pk])
        wallet.share = share_of(wallet.value, total) if total > 0 else None
        wallet.freshness = wallet_freshness(wallet.wallet_chains.all())


def wallet_freshness(wallet_chains) -> Freshness:
    reads = [wc.last_ok_at for wc in wallet_chains if wc.last_ok_at]
    return Freshness(min(reads) if reads else None, sum(1 for wc in wallet_chains if wc.status == WalletChain.FAILED),
                     sum(1 for wc in wallet_chains if wc.last_ok_at is None))
