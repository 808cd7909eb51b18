"""NFT gallery: the scope's NFTs as a grid. Names and images come from untrusted on-chain metadata, so the
template only ever autoescapes them and renders images through the ``safe_image_url`` filter."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portfolio import queries
from portfolio.models import Wallet
from portfolio.views.dashboard import resolve_scope, sync_state


@require_GET
def nfts(request: HttpRequest) -> HttpResponse:
    scope = resolve_scope(request)
    wallets = list(Wallet.objects.filter(owner=request.user, pk__in=scope.wallet_ids))
    try:
        wallet_filter = int(request.GET.get("wallet", ""))
    except ValueError:
        wallet_filter = None
    if wallet_filter not in {w.pk for w in wallets}:
        wallet_filter = None
    show_spam = request.GET.get("spam") == "1"
    wallet_ids = [wallet_filter] if wallet_filter else scope.wallet_ids
    items = list(queries.nft_items(request.user, wallet_ids)) if wallet_ids else []
    spam_count = sum(1 for i in items if i.collection.is_spam)
    if not show_spam:
        items = [i for i in items if not i.collection.is_spam]
    context = {
        "scope": scope,
        "items": items,
        "wallets": wallets,
        "wallet_filter": wallet_filter,
        "show_spam": show_spam,
        "spam_count": spam_count,
        "sync": sync_state(request.user, scope.wallet_ids),
        "nav_active": "nfts",
    }
    if request.htmx and request.htmx.target == "nft-gallery":
        return render(request, "portfolio/nfts.html#nft-gallery", context)
    return render(request, "portfolio/nfts.html", context)
