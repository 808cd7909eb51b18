"""Asset logos served from our own origin (stored by the icon worker, portfolio/services/icons.py)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from portfolio.forms import DB_ID_MAX
from portfolio.models import AssetIcon, Holding, NftItem, PositionLeg

ICON_PATH = "/icons/"


@require_GET
def asset_icon(request: HttpRequest, asset_id: int) -> HttpResponse:
    """The stored logo with the type sniffed from its bytes; the browser may not guess another type, and
    the answer runs no script even opened on its own. Its URL carries the digest, so it is cached long.
    Only the logo of an asset on a token list or held by the user (a balance, a position leg, an NFT):
    another user's tokens are not told apart from unknown ids."""
    if asset_id > DB_ID_MAX:  # a foreign-key lookup beyond the column's range would overflow, not miss
        raise Http404("no stored logo")
    seen = (Q(asset__listed=True) | Exists(Holding.objects.filter(asset_id=OuterRef("asset_id"), wallet_chain__wallet__owner=request.user))
            | Exists(PositionLeg.objects.filter(asset_id=OuterRef("asset_id"), position__wallet_chain__wallet__owner=request.user))
            | Exists(NftItem.objects.filter(collection_id=OuterRef("asset_id"), wallet_chain__wallet__owner=request.user)))
    icon = (AssetIcon.objects.filter(seen, asset_id=asset_id).exclude(content_type="")
            .only("content_type", "data").first())
    if icon is None:
        raise Http404("no stored logo")
    response = HttpResponse(bytes(icon.data), content_type=icon.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
