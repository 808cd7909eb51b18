"""/api/v1/portfolios: the signed-in user's portfolios (read-only for now)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from ninja import Router
from ninja.pagination import paginate

from portfolio.api_routers.responses import Page, INVALID, NOT_FOUND, UNAUTHORIZED
from portfolio.models import Portfolio
from portfolio.schemas import PortfolioOut

router = Router(tags=["portfolios"])


def _mine(request):
    return Portfolio.objects.filter(owner=request.auth).prefetch_related("wallets")


@router.get("", response={200: list[PortfolioOut], **UNAUTHORIZED, **INVALID}, summary="List your portfolios")
@paginate(Page)
def list_portfolios(request):
    return _mine(request).order_by("name", "pk")


@router.get("/{portfolio_id}", response={200: PortfolioOut, **UNAUTHORIZED, **NOT_FOUND, **INVALID},
            summary="One of your portfolios")
def get_portfolio(request, portfolio_id: int):
    return get_object_or_404(_mine(request), pk=portfolio_id)
