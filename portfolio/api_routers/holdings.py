"""/api/v1/holdings: balances per asset across a scope's wallets, exact amounts, prices and values as
strings; filters like the holdings page, cursor pages."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from django.http import Http404
from django.utils import timezone
from ninja import Query, Router

from portfolio import queries
from portfolio.activity import add_cost_basis
from portfolio.api_routers.responses import MAX_PAGE, answers, bad_cursor, decode_cursor, encode_cursor
from portfolio.costbasis import CostBasis
from portfolio.holdings import (
    HoldingRow, WalletAmount, add_price_changes, holding_parts, rows_day_before, scope_change_24h, scope_holdings,
)
from portfolio.schemas import Currency, HoldingsOut
from portfolio.services.accounts import ensure_profile

router = Router(tags=["holdings"])

PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,300}(\.[0-9]{1,300})?")


def scope_and_currency(request, portfolio_id: int | None, currency: str | None) -> tuple[list[int], str]:
    """The scope's wallet ids (another user's portfolio is a 404) and the quote currency (default: the user's)."""
    wallet_ids = queries.scope_wallet_ids(request.auth, portfolio_id)
    return wallet_ids, currency or ensure_profile(request.auth).quote_currency


def narrow_to_wallet(wallet_ids: list[int], wallet_id: int | None) -> list[int]:
    """The scope, or just ``wallet_id`` when given: it must be one of the scope's wallets (else 404)."""
    if wallet_id is None:
        return wallet_ids
    if wallet_id not in wallet_ids:
        raise Http404("no such wallet in this scope")
    return [wallet_id]


def _wallet_part(part: WalletAmount) -> dict:
    return {
        "wallet_id": part.wallet.pk, "wallet": str(part.wallet), "chain": part.chain.slug,
        "amount_raw": part.amount_raw, "amount": part.amount, "unconfirmed_raw": part.unconfirmed_raw,
        "value": part.value, "height": part.height, "fetched_at": part.fetched_at,
        "also_in": part.also_in.pk if part.also_in else None,
    }


def holding_out(row: HoldingRow, with_wallets: bool = True) -> dict:
    asset = row.asset
    return {
        "asset_id": asset.pk, "chain": asset.chain.slug, "symbol": asset.symbol, "name": asset.name,
        "asset_address": asset.address, "decimals": asset.decimals,
        "amount_raw": row.amount_raw, "amount": row.amount, "price": row.price, "price_source": row.price_source,
        "price_at": row.price_at, "price_stale": row.price_stale, "value": row.value, "share": row.share,
        "change_24h": row.change_24h, "unpriced": row.unpriced, "status": row.status, "is_spam": asset.is_spam,
        "holders": row.holders, "wallets": [_wallet_part(p) for p in row.wallets or []] if with_wallets else None,
        "cost_basis": _cost_basis(row.cost_basis),
    }


def _cost_basis(basis: CostBasis | None) -> dict | None:
    if basis is None:
        return None
    return {"complete": basis.complete, "incomplete": basis.incomplete, "average_cost": basis.average_cost,
            "cost": basis.cost, "unrealised": basis.unrealised, "unrealised_pct": basis.unrealised_pct}


def _order(value: Decimal | None, symbol: str, asset_id: int) -> tuple:
    """Largest value first, unpriced last, then by symbol and id (a total order, so cursors are exact)."""
    return (value is None, -(value or 0), symbol, asset_id)


def _after_cursor(rows: list[HoldingRow], cursor: str) -> list[HoldingRow]:
    value, symbol, asset_id = decode_cursor(cursor, ((str, type(None)), str, int))
    # Plain decimal text as this API writes it: no NaN (cannot be ordered), no exponent (could overflow).
    if value is not None and not PLAIN_DECIMAL.fullmatch(value):
        raise bad_cursor()
    start = _order(Decimal(value) if value is not None else None, symbol, asset_id)
    return [r for r in rows if _order(r.value, r.asset.symbol, r.asset.pk) > start]


@router.get("", response=answers({200: HoldingsOut}, lookup=True),
            summary="Your balances per asset (all wallets, a portfolio, a wallet, a chain)")
def list_holdings(request, portfolio_id: int | None = None, wallet_id: int | None = None,
                  chain: str | None = Query(None, max_length=40, description="A chain slug (see /chains)."),
                  include_spam: bool = Query(False, description="Include assets marked as spam."),
                  include_dust: bool = Query(True, description="false: leave out balances worth less than your "
                                             "dust threshold (Settings), unpriced ones are kept."),
                  include: Literal["wallets"] | None = Query(None, description="wallets: add the per-wallet breakdown."),
                  currency: Currency | None = Query(None, description="Default: yours."),
                  limit: int = Query(100, ge=1, le=MAX_PAGE),
                  cursor: str | None = Query(None, max_length=2000, description="next_cursor of the previous page."),
                  offset: int = Query(0, ge=0, le=10**9, description="Kept for compatibility; prefer cursor.")):
    """Fungible and native balances aggregated per asset, largest value first, unpriced rows last. Amounts
    are exact: ``amount_raw`` in base units, ``amount`` in whole units; ``price``/``value`` are null when
    no source prices the asset (``value`` also with a stale price: it counts as unpriced). The scope's
    ``net_worth`` = ``holdings_value`` + ``positions_value`` (each account counted once, spam in no
    total) ignores the filters: the same figure as /summary's."""
    wallet_ids, currency = scope_and_currency(request, portfolio_id, currency)
    wallet_ids = narrow_to_wallet(wallet_ids, wallet_id)
    result = scope_holdings(request.auth, wallet_ids, currency, portfolio_id=portfolio_id if wallet_id is None else None)
    rows, used = list(result.rows), result.currency
    if chain:
        rows = [r for r in rows if r.asset.chain.slug == chain]
    if not include_spam:
        rows = [r for r in rows if not r.asset.is_spam]
    if not include_dust:
        threshold = ensure_profile(request.auth).dust_threshold or Decimal(0)
        rows = [r for r in rows if r.value is None or r.value >= threshold]
    rows.sort(key=lambda r: _order(r.value, r.asset.symbol, r.asset.pk))
    count = len(rows)
    if cursor:
        rows = _after_cursor(rows, cursor)
    elif offset:
        rows = rows[offset:]
    page, more = rows[:limit], len(rows) > limit
    now = timezone.now()
    if page:  # price changes and per-wallet parts for this page only (24 hours ago: kept with the rows)
        add_price_changes(page, used, result.rate, now, rows_day_before(result, now))
        add_cost_basis(request.auth, wallet_ids, [r for r in page if not r.asset.is_spam], used, covered=result.covered)
    total = scope_change_24h(result, now)
    if include == "wallets" and page:
        parts = holding_parts(request.auth, wallet_ids, [r.asset.pk for r in page], used,
                              {r.asset.pk: r.price if r.value is not None else None for r in page})
        for row in page:
            row.wallets = parts.get(row.asset.pk, [])
    last = page[-1] if page else None
    next_cursor = encode_cursor([None if last.value is None else format(last.value, "f"), last.asset.symbol,
                                 last.asset.pk]) if more and last else None
    return {"currency": used, "count": count, "items": [holding_out(r, include == "wallets") for r in page],
            "next_cursor": next_cursor, "holdings_value": result.holdings_value, "positions_value": result.positions_value,
            "net_worth": result.net_worth, "unpriced_count": result.unpriced, "nfts_not_valued": result.nfts_not_valued,
            "change_24h_value": total.value, "change_24h": total.pct}
