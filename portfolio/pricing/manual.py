"""Manual prices: PricePoint rows with source "manual" that an admin enters (any quote currency)."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from portfolio.pricing.base import NewPrice


class ManualSource:
    """Prices an admin sets (admin site or ``services.prices.set_manual_price``). They never go stale:
    the admin decides when they change."""

    name = "manual"
    stored_prefixes = ("manual",)
    never_stale = True

    def refresh(self, assets: Sequence, *, now: datetime) -> list[NewPrice]:
        return []
