"""NFT gallery: the scope's NFTs as a grid, paged. Names and images come from untrusted on-chain metadata, so the
template only ever autoescapes them and renders images through the ``safe_image_url`` filter."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portfolio import queries
from portfolio.models import Wallet
from portfolio.views.dashboard import resolve_scope, sync_state


PER_PAGE = 48
WALLET_CHOICES = 100


@require_GET
def nfts(request: HttpRequest) -> HttpResponse:
    """The scope's NFTs, 48 a page (``?page=``), filtered by wallet and spam in the database."""
    scope = resolve_scope(request)
    mine = Wallet.objects.filter(owner=request.user, pk__in=scope.wallet_ids).order_by("label", "pk")
    wallets = list(mine[:WALLET_CHOICES + 1])  # a list to pick from while short; an id field past that
    try:
        wallet_filter = int(request.GET.get("wallet", ""))
    except ValueError:
        wallet_filter = None
    if wallet_filter not in set(scope.wallet_ids):
        wallet_filter = None
    show_spam = request.GET.get("spam") == "1"
    wallet_ids = [wallet_filter] if wallet_filter else scope.wallet_ids
    items = queries.nft_items(request.user, wallet_ids)
    spam_count = items.filter(collection__is_spam=True).count() if wallet_ids else 0
    if not show_spam:
        items = items.filter(collection__is_spam=False)
    page = Paginator(items.order_by("collection__name", "collection_id", "token_id", "pk"), PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "scope": scope,
        "items": page.object_list if wallet_ids else [],
        "page": page,
        "wallets": wallets[:WALLET_CHOICES],
        "many_wallets": len(wallets) > WALLET_CHOICES,
        "wallet_filter": wallet_filter,
        "show_spam": show_spam,
        "spam_count": spam_count,
        "sync": sync_state(request.user, scope.wallet_ids),
        "nav_active": "nfts",
    }
    if request.htmx and request.htmx.target == "nft-gallery":
        return render(request, "portfolio/nfts.html#nft-gallery", context)
    return render(request, "portfolio/nfts.html", context)
