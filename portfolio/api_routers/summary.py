"""/api/v1/summary, /history, /performance, /allocation: net worth and performance of a scope over a range,
its value series and its allocation, all from the dashboard's own read model (queries.dashboard_summary)."""

from __future__ import annotations

from typing import Literal

from ninja import Query, Router

from portfolio import queries
from portfolio.api_routers.holdings import scope_and_currency
from portfolio.api_routers.responses import answers
from portfolio.schemas import AllocationOut, Currency, HistoryOut, PerformanceOut, RangeKey, SummaryOut

router = Router(tags=["performance"])

CURRENCY = Query(None, description="Default: yours.")
RANGE = Query("30d", alias="range", description="24h, 7d, 30d, 90d, 1y or all.")


def dashboard(request, portfolio_id: int | None, currency: str | None, range_key: str) -> queries.Summary:
    """The dashboard's summary of the scope (another user's portfolio is a 404)."""
    wallet_ids, currency = scope_and_currency(request, portfolio_id, currency)
    return queries.dashboard_summary(request.auth, wallet_ids, currency, range_key)


def _figures(s: queries.Summary) -> dict:
    return {
        "currency": s.currency, "fx_missing": s.fx_missing, "range": s.range_key, "as_of": s.as_of,
        "net_worth": s.net_worth, "change": s.change, "pct": s.pct, "twr": s.twr, "profit": s.profit,
        "net_flows": s.net_flows, "market": s.market, "unpriced_count": s.unpriced_count,
    }


def _series(s: queries.Summary) -> list[dict]:
    return [{"at": at, "value": value} for at, value in s.series]


def _slices(slices) -> list[dict]:
    return [{"key": str(x.key), "label": x.label, "value": x.value, "share": x.share} for x in slices]


@router.get("/summary", response=answers({200: SummaryOut}, lookup=True),
            summary="Net worth, change, profit, flows, time-weighted return, series and allocation over a range")
def get_summary(request, portfolio_id: int | None = None, currency: Currency | None = CURRENCY,
                range_key: RangeKey = RANGE):
    s = dashboard(request, portfolio_id, currency, range_key)
    return {
        **_figures(s),
        "unpriced": [{"asset_id": a.pk, "symbol": a.symbol, "chain": a.chain.slug} for a in s.unpriced],
        "series": _series(s),
        "allocation": {name: _slices(slices) for name, slices in s.allocation.items()},
        "history": s.history,
    }


@router.get("/history", response=answers({200: HistoryOut}, lookup=True),
            summary="Net-worth series over a range (all wallets or one portfolio)")
def get_history(request, portfolio_id: int | None = None, currency: Currency | None = CURRENCY,
                range_key: RangeKey = RANGE):
    s = dashboard(request, portfolio_id, currency, range_key)
    return {"currency": s.currency, "fx_missing": s.fx_missing, "range": s.range_key, "as_of": s.as_of,
            "series": _series(s), "history": s.history}


@router.get("/performance", response=answers({200: PerformanceOut}, lookup=True),
            summary="Change, profit, net flows, market move and time-weighted return over a range")
def get_performance(request, portfolio_id: int | None = None, currency: Currency | None = CURRENCY,
                    range_key: RangeKey = RANGE):
    return _figures(dashboard(request, portfolio_id, currency, range_key))


@router.get("/allocation", response=answers({200: AllocationOut}, lookup=True),
            summary="Net worth by asset, chain, wallet or kind (tokens, NFTs, DeFi positions)")
def get_allocation(request, portfolio_id: int | None = None, currency: Currency | None = CURRENCY,
                   by: Literal["asset", "chain", "wallet", "kind"] = Query("asset")):
    s = dashboard(request, portfolio_id, currency, "24h")
    return {"currency": s.currency, "by": by, "as_of": s.as_of, "net_worth": s.net_worth,
            "items": _slices(s.allocation.get(by, []))}
