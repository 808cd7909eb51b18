"""/api/v1/wallets: list, add (watch-only: secrets refused), read with per-chain sync state, delete."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.pagination import paginate

from portfolio.api_routers.responses import Page, INVALID, NOT_FOUND, UNAUTHORIZED, UNREADABLE, UNSAFE
from portfolio.models import Portfolio, Wallet
from portfolio.schemas import WalletDetailOut, WalletIn, WalletOut
from portfolio.services.wallets import do_add_wallet, do_delete_wallet

router = Router(tags=["wallets"])


def _mine(request):
    return Wallet.objects.filter(owner=request.auth).prefetch_related("portfolios")


def _detail(request, wallet_id: int) -> Wallet:
    return get_object_or_404(_mine(request).prefetch_related("wallet_chains__chain"), pk=wallet_id)


@router.get("", response={200: list[WalletOut], **UNAUTHORIZED, **INVALID}, summary="List your wallets")
@paginate(Page)
def list_wallets(request):
    return _mine(request).order_by("family", "label", "pk")


@router.post("", response={201: WalletDetailOut, **UNREADABLE, **UNAUTHORIZED, **UNSAFE, **INVALID},
             summary="Track a watch-only address or extended public key")
def add_wallet(request, payload: WalletIn):
    """Creates one sync unit per enabled chain of the family that matches the address's network. A private
    key, extended private key or seed phrase is refused (422, type "secret") and never stored or echoed."""
    wanted = set(payload.portfolio_ids)
    portfolios = list(Portfolio.objects.filter(owner=request.auth, pk__in=wanted))
    if len(portfolios) != len(wanted):
        raise ValidationError("Unknown portfolio.", code="invalid")
    wallet = do_add_wallet(
        request.auth, payload.family, payload.address, label=payload.label, portfolios=portfolios,
        script_type=payload.script_type, gap_limit=payload.gap_limit,
    )
    return Status(201, _detail(request, wallet.pk))


@router.get("/{wallet_id}", response={200: WalletDetailOut, **UNAUTHORIZED, **NOT_FOUND, **INVALID},
            summary="One of your wallets, with its sync state per chain")
def get_wallet(request, wallet_id: int):
    return _detail(request, wallet_id)


@router.delete("/{wallet_id}", response={204: None, **UNAUTHORIZED, **UNSAFE, **NOT_FOUND, **INVALID},
               summary="Stop tracking a wallet (its balances and history go with it)")
def delete_wallet(request, wallet_id: int):
    do_delete_wallet(get_object_or_404(Wallet, pk=wallet_id, owner=request.auth))
    return Status(204, None)
