"""DeFi and staking positions per protocol: supplied, borrowed, rewards, net value, health factor."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portfolio import queries
from portfolio.views.dashboard import resolve_scope, sync_state


@require_GET
def positions(request: HttpRequest) -> HttpResponse:
    scope = resolve_scope(request)
    rows = list(queries.positions(request.user, scope.wallet_ids, scope.currency)) if scope.wallet_ids else []
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row.protocol, []).append(row)
    context = {
        "scope": scope,
        "groups": sorted(groups.items(), key=lambda kv: kv[0].lower()),
        "sync": sync_state(request.user, scope.wallet_ids),
        "nav_active": "positions",
    }
    return render(request, "portfolio/positions.html", context)
