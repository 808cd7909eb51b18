"""Price sources by name. Adding one: a module in this package with a class following base.PriceSource,
and one line here."""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module

from portfolio.pricing.base import DEFAULT_ORDER, PriceSource

SOURCES: dict[str, str] = {
    "oracle": "portfolio.pricing.oracle.OracleSource",
    "coingecko": "portfolio.pricing.coingecko.CoinGeckoSource",
    "manual": "portfolio.pricing.manual.ManualSource",
}


@lru_cache(maxsize=None)
def get_source(name: str) -> PriceSource:
    """The source registered as ``name`` (KeyError for an unknown name)."""
    module, _, cls = SOURCES[name].rpartition(".")
    return getattr(import_module(module), cls)()


def source_order(price_sources: list | tuple | None) -> tuple[str, ...]:
    """An asset's order of sources to try: its admin-set list (unknown names dropped) or the default."""
    order = tuple(n for n in (price_sources or ()) if n in SOURCES)
    return order or DEFAULT_ORDER


def source_name_of(stored_source: str) -> str | None:
    """Which registered source a stored ``PricePoint.source`` belongs to (``chainlink:0x..`` -> oracle)."""
    for name in SOURCES:
        if any(stored_source.startswith(p) for p in get_source(name).stored_prefixes):
            return name
    return None
