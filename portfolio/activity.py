"""Activity read model: a scope's transfers newest first in keyset pages, each valued at the price of its
time in the quote currency at the FX rate of that moment, transfers between the owner's own wallets
marked internal; and the cost basis per asset (portfolio/costbasis.py) read from the same history.
A fixed number of queries per page, however many wallets, chains or transfers."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Iterable, Iterator, NamedTuple

from django.core.cache import cache
from django.db import connection
from django.db.models import F, Q, QuerySet

from chains.bitcoin.adapter import BitcoinAdapter
from portfolio.costbasis import Ledger, Movement, average_cost, cost_basis
from portfolio.holdings import HoldingRow, _pairs_q
from portfolio.models import Asset, Backfill, Chain, FxRate, Holding, PricePoint, Transfer, Wallet, WalletChain
from portfolio.overlaps import covered_pairs
from portfolio.pricing.fx import USD
from portfolio.queries import _owned_scope
from portfolio.services.prices import latest_fx_rates
from portfolio.valuation import _DIV, exact, to_units

PAGE_SIZE = 50
# A price counts as "the price of the time" of a transfer when it was taken at most this long before it:
# daily price history (one point a day) always has one; a price from weeks before does not.
PRICE_OF_THE_DAY = timedelta(days=1)
DIRECTIONS = (Transfer.IN, Transfer.OUT)


@dataclass(frozen=True)
class ActivityFilters:
    """What the feed is narrowed to: one wallet of the scope, a chain slug, an asset id, a direction."""

    wallet: int | None = None
    chain: str = ""
    asset: int | None = None
    direction: str = ""


@dataclass
class ActivityRow:
    """One transfer as the feed shows it. ``amount`` is exact whole units; ``price``/``value`` are in
    ``currency`` at the time of the transfer (None: no price that day), ``price_source``/``price_at``
    say where it came from. ``counterparty_wallet`` is the owner's wallet on the other side (then the
    transfer is ``internal``); ``cancels`` when that wallet is in the scope too: the two legs cancel
    in flows."""

    id: int
    at: datetime
    wallet: Wallet
    chain: Chain
    asset: Asset
    direction: str
    amount_raw: int
    amount: Decimal
    fee_raw: int
    tx: str
    height: int | None
    counterparty: str
    currency: str
    price: Decimal | None = None
    price_source: str = ""
    price_at: datetime | None = None
    value: Decimal | None = None
    counterparty_wallet: Wallet | None = None
    cancels: bool = False

    @property
    def internal(self) -> bool:
        return self.counterparty_wallet is not None

    @property
    def tx_url(self) -> str:
        return self.chain.explorer_link("tx", self.tx) if self.tx else ""

    @property
    def counterparty_url(self) -> str:
        return self.chain.explorer_link("address", self.counterparty) if self.counterparty else ""

    @property
    def cursor_key(self) -> list:
        return [self.at.isoformat(), self.id]


@dataclass(frozen=True)
class Flows:
    """The flows of a set of transfers (a page, or every transfer a scope's filters keep), at the price
    of each one's time: ``unpriced`` transfers (no price that day, spam) are in no figure."""

    flows_in: Decimal
    flows_out: Decimal
    unpriced: int
    count: int

    @property
    def net_flow(self) -> Decimal:
        return self.flows_in - self.flows_out


def sum_flows(valued: Iterable[tuple[str, Decimal | None, bool]]) -> Flows:
    """The flows of (direction, value of the time or None, internal) triples: an unpriced transfer is
    counted as such; an internal one (both sides in the scope) is no flow."""
    flows = {Transfer.IN: Decimal(0), Transfer.OUT: Decimal(0)}
    unpriced = count = 0
    with exact():
        for direction, value, internal in valued:
            count += 1
            if value is None:
                unpriced += 1
            elif not internal:
                flows[direction] += value
    return Flows(flows[Transfer.IN], flows[Transfer.OUT], unpriced, count)


@dataclass
class ActivityPage:
    rows: list[ActivityRow]
    currency: str
    fx_missing: bool
    next_key: list | None
    flows: Flows  # of this page's rows


# --------------------------------------------------------------------------- the scope's transfers


def scope_transfers(user, wallet_ids: Iterable[int], filters: ActivityFilters = ActivityFilters()) -> QuerySet:
    """The user's transfers in ``wallet_ids`` (accounts reached through two wallets counted once), with
    the filters applied, newest first (``-at, -id``: the keyset of the pages)."""
    ids, is_all = _owned_scope(user, wallet_ids)
    if filters.wallet is not None:
        ids, is_all = ([filters.wallet] if filters.wallet in ids else []), False
    qs = Transfer.objects.filter(wallet_chain__wallet__owner=user)
    if not is_all:
        qs = qs.filter(wallet_chain__wallet_id__in=ids)
    covered = covered_pairs(ids) if ids else {}
    if covered:
        qs = qs.exclude(_pairs_q(covered, "wallet_chain__"))
    if filters.chain:
        qs = qs.filter(wallet_chain__chain__slug=filters.chain)
    if filters.asset is not None:
        qs = qs.filter(asset_id=filters.asset)
    if filters.direction in DIRECTIONS:
        qs = qs.filter(direction=filters.direction)
    return qs.order_by("-at", "-id")


def parse_key(key: list) -> tuple[datetime, int]:
    """The (time, id) of a page key [ISO text with its zone, id]. Raises ValueError for anything else."""
    at, pk = datetime.fromisoformat(key[0]), int(key[1])
    if at.tzinfo is None:
        raise ValueError("a cursor time carries its zone")
    return at, pk


def after_key(qs: QuerySet, key: list) -> QuerySet:
    """Rows strictly after ``key`` (see ``parse_key``) in the newest-first order."""
    at, pk = parse_key(key)
    return qs.filter(Q(at__lt=at) | Q(at=at, id__lt=pk))


@dataclass(frozen=True)
class PriceThen:
    """A price of the time: per unit in the quote currency, where it came from and when it was taken."""

    price: Decimal
    source: str
    at: datetime


class PricesOfTheTime:
    """The prices of assets at past moments, as ``latest_prices``/``latest_fx_rates(as_of)`` would have
    answered then: the latest price point of the asset at or before the moment and at most
    ``PRICE_OF_THE_DAY`` older, converted to USD (a price entered in another currency) and to the quote
    currency at the FX rates of that moment (before any stored rate: the latest one, as the dashboard
    does). Read once for a set of moments (the price points of their span, the FX rates) and looked up by
    bisection, so a page or a whole history costs a few queries, not one per transfer."""

    def __init__(self, wanted: Iterable[tuple[int, datetime]], currency: str) -> None:
        wanted = list(wanted)
        self.currency, self.current = currency, latest_fx_rates()
        self.prices: dict[int, tuple[list[datetime], list[tuple]]] = {}
        self.fx: dict[str, tuple[list[datetime], list[Decimal]]] = {}
        if not wanted:
            return
        lo, hi = min(at for _, at in wanted) - PRICE_OF_THE_DAY, max(at for _, at in wanted)
        points = PricePoint.objects.filter(asset_id__in=sorted({a for a, _ in wanted}), at__gte=lo, at__lte=hi)
        for asset_id, *row in points.order_by("asset_id", "at", "id").values_list("asset_id", "at", "price", "currency",
                                                                                  "source"):
            times, rows = self.prices.setdefault(asset_id, ([], []))
            times.append(row[0])
            rows.append(row)
        currencies = ({row[2] for _, rows in self.prices.values() for row in rows} | {currency}) - {USD}
        if currencies:
            for code, rate in latest_fx_rates(lo).items():
                if code in currencies:
                    self.fx[code] = ([lo], [rate])
            for code, at, rate in (FxRate.objects.filter(currency__in=sorted(currencies), at__gt=lo, at__lte=hi)
                                   .order_by("at", "id").values_list("currency", "at", "rate")):
                times, rates = self.fx.setdefault(code, ([], []))
                times.append(at)
                rates.append(rate)

    def rate(self, code: str, at: datetime) -> Decimal | None:
        """Units of ``code`` per USD at ``at`` (None: no rate ever stored)."""
        if code == USD:
            return Decimal(1)
        times, rates = self.fx.get(code, ((), ()))
        i = bisect_right(times, at) - 1
        return rates[i] if i >= 0 else self.current.get(code)

    def at(self, asset_id: int, at: datetime) -> PriceThen | None:
        """The price of ``asset_id`` at ``at`` in the quote currency, or None (no price that day)."""
        times, rows = self.prices.get(asset_id, ((), ()))
        i = bisect_right(times, at) - 1
        if i < 0 or at - rows[i][0] > PRICE_OF_THE_DAY:
            return None
        p_at, price, code, source = rows[i]
        own, quote = self.rate(code or USD, at), self.rate(self.currency, at)
        if not own or quote is None:
            return None
        with exact():
            usd = price if code == USD else _DIV.divide(price, own)
            return PriceThen(usd * quote, source, p_at)


def quote_currency(currency: str) -> tuple[str, bool]:
    """(currency shown, fx_missing): USD when no rate of ``currency`` was ever stored."""
    if currency == USD or FxRate.objects.filter(currency=currency).exists():
        return currency, False
    return USD, True


# --------------------------------------------------------------------------- internal transfers


class OwnWallets:
    """The owner's accounts per chain (addresses, and the used addresses of extended keys) and their legs
    of given transactions: tells whether a transfer's other side is one of the owner's wallets. Two or
    three queries."""

    def __init__(self, user, txs: Iterable[tuple[int, str]] = ()) -> None:
        rows = list(WalletChain.objects.filter(wallet__owner=user).values_list(
            "wallet_id", "chain_id", "wallet__family", "wallet__kind", "wallet__address",
            *(f"wallet__{f}" for f in _NAMES)))
        # Enough of each wallet to name it (str(wallet)) without loading it again.
        self.wallets = {r[0]: Wallet(pk=r[0], owner_id=user.pk, family=r[2], kind=r[3], address=r[4],
                                     **dict(zip(_NAMES, r[5:]))) for r in rows}
        rows = [r[:5] for r in rows]
        self.accounts: dict[tuple[int, str], int] = {}
        for wallet_id, chain_id, family, kind, address in sorted(rows):
            if kind != Wallet.EXTENDED_KEY:
                self.accounts.setdefault((chain_id, _norm(family, address)), wallet_id)
        if any(r[3] == Wallet.EXTENDED_KEY for r in rows):
            for wallet_id, chain_id, cursors in WalletChain.objects.filter(
                    wallet__owner=user, wallet__kind=Wallet.EXTENDED_KEY).order_by("wallet_id").values_list(
                    "wallet_id", "chain_id", "cursors"):
                for address in BitcoinAdapter.derived_addresses(cursors or {}):
                    self.accounts.setdefault((chain_id, address), wallet_id)
        self.families = {chain_id: family for _, chain_id, family, _, _ in rows}
        self.legs: dict[tuple[int, str, int, str, int], set[int]] = {}
        txs = {tx for _, tx in txs if tx}
        if txs:
            self.add_legs(Transfer.objects.filter(wallet_chain__wallet__owner=user, tx__in=sorted(txs)).values_list(
                "wallet_chain__chain_id", "tx", "asset_id", "direction", "amount", "wallet_chain__wallet_id"))

    def add_legs(self, legs: Iterable[tuple[int, str, int, str, int, int]]) -> None:
        for chain_id, tx, asset_id, direction, amount, wallet_id in legs:
            self.legs.setdefault((chain_id, tx, asset_id, direction, amount), set()).add(wallet_id)

    def other_side(self, wallet_id: int, chain_id: int, t: Leg) -> int | None:
        """The owner's wallet on the other side of transfer ``t`` of ``wallet_id`` on ``chain_id``, or None
        (a transfer with the outside): its counterparty's address, else the same amount of the same asset
        going the other way in the same transaction (a transaction that also pays others is not internal)."""
        if t.counterparty:
            found = self.accounts.get((chain_id, _norm(self.families.get(chain_id, ""), t.counterparty)))
            if found is not None:
                return found
        opposite = Transfer.IN if t.direction == Transfer.OUT else Transfer.OUT
        others = self.legs.get((chain_id, t.tx, t.asset_id, opposite, t.amount), set()) - {wallet_id}
        return min(others) if others else None


_NAMES = ("label", "primary_name", "ens_name")


def _norm(family: str, address: str) -> str:
    return address.lower() if family == "evm" else address


class Leg(NamedTuple):
    """A transfer as the feed and the cost basis read it: plain columns, no model instance (a page of
    them, or a whole history, would cost more to build than everything else). ``w``/``c``: its wallet
    and chain ids."""

    id: int
    w: int
    c: int
    asset_id: int
    tx: str
    direction: str
    amount: int
    fee: int
    counterparty: str
    at: datetime
    height: int | None


def legs(qs: QuerySet, limit: int | None = None) -> list[Leg]:
    """The transfers of ``qs`` (in its order, the first ``limit``) as Legs. One query."""
    rows = qs.annotate(w=F("wallet_chain__wallet_id"), c=F("wallet_chain__chain_id")).values_list(*Leg._fields)
    return [Leg(*row) for row in (rows[:limit] if limit is not None else rows)]


# --------------------------------------------------------------------------- the feed


def activity_page(user, wallet_ids: Iterable[int], currency: str, filters: ActivityFilters = ActivityFilters(), *,
                  after: list | None = None, limit: int = PAGE_SIZE) -> ActivityPage:
    """One page of the scope's transfers after the keyset ``after`` (None: the newest), valued at their
    time (``after`` checked by ``parse_key``). A fixed number of queries whatever the page's size."""
    scope_ids, _ = _owned_scope(user, wallet_ids)
    currency, fx_missing = quote_currency(currency)
    qs = scope_transfers(user, scope_ids, filters)
    if after is not None:
        qs = after_key(qs, after)
    found = legs(qs, limit + 1)
    transfers = found[:limit]
    rows = rows_of(user, transfers, scope_ids, currency)
    return ActivityPage(rows, currency, fx_missing, rows[-1].cursor_key if len(found) > limit and rows else None,
                        sum_flows((r.direction, r.value, r.cancels) for r in rows))


def scope_flows(user, wallet_ids: Iterable[int], currency: str, filters: ActivityFilters = ActivityFilters()) -> Flows:
    """In, out and net of the whole filtered set (not one page): valued as the feed's rows, internal
    transfers left out when the scope holds both sides. One pass over plain columns, about eight
    queries whatever the history's size; kept in the cache under the filters and the history's stamp
    (``_history_stamp``, as the cost basis), so a view whose history did not move reads one row."""
    scope_ids, _ = _owned_scope(user, wallet_ids)
    currency, _ = quote_currency(currency)
    stamp, price_id, newest = _history_stamp(user, scope_ids)
    # the filters (free text among them) as a digest: a key of plain characters and bounded length
    key = f"flows:{user.pk}:{currency}:{stamp}:{hashlib.sha256(repr(filters).encode()).hexdigest()[:32]}"
    kept = cache.get(key)  # (the newest price id it was valued with, the flows)
    if kept is not None and not _history_repriced(kept[0], price_id, newest):
        if kept[0] != price_id:
            cache.set(key, (price_id, kept[1]), LEDGER_SECONDS)
        return kept[1]
    flows = _scope_flows(user, scope_ids, currency, filters)
    cache.set(key, (price_id, flows), LEDGER_SECONDS)
    return flows


def _history_repriced(seen: int | None, price_id: int | None, newest: datetime | None) -> bool:
    """Whether a price stored since the price id ``seen`` can value a transfer of the history: one taken
    at or before its newest transfer (``newest``). A price is valued at or before a transfer's time, so
    the prices of the days after the history (every refresh of today's) change nothing. One query."""
    if seen == price_id or newest is None:
        return False
    return PricePoint.objects.filter(pk__gt=seen or 0, at__lte=newest).exists()


def _scope_flows(user, scope_ids: list[int], currency: str, filters: ActivityFilters) -> Flows:
    qs = scope_transfers(user, scope_ids, filters)
    transfers = legs(qs)
    if not transfers:
        return Flows(Decimal(0), Decimal(0), 0, 0)
    own = OwnWallets(user)
    # Every leg of the owner in these transactions, whatever the filters (the other side of an internal
    # transfer may be filtered out): one query with the filtered set as a subquery.
    own.add_legs(Transfer.objects.filter(wallet_chain__wallet__owner=user, tx__in=qs.exclude(tx="").values("tx"))
                 .values_list("wallet_chain__chain_id", "tx", "asset_id", "direction", "amount", "wallet_chain__wallet_id"))
    info = {pk: (decimals, spam) for pk, decimals, spam in
            Asset.objects.filter(pk__in={t.asset_id for t in transfers}).values_list("pk", "decimals", "is_spam")}
    prices, scope = PricesOfTheTime([(t.asset_id, t.at) for t in transfers if not info[t.asset_id][1]], currency), set(scope_ids)
    def valued():
        for t in transfers:
            decimals, spam = info[t.asset_id]
            then = prices.at(t.asset_id, t.at) if not spam else None  # spam is never valued
            if then is None:
                yield t.direction, None, False
                continue
            other = own.other_side(t.w, t.c, t)  # both legs in the scope: no flow
            yield t.direction, to_units(t.amount, decimals) * then.price, other is not None and other in scope

    return sum_flows(valued())


def rows_of(user, transfers: list[Leg], scope_ids: list[int], currency: str) -> list[ActivityRow]:
    """Feed rows of ``transfers``, valued at their time, internal ones marked. A fixed number of queries."""
    own = OwnWallets(user, [(t.c, t.tx) for t in transfers])
    others = [own.other_side(t.w, t.c, t) for t in transfers]
    prices, scope = PricesOfTheTime([(t.asset_id, t.at) for t in transfers], currency), set(scope_ids)
    chains = Chain.objects.in_bulk() if transfers else {}
    assets = Asset.objects.in_bulk({t.asset_id for t in transfers})
    rows = []
    for t, other in zip(transfers, others):
        asset = assets[t.asset_id]
        amount = to_units(t.amount, asset.decimals)
        then = prices.at(t.asset_id, t.at) if not asset.is_spam else None  # spam is never valued
        with exact():
            value = amount * then.price if then is not None else None
        rows.append(ActivityRow(
            id=t.id, at=t.at, wallet=own.wallets[t.w], chain=chains[t.c], asset=asset, direction=t.direction,
            amount_raw=t.amount, amount=amount, fee_raw=t.fee, tx=t.tx, height=t.height, counterparty=t.counterparty,
            currency=currency, price=then.price if then else None, price_source=then.source if then else "",
            price_at=then.at if then else None, value=value,
            counterparty_wallet=own.wallets.get(other) if other is not None else None,
            cancels=other is not None and other in scope))
    return rows


def all_rows(user, wallet_ids: Iterable[int], currency: str, filters: ActivityFilters = ActivityFilters(), *,
             chunk: int = 500) -> Iterator[ActivityRow]:
    """Every transfer the filters keep, newest first, read in keyset chunks (a fixed number of queries a
    chunk, never the whole history in memory): the CSV export."""
    scope_ids, _ = _owned_scope(user, wallet_ids)
    qs = scope_transfers(user, scope_ids, filters)
    key = None
    while transfers := legs(after_key(qs, key) if key else qs, chunk):
        yield from rows_of(user, transfers, scope_ids, currency)
        key = [transfers[-1].at.isoformat(), transfers[-1].id]


def activity_filter_choices(user, wallet_ids: Iterable[int]) -> dict:
    """The wallets, chains and assets a scope's feed can be narrowed to. Three queries."""
    ids = list(wallet_ids)
    return {
        "wallets": list(Wallet.objects.filter(owner=user, pk__in=ids).order_by("label", "pk")),
        "chains": list(Chain.objects.filter(wallet_chains__wallet__owner=user,
                                            wallet_chains__wallet_id__in=ids).distinct()),
        "assets": list(Asset.objects.filter(transfers__wallet_chain__wallet__owner=user,
                                            transfers__wallet_chain__wallet_id__in=ids).select_related("chain")
                       .distinct().order_by("symbol", "pk")[:500]),
    }


# --------------------------------------------------------------------------- cost basis


def add_cost_basis(user, wallet_ids: Iterable[int], rows: list[HoldingRow], currency: str,
                   covered: dict | None = None) -> None:
    """Fill ``cost_basis`` of holding ``rows`` (a page: money in ``currency``, the rows' own) from the
    scope's history: acquisitions at the price of their day, disposals and network fees at average cost,
    internal transfers left out when the scope holds both sides. ``covered``: the scope's covered pairs
    when the caller has them (``Holdings.covered``).

    Each asset's ledger (the history's part, before the amount held and the price now) is kept in the
    cache under the scope and a stamp of everything it was read from (``_history_stamp``): a view whose
    stamp is unchanged reads no transfer and no past price (two queries); otherwise about ten, whatever
    the history's size (the history and the prices of its span are read once, then looked up)."""
    ids, _ = _owned_scope(user, wallet_ids)
    if not rows or not ids:
        return
    by_asset = {r.asset.pk: r for r in rows}
    covered = covered_pairs(ids) if covered is None else covered
    stamp, price_id, newest = _history_stamp(user, ids)
    key = f"cost-basis:{user.pk}:{currency}:{stamp}"
    # One entry per scope: the ledgers of the pages seen, and the newest price id they were read with.
    seen, ledgers = cache.get(key) or (price_id, {})
    if _history_repriced(seen, price_id, newest):
        ledgers = {}  # a price of a day of the history was stored since (newer ones are no acquisition's)
    missing = [r.asset for a, r in by_asset.items() if a not in ledgers]
    if missing or seen != price_id:
        ledgers = {**ledgers, **_ledgers(user, ids, covered, missing, currency)} if missing else ledgers
        cache.set(key, (price_id, ledgers), LEDGER_SECONDS)
    problems: dict[int, list[str]] = {a: [] for a in by_asset}
    for asset_id, reason in _history_gaps(ids, covered, list(by_asset)):
        problems[asset_id].append(reason)
    for asset_id, row in by_asset.items():
        price_now = row.price if row.value is not None else None
        row.cost_basis = cost_basis(ledgers[asset_id], row.amount, price_now, problems[asset_id])


LEDGER_SECONDS = 24 * 3600  # a stamp that moved makes a new key: old entries just expire


def _history_stamp(user, ids: list[int]) -> tuple[str, int | None, datetime | None]:
    """What a scope's ledgers were read from, in one query: the owner's transfers (how many, the
    highest id: a transfer added or deleted, a wallet removed), its backfills' last write (a page
    re-read in place), its wallets (how many, the highest id: which transfers are internal) and its
    extended keys' last good read (their used addresses), the highest FX rate id, the assets marked spam
    (never valued), the scope's wallets; apart, the highest price id and the newest transfer's time (a
    price stored since counts only if it is of a day the history covers: ``add_cost_basis``). Ids are
    never reused. Not seen: a stored transfer or price edited by hand in place (the next backfill page
    or price stored shows it)."""
    t, wc, w, b, a = (m._meta.db_table for m in (Transfer, WalletChain, Wallet, Backfill, Asset))
    owned = f"FROM {wc} wc JOIN {w} w ON wc.wallet_id = w.id WHERE w.owner_id = %s"
    # The transfers read once for their three figures (three subqueries scanned them three times).
    sql = (f"SELECT x.n, x.last, "
           f"(SELECT MAX(b.updated_at) FROM {b} b WHERE b.wallet_chain_id IN (SELECT wc.id {owned})), "
           f"(SELECT MAX(wc.last_ok_at) {owned} AND w.kind = %s), "
           f"(SELECT COUNT(*) FROM {w} WHERE owner_id = %s), (SELECT MAX(id) FROM {w} WHERE owner_id = %s), "
           f"(SELECT MAX(id) FROM {FxRate._meta.db_table}), "
           f"(SELECT COUNT(*) FROM {a} WHERE is_spam), (SELECT SUM(id) FROM {a} WHERE is_spam), "
           f"(SELECT MAX(id) FROM {PricePoint._meta.db_table}), x.newest "
           f"FROM (SELECT COUNT(*) AS n, MAX(t.id) AS last, MAX(t.at) AS newest FROM {t} t "
           f"WHERE t.wallet_chain_id IN (SELECT wc.id {owned})) x")
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, user.pk, Wallet.EXTENDED_KEY, user.pk, user.pk, user.pk])
        *stamp, price_id, newest = cursor.fetchone()
    if isinstance(newest, str):  # SQLite answers an aggregate of a datetime column as text (UTC)
        newest = datetime.fromisoformat(newest).replace(tzinfo=UTC)
    return hashlib.sha256(repr((stamp, sorted(ids))).encode()).hexdigest(), price_id, newest


def _ledgers(user, ids: list[int], covered: dict, assets: list[Asset], currency: str) -> dict[int, Ledger]:
    """Each asset's ledger over the scope's history (see ``add_cost_basis``)."""
    by_asset = {a.pk: a for a in assets}
    natives = {a.chain_id: a.pk for a in assets if a.kind == Asset.NATIVE}
    # The owner's legs of these assets (all wallets: the other side of an internal transfer may be outside
    # the scope), and the fees their native coins paid on any transfer.
    fees = Q(wallet_chain__chain_id__in=list(natives), direction=Transfer.OUT) & ~Q(fee=0)
    relevant = Q(asset_id__in=list(by_asset)) | fees
    qs = Transfer.objects.filter(relevant, wallet_chain__wallet__owner=user)
    if covered:
        qs = qs.exclude(_pairs_q(covered, "wallet_chain__"))
    transfers = legs(qs.order_by("at", "id"))
    own = OwnWallets(user)
    own.add_legs((t.c, t.tx, t.asset_id, t.direction, t.amount, t.w) for t in transfers)
    scope, acquisitions = set(ids), []
    moves: dict[int, list[Movement]] = {a: [] for a in by_asset}
    with exact():
        for t in transfers:
            if t.w not in scope:
                continue
            if t.fee and t.direction == Transfer.OUT and t.c in natives:
                native = by_asset[natives[t.c]]
                moves[native.pk].append(Movement(t.at, to_units(t.fee, native.decimals), acquired=False))
            if t.asset_id not in by_asset:
                continue
            other = own.other_side(t.w, t.c, t)
            if other is not None and other in scope:
                continue  # both legs are in the scope: units moved between its wallets, cost with them
            units = to_units(t.amount, by_asset[t.asset_id].decimals)
            if t.direction == Transfer.OUT:
                moves[t.asset_id].append(Movement(t.at, units, acquired=False))
            elif other is not None:
                outside = f"received {t.at:%Y-%m-%d} from your wallet outside this scope"
                moves[t.asset_id].append(Movement(t.at, units, acquired=True, unknown=outside))
            else:
                acquisitions.append((t.asset_id, t.at, units))
    prices = PricesOfTheTime([(a, at) for a, at, _ in acquisitions], currency)
    for asset_id, at, units in acquisitions:
        then = prices.at(asset_id, at)
        moves[asset_id].append(Movement(at, units, acquired=True, price=then.price if then else None))
    return {asset_id: average_cost(m) for asset_id, m in moves.items()}


def _history_gaps(ids: list[int], covered: dict, asset_ids: list[int]) -> list[tuple[int, str]]:
    """(asset, reason) for each wallet-chain holding one of ``asset_ids`` whose history is not known in
    full: not backfilled (yet), or complete only from after the wallet was first read. One query, which
    reads only the holdings of such wallet-chains, one row per (asset, backfill state): a scope whose
    histories are all read returns nothing, however many wallets hold the page's assets (whether an
    asset was held before the oldest day read shows in cost_basis's balance check)."""
    ok = Q(backfill__status__in=(Backfill.DONE, Backfill.PARTIAL)) & (
        Q(backfill__complete_from__isnull=True)
        | Q(first_ok_at__isnull=False, backfill__complete_from__lte=F("first_ok_at")))
    gaps = WalletChain.objects.filter(wallet_id__in=ids).exclude(ok).values("pk")
    holders = Holding.objects.filter(wallet_chain_id__in=gaps, asset_id__in=asset_ids).exclude(amount=0)
    if covered:
        holders = holders.exclude(_pairs_q(covered, "wallet_chain__"))
    out = []
    for asset_id, status, complete_from in holders.order_by().values_list(
            "asset_id", "wallet_chain__backfill__status", "wallet_chain__backfill__complete_from").distinct():
        if status not in (Backfill.DONE, Backfill.PARTIAL):
            out.append((asset_id, "history not read yet" if status != Backfill.FAILED else "history could not be read"))
        else:
            out.append((asset_id, f"history complete only from {complete_from:%Y-%m-%d}"))
    return sorted(set(out))
