"""Operational endpoints: liveness and readiness, no sign-in, no internal detail."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
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
def favicon(request: HttpRequest) -> HttpResponse:
    """The site icon for pages that name none (the admin, the API docs): the static SVG, from our origin."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


@login_not_required
@require_GET
@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """The database and the broker are reachable (no detail leaks: just which check failed); each probe is
    bounded (portfolio.health), so a hung dependency makes this a quick 503, never a hang."""
    checks = {"database": health.database_ready(), "broker": health.broker_ready()}
    ok = all(checks.values())
    response = JsonResponse({"status": "ok" if ok else "unavailable", **{k: "ok" if v else "fail" for k, v in checks.items()}},
                            status=200 if ok else 503)
    # A 503 here is the probe's answer, not a server error: keep it out of django.request's ERROR lines.
    response._has_been_logged = True
    return response


@login_not_required
@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition. With METRICS_TOKEN set only for ``Authorization: Bearer <token>``; without
    it only for loopback callers (a scraper on the host, or behind a proxy that does not forward it)."""
    from portfolio import metrics as prom

    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return HttpResponse("metrics need the bearer token\n", status=401, content_type="text/plain",
                                headers={"WWW-Authenticate": "Bearer"})
    elif request.META.get("REMOTE_ADDR") not in ("127.0.0.1", "::1") or request.headers.get("X-Forwarded-For"):
        return HttpResponse("metrics are served to loopback only (or set METRICS_TOKEN)\n", status=403, content_type="text/plain")
    body, content_type = prom.render()
    return HttpResponse(body, content_type=content_type)
