"""Dashboard figures of a scope whose series is not materialised yet (a portfolio just made or changed):
each wallet's latest snapshot total, read with one index probe per wallet, never a scan of its history."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import JSONField, OuterRef, Subquery

from portfolio.fields import ExactDecimalField
from portfolio.models import ScopeValue, Wallet, WalletChain, WalletValue
from portfolio.overlaps import covered_pairs
from portfolio.pricing.fx import USD, rate_for, rates_from_json
from portfolio.queries import Summary, _quote
from portfolio.services.prices import latest_fx_rates
from portfolio.services.snapshots import scope_key
from portfolio.valuation import ZERO, allocation, exact

PENDING = "pending"  # Summary.history of a scope whose series is being built


def is_materialised(user, wallet_ids: list[int]) -> bool:
    """Whether the scope has a materialised series (ScopeValue rows). One query."""
    return ScopeValue.objects.filter(owner=user, scope_key=scope_key(wallet_ids)).exists()


def latest_wallet_totals(user, wallet_ids: list[int]) -> list[tuple[int, str, object, Decimal, int, dict]]:
    """(wallet id, label, at, value in USD, unpriced, fx_rates) of each wallet's latest snapshot total,
    wallets without one left out. One query: a correlated subquery per column on the (wallet, at)
    unique index, so the cost is one probe per wallet whatever the length of the history."""
    latest = WalletValue.objects.filter(wallet=OuterRef("pk")).order_by("-at")
    rows = (Wallet.objects.filter(owner=user, pk__in=wallet_ids)
            .annotate(v_at=Subquery(latest.values("at")[:1]),
                      v_value=Subquery(latest.values("value")[:1], output_field=ExactDecimalField()),
                      v_unpriced=Subquery(latest.values("unpriced")[:1]),
                      v_fx=Subquery(latest.values("fx_rates")[:1], output_field=JSONField()))
            .filter(v_at__isnull=False)
            .values_list("pk", "label", "address", "v_at", "v_value", "v_unpriced", "v_fx"))
    out = []
    for pk, label, address, at, value, unpriced, fx in rows:
        name = label or (address if len(address) <= 16 else f"{address[:8]}…{address[-6:]}")
        out.append((pk, name, at, value, unpriced or 0, rates_from_json(fx)))
    return out


def _fully_covered_wallets(wallet_ids: list[int]) -> set[int]:
    """Wallets each of whose accounts is counted in another wallet of the scope (their total would count
    twice). Two queries at most."""
    covered: dict[int, int] = {}
    for wallet_id, _chain_id in covered_pairs(wallet_ids):
        covered[wallet_id] = covered.get(wallet_id, 0) + 1
    if not covered:
        return set()
    chains: dict[int, int] = {}
    for wallet_id in WalletChain.objects.filter(wallet_id__in=list(covered)).values_list("wallet_id", flat=True):
        chains[wallet_id] = chains.get(wallet_id, 0) + 1
    return {w for w, n in covered.items() if n >= chains.get(w, 0)}


def wallet_totals_summary(user, wallet_ids: list[int], currency: str, range_key: str) -> Summary | None:
    """The dashboard of a scope without a materialised series: net worth = the sum of its wallets'
    latest totals (a wallet whose every account is counted in another wallet of the scope is left
    out), allocation by wallet, no series and no change figures (``history`` = "pending").
    None when no wallet of the scope has a snapshot yet (then the live path applies). Four queries."""
    totals = latest_wallet_totals(user, wallet_ids)
    if not totals:
        return None
    fully_covered = _fully_covered_wallets(wallet_ids)
    latest_fx = totals[-1][5]
    rate = Decimal(1) if currency == USD else rate_for(currency, latest_fx)
    fx_missing = False
    if rate is None:
        currency, rate, fx_missing = _quote(currency, latest_fx_rates())
    with exact():
        parts = [(w, name, value * rate) for w, name, _at, value, _u, _fx in totals if w not in fully_covered and value]
        net_worth = sum((v for _, _, v in parts), ZERO)
    as_of = max(t[2] for t in totals)
    return Summary(
        currency=currency, range_key=range_key, net_worth=net_worth, as_of=as_of,
        unpriced_count=max((t[4] for t in totals), default=0), unpriced=[],
        change=None, pct=None, twr=None, profit=None, net_flows=None, market=None, series=[],
        allocation={"asset": [], "chain": [], "wallet": allocation(parts), "kind": []},
        freshness=[], fx_rate=rate, fx_missing=fx_missing, history=PENDING,
    )
