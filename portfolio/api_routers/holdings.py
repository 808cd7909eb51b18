"""/api/v1/holdings: balances per asset across a scope's wallets, exact amounts, prices and values as strings."""

from __future__ import annotations

from ninja import Query, Router

from portfolio import queries
from portfolio.api_routers.responses import INVALID, NOT_FOUND, UNAUTHORIZED
from portfolio.queries import HoldingRow, WalletAmount
from portfolio.schemas import Currency, HoldingsOut
from portfolio.services.accounts import ensure_profile

router = Router(tags=["holdings"])


def scope_and_currency(request, portfolio_id: int | None, currency: str | None) -> tuple[list[int], str]:
    """The scope's wallet ids (another user's portfolio is a 404) and the quote currency (default: the user's)."""
    wallet_ids = queries.scope_wallet_ids(request.auth, portfolio_id)
    return wallet_ids, currency or ensure_profile(request.auth).quote_currency


def _wallet_part(part: WalletAmount) -> dict:
    return {
        "wallet_id": part.wallet.pk, "wallet": str(part.wallet), "chain": part.chain.slug,
        "amount_raw": part.amount_raw, "amount": part.amount, "unconfirmed_raw": part.unconfirmed_raw,
        "value": part.value, "height": part.height, "fetched_at": part.fetched_at,
    }


def holding_out(row: HoldingRow) -> dict:
    asset = row.asset
    return {
        "asset_id": asset.pk, "chain": asset.chain.slug, "symbol": asset.symbol, "name": asset.name,
        "asset_address": asset.address, "decimals": asset.decimals,
        "amount_raw": row.amount_raw, "amount": row.amount, "price": row.price, "price_source": row.price_source,
        "price_at": row.price_at, "price_stale": row.price_stale, "value": row.value, "share": row.share,
        "change_24h": row.change_24h, "unpriced": row.unpriced, "wallets": [_wallet_part(p) for p in row.wallets],
    }


@router.get("", response={200: HoldingsOut, **UNAUTHORIZED, **NOT_FOUND, **INVALID},
            summary="Your balances per asset (all wallets, or one portfolio)")
def list_holdings(request, portfolio_id: int | None = None,
                  currency: Currency | None = Query(None, description="Default: yours.")):
    """Fungible and native balances aggregated per asset, largest value first, unpriced rows last. Amounts
    are exact: ``amount_raw`` in base units, ``amount`` in whole units; ``price``/``value`` are null when
    no source prices the asset."""
    wallet_ids, currency = scope_and_currency(request, portfolio_id, currency)
    rows = queries.holdings_rows(request.auth, wallet_ids, currency) if wallet_ids else []
    used = rows[0].currency if rows else currency
    return {"currency": used, "count": len(rows), "items": [holding_out(r) for r in rows]}
