"""Each (wallet, chain) pair's current holdings value, kept per owner and quote currency in one
PairValueCache row so the lists of wallets and portfolios (and the wallets API) read one row instead of
every holding on each view: flat in the number of holdings.

A pair's value is its non-zero priced holdings in the quote currency, as the holdings page counts them
(``price_status``: spam, NFTs and stale prices in no value); positions are not in it (callers value them
live, from their own small table). The row is used while
- its prices are the current ones: ``token`` names the newest PricePoint and FxRate, ``valid_until`` is
  the first moment a price it used turns stale (then every pair is recomputed);
- it is younger than ``MAX_AGE`` (a write around the code: an admin's bulk spam marking, a shell);
- and the pairs whose holdings changed since are recomputed alone: the holdings' writers (the hooks of
  portfolio/totals.py: the sync's diff writer, a WalletChain's deletion, an ORM save) call ``changed`` in
  their transaction, which lists the pairs in PairValueChange and bumps ``version`` (a locking read,
  and an insert and an update for an owner whose lists were viewed).
A reader stores what it computed only if ``version`` did not move meanwhile (the read took it first)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable

from django.db import connection, transaction
from django.db.models import F
from django.db.models.signals import post_save
from django.utils import timezone

from portfolio.fields import raw_rows
from portfolio.models import Asset, FxRate, Holding, PairValueCache, PairValueChange, PricePoint
from portfolio.pricing.registry import get_source
from portfolio.services.prices import PRICED, Price, latest_prices, price_status, stale_after
from portfolio.valuation import ZERO, exact, to_units

MAX_AGE = timedelta(minutes=5)
Pair = tuple[int, int]  # (wallet id, chain id)


def changed(pairs: Iterable[tuple[int, int, int]]) -> None:
    """These (owner id, wallet id, chain id) pairs' holdings changed: their value is recomputed on the
    next read of their owner's cache. One locking read; an insert and an update for owners with a row."""
    pairs = sorted(set(pairs))
    owners = sorted({o for o, _, _ in pairs})
    if not owners:
        return
    with transaction.atomic():
        # Rows locked in one order (PostgreSQL): two syncs of overlapping owners cannot deadlock here.
        rows = list(PairValueCache.objects.filter(owner_id__in=owners).order_by("owner_id", "currency").select_for_update()
                    .values_list("pk", "owner_id"))
        if not rows:
            return
        cached = {o for _, o in rows}
        PairValueChange.objects.bulk_create([PairValueChange(owner_id=o, wallet_id=w, chain_id=c) for o, w, c in pairs if o in cached])
        PairValueCache.objects.filter(pk__in=[pk for pk, _ in rows]).update(version=F("version") + 1)


def forget(owner_ids: Iterable[int] | None = None) -> None:
    """Recompute every pair of these owners (all owners: None) on their next read."""
    rows = PairValueCache.objects.all() if owner_ids is None else PairValueCache.objects.filter(owner_id__in=sorted(set(owner_ids)))
    rows.update(computed_version=None, version=F("version") + 1)


def price_token() -> str:
    """The newest stored price and FX rate (ids only grow): a new one changes the token. One query."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT (SELECT MAX(id) FROM {connection.ops.quote_name(PricePoint._meta.db_table)}), "
                       f"(SELECT MAX(id) FROM {connection.ops.quote_name(FxRate._meta.db_table)})")
        price, fx = cursor.fetchone()
    return f"{price or 0}:{fx or 0}"


def holding_values(owner_id: int, currency: str, fx: dict[str, Decimal], rate: Decimal, *,
                   now: datetime | None = None, viewed: bool = True) -> dict[Pair, Decimal]:
    """(wallet id, chain id) -> the value of the pair's priced holdings in ``currency`` (at ``rate``
    per USD, ``fx`` the rates of the prices' own currencies); pairs worth nothing are absent. Three
    queries while the row is current (the token, the row, the changed pairs when ``version`` moved).
    ``viewed``: a page asked (the price task revalues the rows viewed lately, not its own)."""
    now = now or timezone.now()
    token = price_token()
    cache, _ = PairValueCache.objects.get_or_create(owner_id=owner_id, currency=currency)
    current = (cache.computed_version is not None and cache.token == token and cache.valid_until is not None
               and now < cache.valid_until and cache.computed_at is not None and timedelta(0) <= now - cache.computed_at < MAX_AGE)
    if current and cache.computed_version == cache.version:
        return _decode(cache.pairs)
    if current:
        stale = list(PairValueChange.objects.filter(owner_id=owner_id).values_list("id", "wallet_id", "chain_id"))
        values, until = _compute(owner_id, fx, rate, now, {(w, c) for _, w, c in stale})
        merged = {**_decode(cache.pairs), **values}
        for pair in {(w, c) for _, w, c in stale} - set(values):
            merged.pop(pair, None)
        # The max age still counts from the last full computation (it bounds writes made around ``changed``).
        values, until, at = merged, min(until, cache.valid_until), cache.computed_at
        last = max((i for i, _, _ in stale), default=None)
    else:
        values, until = _compute(owner_id, fx, rate, now, None)
        at, last = now, PairValueChange.objects.filter(owner_id=owner_id).order_by("-id").values_list("id", flat=True).first()
    with transaction.atomic():
        stored = PairValueCache.objects.filter(pk=cache.pk, version=cache.version).update(
            pairs={f"{w}:{c}": str(v) for (w, c), v in values.items()}, computed_version=cache.version, computed_at=at,
            token=token, valid_until=until, **({"viewed_at": now} if viewed else {}))
        if stored and last is not None:
            PairValueChange.objects.filter(owner_id=owner_id, id__lte=last).delete()
    return values


def do_revalue_viewed(*, within: timedelta = timedelta(hours=1), now: datetime | None = None) -> int:
    """After new prices (the price task): recompute the kept values of the owners whose lists were viewed
    within ``within``, so their next view reads one row instead of every holding. How many rows."""
    from portfolio.queries import _quote
    from portfolio.services.prices import latest_fx_rates

    now = now or timezone.now()
    rows = list(PairValueCache.objects.filter(viewed_at__gte=now - within).values_list("owner_id", "currency"))
    fx = latest_fx_rates() if rows else {}
    for owner_id, currency in rows:
        holding_values(owner_id, currency, fx, _quote(currency, fx)[1], now=now, viewed=False)
    return len(rows)


def _decode(pairs: dict[str, str]) -> dict[Pair, Decimal]:
    out = {}
    for key, value in pairs.items():
        wallet_id, chain_id = key.split(":")
        out[(int(wallet_id), int(chain_id))] = Decimal(value)
    return out


def _compute(owner_id: int, fx: dict[str, Decimal], rate: Decimal, now: datetime,
             pairs: set[Pair] | None) -> tuple[dict[Pair, Decimal], datetime]:
    """The values of the owner's pairs (only ``pairs`` when given) from their holdings, and the first
    moment one of the prices used turns stale. Three queries (holdings, assets, prices)."""
    if pairs is not None and not pairs:
        return {}, now + MAX_AGE
    qs = Holding.objects.filter(wallet_chain__wallet__owner_id=owner_id).exclude(amount=0).exclude(asset__kind=Asset.NFT_COLLECTION)
    if pairs is not None:
        qs = qs.filter(wallet_chain__wallet_id__in=sorted({w for w, _ in pairs}))
    amounts: dict[tuple[int, int, int], int] = defaultdict(int)
    for wallet_id, chain_id, asset_id, raw in raw_rows(qs.order_by().values_list(
            "wallet_chain__wallet_id", "wallet_chain__chain_id", "asset_id", "amount")):
        if pairs is None or (wallet_id, chain_id) in pairs:
            amounts[(wallet_id, chain_id, asset_id)] += int(raw)  # int() of the stored text is exact
    info = {pk: (decimals, kind, spam) for pk, decimals, kind, spam in
            Asset.objects.filter(pk__in=sorted({a for _, _, a in amounts})).values_list("pk", "decimals", "kind", "is_spam")} \
        if amounts else {}
    prices = latest_prices(info, now=now, fx=fx)
    values: dict[Pair, Decimal] = defaultdict(lambda: ZERO)
    with exact():
        for (wallet_id, chain_id, asset_id), raw in amounts.items():
            decimals, kind, spam = info[asset_id]
            if price_status(kind, spam, prices.get(asset_id)) == PRICED:
                values[(wallet_id, chain_id)] += to_units(raw, decimals) * prices[asset_id].usd * rate
    return dict(values), _valid_until(prices.values(), now)


def _valid_until(prices: Iterable[Price], now: datetime) -> datetime:
    """The first moment one of these prices (fresh now) turns stale, or MAX_AGE from now."""
    until = now + MAX_AGE
    for p in prices:
        if not p.stale and not get_source(p.source_name).never_stale:
            until = min(until, p.at + stale_after())
    return until


def _asset_saved(sender, instance: Asset, created: bool = False, raw: bool = False, **kwargs) -> None:
    if not created and not raw:  # spam flag, decimals or price sources edited: any pair may value it
        forget()


def install() -> None:
    post_save.connect(_asset_saved, sender=Asset, dispatch_uid="pair_values_asset")
