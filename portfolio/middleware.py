"""Security headers of the app: a strict Content-Security-Policy (no inline scripts; images from https: and
raster data: URLs only, since NFT images come from anywhere)."""

from __future__ import annotations

import re
import time
import uuid

from django.http import HttpRequest, HttpResponse

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Inline style attributes (share bars, Chart.js canvas sizing) are harmless without inline script.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' https: data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Adds the policy to every response that does not set its own (the admin's is the same, it works)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class RequestMetricsMiddleware:
    """Outermost: gives each request an id (the caller's ``X-Request-ID`` when it looks sane, else a new
    one) for log lines and the response header, and counts and times it per view (the URL pattern's
    name, never the raw path, so label values stay few)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from portfolio import context, metrics

        given = request.headers.get("X-Request-ID", "")
        rid = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
        token = context.request_id.set(rid)
        started = time.monotonic()
        try:
            response = self.get_response(request)
        except Exception:
            metrics.HTTP_REQUESTS.labels(_view_name(request), request.method, "5xx").inc()
            raise
        finally:
            context.request_id.reset(token)
        view = _view_name(request)
        metrics.HTTP_SECONDS.labels(view).observe(time.monotonic() - started)
        metrics.HTTP_REQUESTS.labels(view, request.method if request.method in _METHODS else "other",
                                     f"{response.status_code // 100}xx").inc()
        response.headers.setdefault("X-Request-ID", rid)
        return response


_SANE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
_PROBES = {"/healthz": "healthz", "/readyz": "readyz", "/metrics": "metrics"}


def _view_name(request: HttpRequest) -> str:
    if request.path_info in _PROBES:
        return _PROBES[request.path_info]
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "static" if request.path_info.startswith("/static/") else "unmatched"
    return match.view_name or "unnamed"


class HealthProbeMiddleware:
    """Answers /healthz, /readyz and /metrics before any other middleware: no session, user, CSRF or Host lookup, so
    a probe with a session cookie during a database outage (or from a load balancer using the IP as
    Host) gets its bounded answer instead of a 500 or a hang. Place it first in MIDDLEWARE."""

    def __init__(self, get_response):
        from portfolio.views import ops

        self.get_response = get_response
        self.views = {"/healthz": ops.healthz, "/readyz": ops.readyz, "/metrics": ops.metrics}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = self.views.get(request.path_info)
        if view is None:
            return self.get_response(request)
        return view(request)
