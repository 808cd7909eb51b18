"""/api/v1/summary: net worth and performance of a scope over a range, with its value series."""

from __future__ import annotations

from ninja import Query, Router

from portfolio import queries
from portfolio.api_routers.holdings import scope_and_currency
from portfolio.api_routers.responses import INVALID, NOT_FOUND, UNAUTHORIZED
from portfolio.schemas import Currency, RangeKey, SummaryOut

router = Router(tags=["summary"])


@router.get("", response={200: SummaryOut, **UNAUTHORIZED, **NOT_FOUND, **INVALID},
            summary="Net worth, change, profit, flows and time-weighted return over a range")
def get_summary(request, portfolio_id: int | None = None,
                currency: Currency | None = Query(None, description="Default: yours."),
                range_key: RangeKey = Query("30d", alias="range")):
    wallet_ids, currency = scope_and_currency(request, portfolio_id, currency)
    s = queries.dashboard_summary(request.auth, wallet_ids, currency, range_key)
    return {
        "currency": s.currency, "fx_missing": s.fx_missing, "range": s.range_key, "as_of": s.as_of,
        "net_worth": s.net_worth, "change": s.change, "pct": s.pct, "twr": s.twr, "profit": s.profit,
        "net_flows": s.net_flows, "market": s.market,
        "unpriced_count": s.unpriced_count,
        "unpriced": [{"asset_id": a.pk, "symbol": a.symbol, "chain": a.chain.slug} for a in s.unpriced],
        "series": [{"at": at, "value": value} for at, value in s.series],
        "allocation": {
            name: [{"key": str(x.key), "label": x.label, "value": x.value, "share": x.share} for x in slices]
            for name, slices in s.allocation.items()
        },
        "history": s.history,
    }
