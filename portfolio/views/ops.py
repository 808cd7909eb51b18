"""Operational endpoints: liveness and readiness, no sign-in, no internal detail."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portfolio import health


@login_not_required
@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is alive."""
    return JsonResponse({"status": "ok"})


@login_not_required
@require_GET
@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """The database and the broker are reachable (no detail leaks: just which check failed); each probe is
    bounded (portfolio.health), so a hung dependency makes this a quick 503, never a hang."""
    checks = {"database": health.database_ready(), "broker": health.broker_ready()}
    ok = all(checks.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", **{k: "ok" if v else "fail" for k, v in checks.items()}}, status=200 if ok else 503)
