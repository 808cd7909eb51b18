"""Wallet and portfolio pages: list + add, detail, edit, delete. Every object is loaded through its owner."""

from __future__ import annotations


from django.contrib import messages
from django.core.paginator import Paginator
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from portfolio import limits
from portfolio.forms import PortfolioForm, WalletAddForm, WalletEditForm
from portfolio.holdings import Freshness, add_values, pair_values
from portfolio.models import Portfolio, Wallet, WalletChain
from portfolio.overlaps import also_in, covered_pairs, covered_pairs_of_groups, overlap_note
from portfolio.queries import portfolio_freshness
from portfolio.services import wallets as services
from portfolio.services.accounts import ensure_profile
from portfolio.valuation import share_of
from portfolio.wallet_page import wallet_page

SECRET_FIELDS = ("address", "label", "name")


def _wallet_list_context(request: HttpRequest, form: WalletAddForm) -> dict:
    wallets = (
        Wallet.objects.filter(owner=request.user)
        .prefetch_related(Prefetch("wallet_chains", queryset=WalletChain.objects.select_related("chain")), "portfolios")
        .order_by("family", "label", "id")
    )
    page = _page(request, wallets)
    values = pair_values(request.user, ensure_profile(request.user).quote_currency)
    add_values(page, values, values.total)
    return {"wallets": page, "page": page, "form": form, "nav_active": "wallets", "limit": limits.wallet_limit(request.user),
            "currency": values.currency, "total": values.total}


PER_PAGE = 50


def _page(request: HttpRequest, queryset):
    """One page of a list (``?page=``; a page past the end shows the last one, a bad number the first)."""
    return Paginator(queryset, PER_PAGE).get_page(request.GET.get("page"))


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
    """One wallet: value and 24h change, holdings, positions and freshness per chain, the address (or key)
    with its explorer links, the used addresses of an extended key, its NFTs (read from the database)."""
    wallet = get_object_or_404(Wallet, pk=wallet_id, owner=request.user)
    page = wallet_page(request.user, wallet, ensure_profile(request.user).quote_currency)
    overlaps = also_in(request.user.pk, wallet.pk)
    others = Wallet.objects.in_bulk([w for ws in overlaps.values() for w in ws])
    for section in page.sections:
        section.also_in = [others[w] for w in overlaps.get(section.chain.pk, ()) if w in others]
    return render(request, "portfolio/wallet_detail.html",
                  {"wallet": wallet, "page": page, "portfolios": wallet.portfolios.all(), "nav_active": "wallets"})


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
    portfolios = _page(request, Portfolio.objects.filter(owner=request.user).order_by("name", "id"))
    values = pair_values(request.user, ensure_profile(request.user).quote_currency)
    members: dict[int, list[int]] = {p.pk: [] for p in portfolios}
    for portfolio_id, wallet_id in Portfolio.wallets.through.objects.filter(portfolio_id__in=members).values_list("portfolio_id", "wallet_id"):
        members[portfolio_id].append(wallet_id)
    covers = covered_pairs_of_groups(members)
    chains = portfolio_freshness(request.user, list(members))  # cached per portfolio: no count over its WalletChains
    for p in portfolios:
        p.wallet_count = len(members[p.pk])
        p.value = values.of(members[p.pk], covers[p.pk])
        p.share = share_of(p.value, values.total) if values.total > 0 else None
        p.freshness = Freshness(min((r["oldest_ok"] for r in chains[p.pk] if r["oldest_ok"]), default=None),
                                sum(r["failed"] for r in chains[p.pk]), sum(r["never"] for r in chains[p.pk]))
    context = {"portfolios": portfolios, "page": portfolios, "form": form, "nav_active": "portfolios", "limit": limits.portfolio_limit(request.user),
               "currency": values.currency, "total": values.total}
    return render(request, "portfolio/portfolio_list.html", context)


@require_http_methods(["GET"])
def portfolio_detail(request: HttpRequest, portfolio_id: int) -> HttpResponse:
    portfolio = get_object_or_404(Portfolio, pk=portfolio_id, owner=request.user)
    wallets = _page(request, portfolio.wallets.prefetch_related(Prefetch("wallet_chains", queryset=WalletChain.objects.select_related("chain")))
                    .order_by("family", "label", "id"))
    values = pair_values(request.user, ensure_profile(request.user).quote_currency)
    member_ids = list(portfolio.wallets.values_list("pk", flat=True))
    total = values.of(member_ids, covered_pairs(member_ids))
    add_values(wallets, values, total)
    return render(request, "portfolio/portfolio_detail.html", {"portfolio": portfolio, "wallets": wallets, "page": wallets,
                                                                "total": total, "currency": values.currency, "nav_active": "portfolios"})


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
