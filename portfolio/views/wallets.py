"""Wallet and portfolio pages: list + add, detail, edit, delete. Every object is loaded through its owner."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from portfolio.forms import PortfolioForm, WalletAddForm, WalletEditForm
from portfolio.models import Holding, Portfolio, Wallet, WalletChain
from portfolio.overlaps import also_in, overlap_note
from portfolio.services import wallets as services
from portfolio.valuation import to_units

SECRET_FIELDS = ("address", "label", "name")


def _wallet_list_context(request: HttpRequest, form: WalletAddForm) -> dict:
    wallets = (
        Wallet.objects.filter(owner=request.user)
        .prefetch_related(Prefetch("wallet_chains", queryset=WalletChain.objects.select_related("chain")), "portfolios")
        .order_by("family", "label", "id")
    )
    return {"wallets": wallets, "form": form, "nav_active": "wallets"}


@sensitive_post_parameters(*SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def wallet_list(request: HttpRequest) -> HttpResponse:
    """The user's wallets and the add form (a plain POST, or htmx swapping just the form fragment)."""
    form = WalletAddForm(request.POST or None, owner=request.user)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                wallet = services.do_add_wallet(
                    request.user,
                    data["family"],
                    data["address"],
                    label=data["label"],
                    portfolios=data.get("portfolios", ()),
                    script_type=data["script_type"] or None,
                    gap_limit=data["gap_limit"],
                )
            except ValidationError as exc:
                form.add_service_error(exc, "address")
            else:
                chains = ", ".join(wc.chain.name for wc in wallet.wallet_chains.select_related("chain"))
                messages.success(request, f"Now watching {wallet} on {chains}.")
                if note := overlap_note(wallet):
                    messages.info(request, note)
                if request.htmx:
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = request.path
                    return response
                return redirect("wallets")
        if request.htmx:
            return render(request, "portfolio/wallet_list.html#wallet-form", {"form": form})
    return render(request, "portfolio/wallet_list.html", _wallet_list_context(request, form))


@require_http_methods(["GET"])
def wallet_detail(request: HttpRequest, wallet_id: int) -> HttpResponse:
    """Holdings of one wallet per chain, as last synced (read from the database)."""
    wallet = get_object_or_404(Wallet, pk=wallet_id, owner=request.user)
    wallet_chains = wallet.wallet_chains.select_related("chain").order_by("chain__sort_order", "chain__name")
    holdings = Holding.objects.filter(wallet_chain__wallet=wallet).select_related("asset__chain")
    by_chain: dict[int, list[dict]] = {}
    for h in holdings:
        by_chain.setdefault(h.wallet_chain_id, []).append(
            {
                "asset": h.asset,
                "amount": to_units(h.amount, h.asset.decimals),
                "unconfirmed": to_units(h.unconfirmed, h.asset.decimals) if h.unconfirmed else None,
                "height": h.height,
                "fetched_at": h.fetched_at,
                "token_url": wc_token_url(h),
            }
        )
    overlaps = also_in(request.user.pk, wallet.pk)
    others = Wallet.objects.in_bulk([w for ws in overlaps.values() for w in ws])
    sections = []
    for wc in wallet_chains:
        rows = sorted(by_chain.get(wc.pk, []), key=lambda r: (r["asset"].kind != "native", r["asset"].symbol.lower()))
        link = wc.chain.explorer_link("address", wallet.address) if wallet.kind == Wallet.ADDRESS else ""
        sections.append({"wallet_chain": wc, "chain": wc.chain, "rows": rows, "explorer_url": link,
                         "also_in": [others[w] for w in overlaps.get(wc.chain_id, ()) if w in others]})
    return render(
        request,
        "portfolio/wallet_detail.html",
        {"wallet": wallet, "sections": sections, "portfolios": wallet.portfolios.all(), "nav_active": "wallets"},
    )


def wc_token_url(holding: Holding) -> str:
    asset = holding.asset
    return asset.chain.explorer_link("token", asset.address) if asset.address else ""


@sensitive_post_parameters(*SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def wallet_edit(request: HttpRequest, wallet_id: int) -> HttpResponse:
    wallet = get_object_or_404(Wallet, pk=wallet_id, owner=request.user)
    form = WalletEditForm(request.POST or None, wallet=wallet)
    if request.method == "POST" and form.is_valid():
        try:
            services.do_update_wallet(
                wallet,
                label=form.cleaned_data["label"],
                portfolios=form.cleaned_data.get("portfolios"),
                gap_limit=form.cleaned_data.get("gap_limit"),
            )
        except ValidationError as exc:
            form.add_service_error(exc, "label")
        else:
            messages.success(request, "Wallet saved.")
            return redirect("wallet_detail", wallet_id=wallet.pk)
    return render(request, "portfolio/wallet_form.html", {"wallet": wallet, "form": form, "nav_active": "wallets"})


@require_http_methods(["GET", "POST"])
def wallet_delete(request: HttpRequest, wallet_id: int) -> HttpResponse:
    """GET asks for confirmation; only POST deletes."""
    wallet = get_object_or_404(Wallet, pk=wallet_id, owner=request.user)
    if request.method == "POST":
        name = str(wallet)
        services.do_delete_wallet(wallet)
        messages.success(request, f"Stopped watching {name}.")
        return redirect("wallets")
    return render(request, "portfolio/wallet_confirm_delete.html", {"wallet": wallet, "nav_active": "wallets"})


# --------------------------------------------------------------------------- portfolios


@sensitive_post_parameters(*SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def portfolio_list(request: HttpRequest) -> HttpResponse:
    form = PortfolioForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            portfolio = services.do_create_portfolio(request.user, form.cleaned_data["name"], form.cleaned_data["wallets"])
        except ValidationError as exc:
            form.add_service_error(exc, "name")
        else:
            messages.success(request, f"Portfolio “{portfolio.name}” created.")
            return redirect("portfolio_detail", portfolio_id=portfolio.pk)
    portfolios = Portfolio.objects.filter(owner=request.user).annotate(wallet_count=Count("wallets"))
    return render(request, "portfolio/portfolio_list.html", {"portfolios": portfolios, "form": form, "nav_active": "portfolios"})


@require_http_methods(["GET"])
def portfolio_detail(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    portfolio = get_object_or_404(Portfolio, pk=portfolio_id, owner=request.user)
    wallets = portfolio.wallets.prefetch_related(Prefetch("wallet_chains", queryset=WalletChain.objects.select_related("chain")))
    return render(request, "portfolio/portfolio_detail.html", {"portfolio": portfolio, "wallets": wallets, "nav_active": "portfolios"})


@sensitive_post_parameters(*SECRET_FIELDS)
@require_http_methods(["GET", "POST"])
def portfolio_edit(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    portfolio = get_object_or_404(Portfolio, pk=portfolio_id, owner=request.user)
    form = PortfolioForm(request.POST or None, owner=request.user, portfolio=portfolio)
    if request.method == "POST" and form.is_valid():
        try:
            services.do_update_portfolio(portfolio, name=form.cleaned_data["name"], wallets=form.cleaned_data["wallets"])
        except ValidationError as exc:
            form.add_service_error(exc, "name")
        else:
            messages.success(request, "Portfolio saved.")
            return redirect("portfolio_detail", portfolio_id=portfolio.pk)
    return render(request, "portfolio/portfolio_form.html", {"portfolio": portfolio, "form": form, "nav_active": "portfolios"})


@require_http_methods(["GET", "POST"])
def portfolio_delete(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    """GET asks for confirmation; only POST deletes (the wallets stay)."""
    portfolio = get_object_or_404(Portfolio, pk=portfolio_id, owner=request.user)
    if request.method == "POST":
        name = portfolio.name
        services.do_delete_portfolio(portfolio)
        messages.success(request, f"Portfolio “{name}” deleted. Its wallets are still tracked.")
        return redirect("portfolios")
    return render(request, "portfolio/portfolio_confirm_delete.html", {"portfolio": portfolio, "nav_active": "portfolios"})
