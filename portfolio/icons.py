"""Asset logos on pages: which assets have a stored logo, and its URL on our own origin."""

from __future__ import annotations

from typing import Iterable

from django.urls import reverse

from portfolio.models import Asset, AssetIcon


def with_icons(assets: Iterable[Asset]) -> None:
    """Set ``icon_url`` on each asset: its stored logo's URL (versioned by digest, so it can be cached
    for long), or "" (the page shows the symbol's initials). One query."""
    assets = [a for a in assets if a is not None]
    stored = dict(AssetIcon.objects.filter(asset_id__in={a.pk for a in assets}).exclude(content_type="")
                  .values_list("asset_id", "digest"))
    for asset in assets:
        digest = stored.get(asset.pk)
        asset.icon_url = f"{reverse('asset_icon', args=[asset.pk])}?v={digest[:16]}" if digest else ""
