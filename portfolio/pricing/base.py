"""The price-source boundary: what a source is, what it returns, and its one error type.

A price source has a ``name`` (what ``Asset.price_sources`` lists and what a stored
``PricePoint.source`` starts with) and may fetch new prices from outside. Reading the *latest stored*
price is done once for all sources by ``portfolio.services.prices.latest_prices`` (one query), so a
page view never makes a network call: only ``refresh`` may, and only tasks call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, Sequence, runtime_checkable

DEFAULT_ORDER = ("oracle", "coingecko", "manual")


class PricingError(Exception):
    """A source could not answer. ``retry_after`` (seconds) is set when it asked us to slow down."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PriceRateLimited(PricingError):
    """The source answered 429 Too Many Requests."""


@dataclass(frozen=True)
class NewPrice:
    """A price fetched by a source, to be stored as a PricePoint: per whole unit of ``asset_id``."""

    asset_id: int
    price: Decimal
    currency: str
    source: str
    at: datetime


@runtime_checkable
class PriceSource(Protocol):
    """One kind of price. ``stored_prefixes`` are the ``PricePoint.source`` prefixes that belong to it
    (``oracle`` also claims the adapters' ``chainlink:<feed>``)."""

    name: str
    stored_prefixes: tuple[str, ...]
    never_stale: bool  # manual prices do not age

    def refresh(self, assets: Sequence, *, now: datetime) -> list[NewPrice]:
        """Fetch current prices of ``assets`` (portfolio.models.Asset rows, chain selected) from outside.

        Returns what it found (assets it knows nothing about are left out). Sources that only read
        stored rows (oracle: written by the sync; manual: written by an admin) return ``[]``.
        Raises ``PricingError`` (``PriceRateLimited`` on 429) when the outside source fails.
        """
        ...
