"""Holdings: one row per asset in the scope, sortable and filterable by GET parameters (so every view is a
link), the table partial for htmx, and the CSV export of exactly the rows shown."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from portfolio import queries
from portfolio.models import Chain, Wallet
from portfolio.valuation import exact_text
from portfolio.views.dashboard import Scope, resolve_scope, sync_state

SORTS = {
    "asset": lambda r: (r.asset.symbol or "").lower(),
    "chain": lambda r: (r.asset.chain.name or "").lower(),
    "amount": lambda r: r.amount,
    "price": lambda r: r.price,
    "value": lambda r: r.value,
    "change": lambda r: r.change_24h,
    "share": lambda r: r.share,
}
DEFAULT_SORT = "-value"
COLUMNS = (
    ("asset", "Asset", ""),
    ("chain", "Chain", "hide-sm"),
    ("amount", "Amount", "num"),
    ("price", "Price", "num hide-sm"),
    ("value", "Value", "num"),
    ("change", "24h", "num hide-sm"),
    ("share", "Share", "num hide-sm"),
)


@dataclass
class Filters:
    """The page's GET parameters, validated: each one a user can put in a link."""

    chain: str
    wallet: int | None
    q: str
    hide_dust: bool
    hide_spam: bool
    sort: str

    @classmethod
    def from_request(cls, request: HttpRequest, wallets: list[Wallet], chains: list[Chain]) -> "Filters":
        get = request.GET
        chain = get.get("chain", "")
        if chain not in {c.slug for c in chains}:
            chain = ""
        try:
            wallet = int(get.get("wallet", ""))
        except ValueError:
            wallet = None
        if wallet not in {w.pk for w in wallets}:
            wallet = None
        sort = get.get("sort", DEFAULT_SORT)
        if sort.lstrip("-") not in SORTS:
            sort = DEFAULT_SORT
        return cls(
            chain=chain,
            wallet=wallet,
            q=get.get("q", "").strip()[:100],
            hide_dust=get.get("hide_dust", "0") == "1",
            # A hidden "0" precedes the checkbox's "1": absent means the default (hide spam).
            hide_spam=get.get("hide_spam", "1") == "1",
            sort=sort,
        )


def _sort_rows(rows: list, sort: str) -> list:
    """Sort by a column; rows without a value (unpriced) always go last."""
    key = SORTS[sort.lstrip("-")]
    descending = sort.startswith("-")
    present = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    present.sort(key=key, reverse=descending)
    return present + missing


def filtered_rows(request: HttpRequest, scope: Scope) -> tuple[list, Filters, dict]:
    """The rows the page shows (the CSV uses the same function, so it exports exactly what is shown)."""
    wallets = list(Wallet.objects.filter(owner=request.user, pk__in=scope.wallet_ids))
    chains = list(Chain.objects.filter(wallet_chains__wallet_id__in=scope.wallet_ids).distinct())
    filters = Filters.from_request(request, wallets, chains)
    wallet_ids = [filters.wallet] if filters.wallet else scope.wallet_ids
    rows = list(queries.holdings_rows(request.user, wallet_ids, scope.currency)) if wallet_ids else []
    total = len(rows)
    hidden = {"spam": 0, "dust": 0}
    if filters.chain:
        rows = [r for r in rows if r.asset.chain.slug == filters.chain]
    if filters.q:
        needle = filters.q.lower()
        rows = [
            r
            for r in rows
            if needle in (r.asset.symbol or "").lower()
            or needle in (r.asset.name or "").lower()
            or needle in (r.asset.address or "").lower()
        ]
    if filters.hide_spam:
        kept = [r for r in rows if not r.asset.is_spam]
        hidden["spam"] = len(rows) - len(kept)
        rows = kept
    if filters.hide_dust:
        threshold = scope.profile.dust_threshold or Decimal(0)
        kept = [r for r in rows if r.value is None or r.value >= threshold]
        hidden["dust"] = len(rows) - len(kept)
        rows = kept
    rows = _sort_rows(rows, filters.sort)
    return rows, filters, {"wallets": wallets, "chains": chains, "total": total, "hidden": hidden}


@require_GET
def holdings(request: HttpRequest) -> HttpResponse:
    scope = resolve_scope(request)
    rows, filters, extra = filtered_rows(request, scope)
    shown_value = sum((r.value for r in rows if r.value is not None), Decimal(0))
    context = {
        "scope": scope,
        "rows": rows,
        "filters": filters,
        "columns": COLUMNS,
        "shown_value": shown_value,
        "unpriced": sum(1 for r in rows if r.value is None),
        "sync": sync_state(request.user, scope.wallet_ids),
        "nav_active": "holdings",
        **extra,
    }
    if request.htmx and request.htmx.target == "holdings-table":
        return render(request, "portfolio/holdings.html#holdings-table", context)
    return render(request, "portfolio/holdings.html", context)


def _cell(text) -> str:
    """CSV cell text, defused: token names are untrusted, so a leading = + - @ cannot become a formula."""
    text = "" if text is None else str(text)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        # Numbers may legitimately be negative; everything else gets a quote prefix.
        try:
            Decimal(text)
            return text
        except Exception:
            return "'" + text
    return text


@require_GET
def holdings_csv(request: HttpRequest) -> HttpResponse:
    scope = resolve_scope(request)
    rows, filters, _ = filtered_rows(request, scope)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="holdings-{stamp}.csv"'
    writer = csv.writer(response)
    currency = scope.currency
    writer.writerow(
        ["asset", "name", "chain", "contract", "amount", f"price_{currency}", "price_source", f"value_{currency}",
         "change_24h", "share", "spam"]
    )
    for r in rows:
        writer.writerow(
            [
                _cell(r.asset.symbol),
                _cell(r.asset.name),
                _cell(r.asset.chain.slug),
                _cell(r.asset.address),
                exact_text(r.amount),
                "" if r.price is None else exact_text(r.price),
                _cell(r.price_source or ""),
                "" if r.value is None else format(r.value.quantize(Decimal("0.01")), "f"),
                "" if r.change_24h is None else format(r.change_24h, "f"),
                "" if r.share is None else format(r.share, "f"),
                "yes" if r.asset.is_spam else "",
            ]
        )
    return response
