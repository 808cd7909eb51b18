"""On-chain oracle prices: read by the chain adapters during a sync, stored by services.prices.store_quotes."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from portfolio.pricing.base import NewPrice


class OracleSource:
    """Chainlink-style AggregatorV3 feeds (Asset.oracle_address). The EVM adapter reads them in the same
    Multicall batch as balances, so there is nothing to fetch here: no network calls from this source."""

    name = "oracle"
    stored_prefixes = ("oracle:", "chainlink:")
    never_stale = False

    def refresh(self, assets: Sequence, *, now: datetime) -> list[NewPrice]:
        return []
