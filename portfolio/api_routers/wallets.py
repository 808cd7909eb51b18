"""/api/v1/wallets: list, add (watch-only: secrets refused), read with per-chain sync state, rename, delete.
Every wallet answered carries its value, share of net worth and freshness, as on the wallets page."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.pagination import paginate

from portfolio.api_routers.responses import Page, answers
from portfolio.holdings import add_values, pair_values
from portfolio.models import Portfolio, Wallet, WalletChain
from portfolio.schemas import WalletDetailOut, WalletIn, WalletOut, WalletPatch
from portfolio.services.accounts import ensure_profile
from portfolio.services.wallets import do_add_wallet, do_delete_wallet, do_update_wallet

router = Router(tags=["wallets"])


def _mine(request):
    return Wallet.objects.filter(owner=request.auth).prefetch_related(
        "portfolios", Prefetch("wallet_chains", queryset=WalletChain.objects.select_related("chain")))


def _valued(request, wallets: list[Wallet]) -> list[Wallet]:
    """``wallets`` with value, share and freshness set: one pass over all the user's wallets (a fixed
    number of queries whatever the page size), in the user's quote currency."""
    values = pair_values(request.auth, ensure_profile(request.auth).quote_currency)
    add_values(wallets, values, values.total)
    for wallet in wallets:
        wallet.currency = values.currency
    return wallets


class WalletPage(Page):
    """``Page`` whose wallets carry their values (set after the slice, so only the page is valued)."""

    def paginate_queryset(self, queryset, pagination, request, **params):
        page = super().paginate_queryset(queryset, pagination, request=request, **params)
        page["items"] = _valued(request, list(page["items"]))
        return page


def _detail(request, wallet_id: int) -> Wallet:
    return _valued(request, [get_object_or_404(_mine(request), pk=wallet_id)])[0]


def _owned_portfolios(request, ids) -> list[Portfolio]:
    """The user's portfolios with these ids; any other id is a 422 ("Unknown portfolio.")."""
    wanted = set(ids)
    portfolios = list(Portfolio.objects.filter(owner=request.auth, pk__in=wanted))
    if len(portfolios) != len(wanted):
        raise ValidationError("Unknown portfolio.", code="invalid")
    return portfolios


@router.get("", response=answers({200: list[WalletOut]}), summary="List your wallets, with value, share and freshness")
@paginate(WalletPage)
def list_wallets(request):
    return _mine(request).order_by("family", "label", "pk")


@router.post("", response=answers({201: WalletDetailOut}, write=True, conflict=True),
             summary="Track a watch-only address or extended public key")
def add_wallet(request, payload: WalletIn):
    """Creates one sync unit per enabled chain of the family that matches the address's network. A private
    key, extended private key or seed phrase is refused (422, type "secret") and never stored or echoed;
    an address you already track is a 409."""
    wallet = do_add_wallet(
        request.auth, payload.family, payload.address, label=payload.label,
        portfolios=_owned_portfolios(request, payload.portfolio_ids),
        script_type=payload.script_type, gap_limit=payload.gap_limit,
    )
    return Status(201, _detail(request, wallet.pk))


@router.get("/{wallet_id}", response=answers({200: WalletDetailOut}, lookup=True),
            summary="One of your wallets, with its sync state per chain")
def get_wallet(request, wallet_id: int):
    return _detail(request, wallet_id)


@router.patch("/{wallet_id}", response=answers({200: WalletDetailOut}, write=True, lookup=True),
              summary="Rename a wallet, change its portfolios or (extended keys) its gap limit")
def update_wallet(request, wallet_id: int, payload: WalletPatch):
    wallet = get_object_or_404(Wallet, pk=wallet_id, owner=request.auth)
    if payload.gap_limit is not None and wallet.kind != Wallet.EXTENDED_KEY:
        raise ValidationError({"gap_limit": ValidationError("Only an extended public key has a gap limit.",
                                                            code="invalid")})
    portfolios = _owned_portfolios(request, payload.portfolio_ids) if payload.portfolio_ids is not None else None
    do_update_wallet(wallet, label=payload.label, portfolios=portfolios, gap_limit=payload.gap_limit)
    return _detail(request, wallet_id)


@router.delete("/{wallet_id}", response=answers({204: None}, write=True, lookup=True),
               summary="Stop tracking a wallet (its balances and history go with it)")
def delete_wallet(request, wallet_id: int):
    do_delete_wallet(get_object_or_404(Wallet, pk=wallet_id, owner=request.auth))
    return Status(204, None)
