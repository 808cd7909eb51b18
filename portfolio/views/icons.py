"""Asset logos served from our own origin (stored by the icon worker, portfolio/services/icons.py)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from portfolio.forms import DB_ID_MAX
from portfolio.models import AssetIcon

ICON_PATH = "/icons/"


@require_GET
def asset_icon(request: HttpRequest, asset_id: int) -> HttpResponse:
    """The stored logo with the type sniffed from its bytes; the browser may not guess another type, and
    the answer runs no script even opened on its own. Its URL carries the digest, so it is cached long."""
    if asset_id > DB_ID_MAX:  # a foreign-key lookup beyond the column's range would overflow, not miss
        raise Http404("no stored logo")
    icon = AssetIcon.objects.filter(asset_id=asset_id).exclude(content_type="").only("content_type", "data").first()
    if icon is None:
        raise Http404("no stored logo")
    response = HttpResponse(bytes(icon.data), content_type=icon.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
