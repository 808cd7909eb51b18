"""/api/v1/holdings: balances per asset across a scope's wallets, exact amounts, prices and values as
strings, paged (cursor, or limit/offset), with the scope's net worth and each asset's wallets on request."""

from __future__ import annotations

import base64
import json
from decimal import Decimal, InvalidOperation
from typing import Literal

from django.utils import timezone
from ninja import Query, Router
from ninja.errors import HttpError

from portfolio import queries
from portfolio.api_routers.responses import INVALID, NOT_FOUND, UNAUTHORIZED
from portfolio.holdings import HoldingRow, WalletAmount, add_price_changes, holding_parts, scope_holdings
from portfolio.schemas import Currency, HoldingsOut
from portfolio.services.accounts import ensure_profile
from portfolio.services.prices import latest_fx_rates

router = Router(tags=["holdings"])
MAX_LIMIT = 500


def scope_and_currency(request, portfolio_id: int | None, currency: str | None) -> tuple[list[int], str]:
    """The scope's wallet ids (another user's portfolio is a 404) and the quote currency (default: the user's)."""
    wallet_ids = queries.scope_wallet_ids(request.auth, portfolio_id)
    return wallet_ids, currency or ensure_profile(request.auth).quote_currency


def _wallet_part(part: WalletAmount) -> dict:
    return {
        "wallet_id": part.wallet.pk, "wallet": str(part.wallet), "chain": part.chain.slug,
        "amount_raw": part.amount_raw, "amount": part.amount, "unconfirmed_raw": part.unconfirmed_raw,
        "value": part.value, "height": part.height, "fetched_at": part.fetched_at,
        "also_in": part.also_in.pk if part.also_in else None,
    }


def holding_out(row: HoldingRow) -> dict:
    asset = row.asset
    return {
        "asset_id": asset.pk, "chain": asset.chain.slug, "symbol": asset.symbol, "name": asset.name,
        "asset_address": asset.address, "decimals": asset.decimals,
        "amount_raw": row.amount_raw, "amount": row.amount, "price": row.price, "price_source": row.price_source,
        "price_at": row.price_at, "price_stale": row.price_stale, "value": row.value, "share": row.share,
        "change_24h": row.change_24h, "unpriced": row.unpriced, "status": row.status, "spam": asset.is_spam,
        "holders": row.holders, "wallets": None if row.wallets is None else [_wallet_part(p) for p in row.wallets],
    }


def _cursor_text(row: HoldingRow) -> str:
    """An opaque cursor: the last row's place in the order (unpriced last, value desc, symbol, id)."""
    key = [row.value is None, str(row.value or 0), row.asset.symbol, row.asset.pk]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _after_cursor(rows: list[HoldingRow], cursor: str) -> int:
    """The index of the first row after ``cursor`` (rows are in the cursor's order). A cursor this API
    did not make names no page: HttpError 404 (any string is a well-formed query value)."""
    try:
        unpriced, value, symbol, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key = (bool(unpriced), -Decimal(value), str(symbol), int(pk))
    except (ValueError, TypeError, InvalidOperation):
        raise HttpError(404, "no such cursor") from None
    for i, row in enumerate(rows):
        if (row.value is None, -(row.value or 0), row.asset.symbol, row.asset.pk) > key:
            return i
    return len(rows)


@router.get("", response={200: HoldingsOut, **UNAUTHORIZED, **NOT_FOUND, **INVALID},
            summary="Your balances per asset (all wallets, or one portfolio), paged, with net worth")
def list_holdings(request, portfolio_id: int | None = None,
                  currency: Currency | None = Query(None, description="Default: yours."),
                  limit: int = Query(100, ge=1, le=MAX_LIMIT, description="Assets per page."),
                  cursor: str | None = Query(None, description="``next_cursor`` of the previous page."),
                  offset: int = Query(0, ge=0, le=10**9, description="Kept for compatibility; prefer ``cursor``."),
                  include: Literal["wallets"] | None = Query(None, description="``wallets``: each asset's per-wallet parts.")):
    """Fungible and native balances aggregated per asset, largest value first, unpriced rows last. Amounts
    are exact: ``amount_raw`` in base units, ``amount`` in whole units; ``price``/``value`` are null when
    no source prices the asset (``value`` also with a stale price: it counts as unpriced). ``net_worth``
    = ``holdings_value`` + ``positions_value``, each account counted once, spam in no total: the same
    figure as /summary's when the scope's snapshot is current."""
    wallet_ids, currency = scope_and_currency(request, portfolio_id, currency)
    result = scope_holdings(request.auth, wallet_ids, currency)
    start = _after_cursor(result.rows, cursor) if cursor else offset
    page = result.rows[start:start + limit]
    if page:
        rate = queries._quote(result.currency, latest_fx_rates())[1]
        add_price_changes(page, wallet_ids, result.currency, rate, timezone.now())
    if include == "wallets" and page:
        parts = holding_parts(request.auth, wallet_ids, [r.asset.pk for r in page], result.currency,
                              {r.asset.pk: r.price if r.value is not None else None for r in page})
        for row in page:
            row.wallets = parts.get(row.asset.pk, [])
    more = start + limit < len(result.rows)
    return {
        "currency": result.currency, "count": len(result.rows), "items": [holding_out(r) for r in page],
        "next_cursor": _cursor_text(page[-1]) if more and page else None,
        "holdings_value": result.holdings_value, "positions_value": result.positions_value,
        "net_worth": result.net_worth, "unpriced_count": result.unpriced, "nfts_not_valued": result.nfts_not_valued,
    }
