"""/api/v1/activity: the transfers of a scope's wallets, newest first, in cursor pages, valued at their
time; filters like the activity page."""

from __future__ import annotations

from typing import Literal

from ninja import Query, Router

from portfolio.activity import ActivityFilters, ActivityRow, activity_page, parse_key, scope_transfers
from portfolio.api_routers.holdings import narrow_to_wallet, scope_and_currency
from portfolio.api_routers.responses import MAX_PAGE, answers, bad_cursor, decode_cursor, encode_cursor
from portfolio.schemas import ActivityPageOut, Currency

router = Router(tags=["activity"])


def activity_out(r: ActivityRow) -> dict:
    return {
        "id": r.id, "at": r.at, "wallet_id": r.wallet.pk, "wallet": str(r.wallet), "chain": r.chain.slug,
        "direction": r.direction, "asset_id": r.asset.pk, "symbol": r.asset.symbol, "asset_address": r.asset.address,
        "decimals": r.asset.decimals, "amount_raw": r.amount_raw, "amount": r.amount, "fee_raw": r.fee_raw,
        "price": r.price, "price_source": r.price_source, "price_at": r.price_at, "value": r.value,
        "counterparty": r.counterparty, "counterparty_url": r.counterparty_url, "internal": r.internal,
        "counterparty_wallet_id": r.counterparty_wallet.pk if r.counterparty_wallet else None, "cancels": r.cancels,
        "tx": r.tx, "tx_url": r.tx_url, "height": r.height,
    }


@router.get("/activity", response=answers({200: ActivityPageOut}, lookup=True),
            summary="Your transfers, newest first (all wallets, a portfolio, a wallet)")
def list_activity(request, portfolio_id: int | None = None, wallet_id: int | None = None,
                  chain: str | None = Query(None, max_length=40, description="A chain slug (see /chains)."),
                  asset_id: int | None = Query(None, ge=1, le=2**63 - 1),
                  direction: Literal["in", "out"] | None = None,
                  currency: Currency | None = Query(None, description="Default: yours."),
                  limit: int = Query(100, ge=1, le=MAX_PAGE),
                  cursor: str | None = Query(None, max_length=2000, description="next_cursor of the previous page.")):
    """Transfers read from the chains' history. ``amount`` is exact (``amount_raw`` in base units);
    ``value`` is at the price of the transfer's time. Accounts reached through two of your wallets count
    once; a transfer between two of your wallets is ``internal`` (and ``cancels`` in flows when the scope
    holds both sides)."""
    wallet_ids, currency = scope_and_currency(request, portfolio_id, currency)
    wallet_ids = narrow_to_wallet(wallet_ids, wallet_id)
    filters = ActivityFilters(chain=chain or "", asset=asset_id, direction=direction or "")
    after = decode_cursor(cursor, (str, int)) if cursor else None
    if after is not None:
        try:
            parse_key(after)
        except ValueError:
            raise bad_cursor() from None
    page = activity_page(request.auth, wallet_ids, currency, filters, after=after, limit=limit)
    count = scope_transfers(request.auth, wallet_ids, filters).count()
    return {"currency": page.currency, "count": count, "items": [activity_out(r) for r in page.rows],
            "next_cursor": encode_cursor(page.next_key) if page.next_key else None,
            "flows_in": page.flows.flows_in, "flows_out": page.flows.flows_out}
