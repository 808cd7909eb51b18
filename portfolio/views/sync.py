"""Refresh (enqueue a sync of a wallet, a portfolio or all wallets) and the progress of a sync run."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from portfolio.limits import RefreshTooSoon
from portfolio.models import Portfolio, SyncRun, Wallet
from portfolio.sync.progress import sync_status as run_status
from portfolio.sync.run import QueueUnavailable, do_request_sync

TEMPLATE = "portfolio/_sync_status.html"


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _back(request: HttpRequest) -> str:
    """Where a plain (non-htmx) POST returns: ``next`` or the referring page when it is ours."""
    for candidate in (request.POST.get("next"), request.headers.get("referer")):
        if candidate and url_has_allowed_host_and_scheme(candidate, {request.get_host()}, require_https=request.is_secure()):
            return candidate
    return reverse("dashboard")


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("accept", "") and not request.htmx


def _render_status(request: HttpRequest, run: SyncRun, *, status: int = 200) -> HttpResponse:
    data = run_status(run)
    if _wants_json(request):
        return JsonResponse(data, status=status)
    # The template shows ages ("2 min ago"): it gets datetimes, the JSON keeps ISO strings.
    items = [{**item, "last_ok_at_dt": parse_datetime(item["last_ok_at"]) if item["last_ok_at"] else None} for item in data["items"]]
    failures = [item for item in items if item["state"] == "failed"]
    finished_at = parse_datetime(data["finished_at"]) if data["finished_at"] else None
    context = {
        "status": {**data, "items": items, "failures": failures, "failed": len(failures), "finished_at_dt": finished_at},
        "run": run,
        "details_open": not request.htmx,  # the standalone page is the details; on a page they fold away
    }
    name = f"{TEMPLATE}#sync-status" if request.htmx else TEMPLATE
    response = render(request, name, context, status=status)
    if request.htmx and data["finished"]:
        # app.js swaps the page's figures in (its [data-sync-live] regions) when it sees this event.
        response["HX-Trigger"] = "sync-finished"
    return response


@require_POST
def refresh(request: HttpRequest) -> HttpResponse:
    """Enqueue a sync of the posted ``wallet`` or ``portfolio`` (ids; neither: all wallets)."""
    wallet = portfolio = None
    wallet_id, portfolio_id = _int_or_none(request.POST.get("wallet")), _int_or_none(request.POST.get("portfolio"))
    if wallet_id is not None:
        wallet = get_object_or_404(Wallet, pk=wallet_id, owner=request.user)
    elif portfolio_id is not None:
        portfolio = get_object_or_404(Portfolio, pk=portfolio_id, owner=request.user)
    try:
        run = do_request_sync(request.user, portfolio=portfolio, wallet=wallet)
    except RefreshTooSoon as exc:  # portfolio.limits.claim_refresh, called by the sync service
        return _too_soon(request, exc)
    except QueueUnavailable as exc:
        if _wants_json(request):
            return JsonResponse({"detail": str(exc)}, status=503)
        if request.htmx:
            return HttpResponse(f'<p class="message message-error" role="alert">{escape(exc)}</p>', status=503)
        messages.error(request, str(exc))
        return redirect(_back(request))
    if request.htmx or _wants_json(request):
        return _render_status(request, run, status=202)
    return redirect(_back(request))


def _too_soon(request: HttpRequest, exc: RefreshTooSoon) -> HttpResponse:
    """A refresh of the same scope moments ago: 429 + Retry-After for htmx and JSON, a message otherwise."""
    if request.htmx or _wants_json(request):
        response = JsonResponse({"detail": str(exc)}, status=429) if _wants_json(request) else HttpResponse(
            f'<p class="message message-info" role="status">{escape(str(exc))}</p>', status=429
        )
        response["Retry-After"] = str(exc.retry_after)
        return response
    messages.info(request, str(exc))
    return redirect(_back(request))


@require_GET
def sync_status(request: HttpRequest, run_id: int) -> HttpResponse:
    """Progress of one of the user's runs: the polling fragment (htmx), JSON, or a small page."""
    run = get_object_or_404(SyncRun, pk=run_id, owner=request.user)
    return _render_status(request, run)
