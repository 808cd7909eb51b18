"""/api/v1/portfolios: the user's portfolios: list, read, create, rename, delete, add and remove wallets."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.pagination import paginate

from portfolio.api_routers.responses import Page, answers
from portfolio.models import Portfolio, Wallet
from portfolio.schemas import PortfolioIn, PortfolioOut, PortfolioPatch, PortfolioWalletIn
from portfolio.services.wallets import do_create_portfolio, do_delete_portfolio, do_update_portfolio

router = Router(tags=["portfolios"])


def _mine(request):
    return Portfolio.objects.filter(owner=request.auth).prefetch_related("wallets")


def _one(request, portfolio_id: int) -> Portfolio:
    return get_object_or_404(_mine(request), pk=portfolio_id)


def owned_wallets(request, ids, field: str = "wallet_ids") -> list[Wallet]:
    """The user's wallets with these ids; any other id (missing, or another user's) is a 422 on ``field``."""
    wanted = set(ids)
    wallets = list(Wallet.objects.filter(owner=request.auth, pk__in=wanted))
    if len(wallets) != len(wanted):
        raise ValidationError({field: ValidationError("Unknown wallet.", code="invalid")})
    return wallets


@router.get("", response=answers({200: list[PortfolioOut]}), summary="List your portfolios")
@paginate(Page)
def list_portfolios(request):
    return _mine(request).order_by("name", "pk")


@router.post("", response=answers({201: PortfolioOut}, write=True, conflict=True), summary="Create a portfolio")
def create_portfolio(request, payload: PortfolioIn):
    portfolio = do_create_portfolio(request.auth, payload.name, owned_wallets(request, payload.wallet_ids))
    return Status(201, _one(request, portfolio.pk))


@router.get("/{portfolio_id}", response=answers({200: PortfolioOut}, lookup=True), summary="One of your portfolios")
def get_portfolio(request, portfolio_id: int):
    return _one(request, portfolio_id)


@router.patch("/{portfolio_id}", response=answers({200: PortfolioOut}, write=True, lookup=True, conflict=True),
              summary="Rename a portfolio and/or replace its wallets")
def update_portfolio(request, portfolio_id: int, payload: PortfolioPatch):
    portfolio = _one(request, portfolio_id)
    wallets = owned_wallets(request, payload.wallet_ids) if payload.wallet_ids is not None else None
    do_update_portfolio(portfolio, name=payload.name, wallets=wallets)
    return _one(request, portfolio_id)


@router.delete("/{portfolio_id}", response=answers({204: None}, write=True, lookup=True),
               summary="Delete a portfolio (its wallets stay tracked)")
def delete_portfolio(request, portfolio_id: int):
    do_delete_portfolio(_one(request, portfolio_id))
    return Status(204, None)


@router.post("/{portfolio_id}/wallets", response=answers({200: PortfolioOut}, write=True, lookup=True),
             summary="Add one of your wallets to a portfolio (already in it: no change)")
def add_portfolio_wallet(request, portfolio_id: int, payload: PortfolioWalletIn):
    portfolio = _one(request, portfolio_id)
    (wallet,) = owned_wallets(request, [payload.wallet_id], "wallet_id")
    current = list(portfolio.wallets.all())
    if wallet not in current:
        do_update_portfolio(portfolio, wallets=[*current, wallet])
    return _one(request, portfolio_id)


@router.delete("/{portfolio_id}/wallets/{wallet_id}", response=answers({200: PortfolioOut}, write=True, lookup=True),
               summary="Take a wallet out of a portfolio (it stays tracked)")
def remove_portfolio_wallet(request, portfolio_id: int, wallet_id: int):
    portfolio = _one(request, portfolio_id)
    current = list(portfolio.wallets.all())
    if not any(w.pk == wallet_id for w in current):
        raise Http404("not in this portfolio")
    do_update_portfolio(portfolio, wallets=[w for w in current if w.pk != wallet_id])
    return _one(request, portfolio_id)
