"""Holdings: one row per asset in the scope, sortable and filterable by GET parameters (so every view is a
link), paged (100 assets a page), each asset's per-wallet breakdown on request (htmx fragment or plain
page), positions and net worth under the table, and the CSV export of exactly the rows filtered."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Iterable

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from portfolio.activity import add_cost_basis
from portfolio.holdings import (
    HoldingRow, Holdings, add_price_changes, holding_parts, rows_day_before, scope_change_24h, scope_holdings,
)
from portfolio.icons import with_icons
from portfolio.models import Asset, Chain, Wallet
from portfolio.valuation import exact, exact_text, share_of
from portfolio.views.dashboard import Scope, resolve_scope, sync_state

PAGE_SIZE = 100
WALLET_CHOICES = 100
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
    def from_request(cls, request: HttpRequest, wallet_ids: Iterable[int], chains: list[Chain]) -> "Filters":
        get = request.GET
        chain = get.get("chain", "")
        if chain not in {c.slug for c in chains}:
            chain = ""
        try:
            wallet = int(get.get("wallet", ""))
        except ValueError:
            wallet = None
        if wallet not in set(wallet_ids):
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


def _filter(rows: list[HoldingRow], filters: Filters, scope: Scope) -> tuple[list[HoldingRow], dict]:
    """The rows matching the page's filters, and how many spam and dust rows they hide."""
    hidden = {"spam": 0, "dust": 0}
    if filters.chain:
        rows = [r for r in rows if r.asset.chain.slug == filters.chain]
    if filters.q:
        needle = filters.q.lower()
        rows = [r for r in rows if needle in (r.asset.symbol or "").lower() or needle in (r.asset.name or "").lower()
                or needle in (r.asset.address or "").lower()]
    if filters.hide_spam:
        kept = [r for r in rows if not r.asset.is_spam]
        hidden["spam"], rows = len(rows) - len(kept), kept
    if filters.hide_dust:
        threshold = scope.profile.dust_threshold or Decimal(0)
        kept = [r for r in rows if r.value is None or r.value >= threshold]
        hidden["dust"], rows = len(rows) - len(kept), kept
    return rows, hidden


def filtered_rows(request: HttpRequest, scope: Scope) -> tuple[list[HoldingRow], Filters, dict]:
    """All rows the filters keep, sorted (the CSV uses the same function, so it exports what is shown),
    with the scope's totals (``holdings``: net worth, positions, unpriced and NFT counts)."""
    mine = Wallet.objects.filter(owner=request.user)
    if scope.portfolio is not None:
        mine = mine.filter(portfolios=scope.portfolio)
    # A list to pick from while it is short; a long one would be most of the page (an id field instead).
    wallets = list(mine.order_by("label", "pk")[:WALLET_CHOICES + 1])
    chains = list(Chain.objects.filter(wallet_chains__wallet__in=mine).distinct())
    filters = Filters.from_request(request, scope.wallet_ids, chains)
    wallet_ids = [filters.wallet] if filters.wallet else scope.wallet_ids
    result: Holdings = scope_holdings(request.user, wallet_ids, scope.currency, portfolio_id=_whole_portfolio(scope, filters.wallet))
    rows, hidden = _filter(result.rows, filters, scope)
    if filters.sort.lstrip("-") == "change":
        now = timezone.now()
        add_price_changes(rows, result.currency, result.rate, now, rows_day_before(result, now))
    rows = _sort_rows(rows, filters.sort)
    return rows, filters, {"wallets": wallets, "many_wallets": len(wallets) > WALLET_CHOICES, "chains": chains, "total": len(result.rows), "hidden": hidden,
                           "holdings": result, "wallet_ids": wallet_ids}


def _whole_portfolio(scope: Scope, wallet: int | None) -> int | None:
    """The scope's portfolio id when the page shows all of its wallets (its per-asset totals are kept)."""
    return scope.portfolio.pk if scope.portfolio is not None and wallet is None else None


def _page_number(request: HttpRequest, count: int) -> tuple[int, int]:
    """(page, pages) from ``?page=`` (1-based, clamped)."""
    pages = max(1, -(-count // PAGE_SIZE))
    try:
        page = int(request.GET.get("page", "1"))
    except ValueError:
        page = 1
    return min(max(page, 1), pages), pages


@require_GET
def holdings(request: HttpRequest) -> HttpResponse:
    scope = resolve_scope(request)
    rows, filters, extra = filtered_rows(request, scope)
    page, pages = _page_number(request, len(rows))
    page_rows = rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    with_icons([r.asset for r in page_rows])
    result: Holdings = extra["holdings"]
    now = timezone.now()
    if filters.sort.lstrip("-") != "change":  # the prices of 24 hours ago: kept with the rows (or read once)
        add_price_changes(page_rows, result.currency, result.rate, now, rows_day_before(result, now))
    add_cost_basis(request.user, extra["wallet_ids"], [r for r in page_rows if not r.asset.is_spam], result.currency,
                   covered=result.covered)
    with exact():
        shown_value = sum((r.value for r in rows if r.value is not None), Decimal(0))
    context = {
        "change_24h": scope_change_24h(result, now),
        "scope": scope,
        "rows": page_rows,
        "shown": len(rows),
        "page": page,
        "pages": pages,
        "filters": filters,
        "columns": COLUMNS,
        "shown_value": shown_value,
        "unpriced": sum(1 for r in rows if r.unpriced),
        "sync": sync_state(request.user, scope.wallet_ids, all_wallets=scope.portfolio is None),
        "nav_active": "holdings",
        **extra,
    }
    if request.htmx and request.htmx.target == "holdings-table":
        return render(request, "portfolio/holdings.html#holdings-table", context)
    return render(request, "portfolio/holdings.html", context)


@require_GET
def holding_wallets(request: HttpRequest, asset_id: int) -> HttpResponse:
    """One asset's per-wallet breakdown in the scope: the rows under an expanded holding (htmx), or a
    page of its own (the same link without JavaScript)."""
    scope = resolve_scope(request)
    wallet_ids = scope.wallet_ids
    wallet = request.GET.get("wallet", "")
    narrowed = wallet.isdigit() and int(wallet) in scope.wallet_ids
    if narrowed:
        wallet_ids = [int(wallet)]
    asset = Asset.objects.select_related("chain").filter(pk=asset_id).first()
    portfolio_id = _whole_portfolio(scope, int(wallet) if narrowed else None)
    row = next((r for r in scope_holdings(request.user, wallet_ids, scope.currency, with_positions=False,
                                          portfolio_id=portfolio_id, only_asset=asset_id).rows
                if r.asset.pk == asset_id), None) if asset else None
    if row is None:
        raise Http404("not held in this scope")
    parts = holding_parts(request.user, wallet_ids, [asset_id], scope.currency,
                          {asset_id: row.price if row.value is not None else None}).get(asset_id, [])
    context = {"scope": scope, "row": row, "parts": parts, "nav_active": "holdings"}
    if request.htmx:
        return render(request, "portfolio/holding_wallets.html#holding-wallets", context)
    return render(request, "portfolio/holding_wallets.html", context)


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


def _share_pct(value: Decimal | None, total: Decimal) -> str:
    """A share of net worth as a percentage with 2 decimals ("12.34"); empty without a value."""
    share = share_of(value, total) if total > 0 else None
    if share is None:
        return ""
    with exact():
        return format((share * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN), "f")


def _money_cell(value: Decimal | None) -> str:
    return "" if value is None else format(value.quantize(Decimal("0.01")), "f")


def _cost_basis_cells(basis) -> list[str]:
    """The cost-basis columns of a CSV row, exact as on the page's cell (average cost per unit, cost of
    the amount held, unrealised profit, unrealised % = fraction x 100), or only the reason it is
    incomplete; all empty without one (spam, positions)."""
    if basis is None:
        return ["", "", "", "", ""]
    if not basis.complete:
        return ["", "", "", "", _cell(basis.incomplete)]
    with exact():
        pct = None if basis.unrealised_pct is None else basis.unrealised_pct * 100
    return ["" if v is None else exact_text(v) for v in (basis.average_cost, basis.cost, basis.unrealised, pct)] + [""]


@require_GET
def holdings_csv(request: HttpRequest) -> HttpResponse:
    """The filtered rows, then the positions (net value, debt negative): the value column sums to the
    net worth on the page (to the cent per row) when no filter hides a row."""
    scope = resolve_scope(request)
    rows, filters, extra = filtered_rows(request, scope)
    result: Holdings = extra["holdings"]
    now = timezone.now()
    add_price_changes(rows, result.currency, result.rate, now, rows_day_before(result, now))
    add_cost_basis(request.user, extra["wallet_ids"], [r for r in rows if not r.asset.is_spam], result.currency,
                   covered=result.covered)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="holdings-{stamp}.csv"'
    writer = csv.writer(response)
    currency = result.currency
    writer.writerow(["kind", "asset", "name", "chain", "contract", "amount", f"price_{currency}", "price_source",
                     f"value_{currency}", "change_24h", "share_pct", "spam", "status", f"average_cost_{currency}",
                     f"cost_{currency}", f"unrealised_{currency}", "unrealised_pct", "cost_basis_incomplete"])
    for r in rows:
        writer.writerow([
            "holding", _cell(r.asset.symbol), _cell(r.asset.name), _cell(r.asset.chain.slug), _cell(r.asset.address),
            exact_text(r.amount), "" if r.price is None else exact_text(r.price), _cell(r.price_source or ""),
            _money_cell(r.value), "" if r.change_24h is None else format(r.change_24h, "f"),
            _share_pct(r.value, result.net_worth), "yes" if r.asset.is_spam else "", r.status, *_cost_basis_cells(r.cost_basis),
        ])
    if not (filters.chain or filters.q or filters.hide_dust):
        for p in result.positions:
            legs = " + ".join(f"{exact_text(leg.amount)} {leg.asset.symbol}" for leg in p.supplied + p.rewards)
            debt = " - ".join(f"{exact_text(leg.amount)} {leg.asset.symbol}" for leg in p.borrowed)
            writer.writerow([
                "position", _cell(p.protocol), _cell(p.label or p.kind), _cell(p.chain.slug), _cell(p.ref),
                _cell(legs + (f" - {debt}" if debt else "")), "", "", _money_cell(p.value), "",
                _share_pct(p.value, result.net_worth), "", "priced" if p.unpriced_legs == 0 else "partly unpriced",
                *_cost_basis_cells(None),
            ])
    return response
