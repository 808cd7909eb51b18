"""Activity: the transfers of the scope, newest first, in keyset pages (``?after=`` the last row's key),
filtered by GET parameters (wallet, chain, asset, direction, so every view is a link), and the CSV of
exactly what the filters keep."""

from __future__ import annotations

import csv

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from ninja.errors import ValidationError as CursorInvalid

from portfolio.activity import (
    DIRECTIONS, ActivityFilters, activity_filter_choices, activity_page, all_rows, parse_key, quote_currency,
    scope_flows,
)
from portfolio.api_routers.responses import decode_cursor, encode_cursor
from portfolio.valuation import exact_text
from portfolio.views.dashboard import Scope, resolve_scope
from portfolio.views.holdings import _cell, _money_cell


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and len(text) < 19 else None


def filters_of(request: HttpRequest, scope: Scope) -> ActivityFilters:
    """The page's filters, each ignored when it is not one of the scope's (a wallet of another scope)."""
    get = request.GET
    wallet = _int(get.get("wallet"))
    direction = get.get("direction", "")
    return ActivityFilters(
        wallet=wallet if wallet in scope.wallet_ids else None,
        chain=get.get("chain", "")[:40],
        asset=_int(get.get("asset")),
        direction=direction if direction in DIRECTIONS else "",
    )


def _after(request: HttpRequest) -> list | None:
    text = request.GET.get("after", "")
    if not text:
        return None
    try:
        key = decode_cursor(text[:2000], (str, int))
        parse_key(key)
        return key
    except (CursorInvalid, ValueError):
        return None  # a mangled link starts at the newest page


@require_GET
def activity(request: HttpRequest) -> HttpResponse:
    scope = resolve_scope(request)
    filters = filters_of(request, scope)
    page = activity_page(request.user, scope.wallet_ids, scope.currency, filters, after=_after(request))
    context = {
        "scope": scope,
        "page": page,
        "flows": scope_flows(request.user, scope.wallet_ids, scope.currency, filters),
        "filters": filters,
        "next_after": encode_cursor(page.next_key) if page.next_key else "",
        "first_page": not request.GET.get("after"),
        "nav_active": "activity",
        **activity_filter_choices(request.user, scope.wallet_ids),
    }
    return render(request, "portfolio/activity.html", context)


@require_GET
def activity_csv(request: HttpRequest) -> HttpResponse:
    """Every transfer the filters keep, newest first (``activity.all_rows``): exact amounts, prices and
    values of the time as decimal text, never a float."""
    scope = resolve_scope(request)
    filters = filters_of(request, scope)
    currency, _ = quote_currency(scope.currency)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="activity-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(["time", "wallet", "chain", "direction", "asset", "contract", "amount", "amount_raw", "fee_raw",
                     f"price_{currency}", "price_source", "price_at", f"value_{currency}", "internal",
                     "counted_in_flows", "counterparty", "tx", "height"])
    for r in all_rows(request.user, scope.wallet_ids, currency, filters):
        writer.writerow([
            r.at.isoformat(), _cell(str(r.wallet)), r.chain.slug,
            "internal " + r.direction if r.internal else r.direction,
            _cell(r.asset.symbol), _cell(r.asset.address), exact_text(r.amount), exact_text(r.amount_raw),
            exact_text(r.fee_raw), "" if r.price is None else exact_text(r.price), _cell(r.price_source),
            r.price_at.isoformat() if r.price_at else "", _money_cell(r.value), "yes" if r.internal else "",
            "no" if r.cancels else "yes", _cell(r.counterparty), _cell(r.tx), "" if r.height is None else r.height,
        ])
    return response
