"""Foreign-exchange helpers: FxRate rows hold units of a quote currency per 1 USD (CoinGecko or admin)."""

from __future__ import annotations

from decimal import Decimal

USD = "USD"


def rate_for(currency: str, rates: dict[str, Decimal]) -> Decimal | None:
    """Units of ``currency`` per USD from a rates map (USD is always 1); ``None`` if unknown."""
    if currency == USD:
        return Decimal(1)
    return rates.get(currency)


def rates_to_json(rates: dict[str, Decimal]) -> dict[str, str]:
    """For JSON columns (ScopeValue.fx_rates): exact strings."""
    return {k: format(v, "f") for k, v in rates.items()}


def rates_from_json(data: dict | None) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in (data or {}).items()}
