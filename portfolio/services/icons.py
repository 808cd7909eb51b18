"""Asset logos: fetch each asset's ``logo_url`` (an image, or a Metaplex/ERC metadata document naming
one) once through the safe fetcher (raster only, size-capped) and store it as an AssetIcon, so pages
serve logos from our own origin."""

from __future__ import annotations

import hashlib
import logging
from typing import Callable

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from chains.metadata import MetadataError, fetch_logo, fetch_many
from portfolio.models import Asset, AssetIcon

log = logging.getLogger(__name__)

BATCH = 50  # logos fetched by one run (the task runs every few minutes until none is left)


def icons_due(limit: int = BATCH) -> list[Asset]:
    """Assets with a logo URL whose logo was never fetched, or fetched from another URL (the token list
    changed it). Spam is never fetched: its URLs are the sender's."""
    return list(
        Asset.objects.exclude(logo_url="").filter(is_spam=False)
        .filter(Q(icon__isnull=True) | ~Q(icon__source_url=F("logo_url")))
        .order_by("pk")[:limit]
    )


def do_fetch_icons(*, limit: int = BATCH, fetch: Callable[[str], tuple[str, bytes]] | None = None) -> dict[str, int]:
    """Fetch the logos of up to ``limit`` due assets (a few at a time, within the fetcher's budget) and
    store each answer: the image with its sniffed type, or the reason it was refused (not retried
    until the URL changes). Returns {"stored": n, "refused": m}; URLs not finished within the budget
    are left for the next run."""
    assets = icons_due(limit)
    if not assets:
        return {"stored": 0, "refused": 0}
    fetch = fetch or (lambda uri: fetch_logo(uri, ipfs_gateway=settings.IPFS_GATEWAY))
    answers = fetch_many([a.logo_url for a in assets], fetch)
    counts = {"stored": 0, "refused": 0}
    now = timezone.now()
    for asset in assets:
        if asset.logo_url not in answers:
            continue
        answer = answers[asset.logo_url]
        fields = {"source_url": asset.logo_url, "fetched_at": now}
        if isinstance(answer, BaseException):
            reason = answer.detail if isinstance(answer, MetadataError) else type(answer).__name__
            fields.update(content_type="", data=b"", digest="", error=str(reason)[:200])
            counts["refused"] += 1
        else:
            mime, data = answer
            fields.update(content_type=mime, data=data, digest=hashlib.sha256(data).hexdigest(), error="")
            counts["stored"] += 1
        AssetIcon.objects.update_or_create(asset=asset, defaults=fields)
    if counts["refused"]:
        log.info("asset logos: %(stored)d stored, %(refused)d refused", counts)
    return counts
