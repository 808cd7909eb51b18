"""Security headers of the app: a strict Content-Security-Policy (no inline scripts; images from https: and
raster data: URLs only, since NFT images come from anywhere)."""

from __future__ import annotations

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


class HealthProbeMiddleware:
    """Answers /healthz and /readyz before any other middleware: no session, user, CSRF or Host lookup, so
    a probe with a session cookie during a database outage (or from a load balancer using the IP as
    Host) gets its bounded answer instead of a 500 or a hang. Place it first in MIDDLEWARE."""

    def __init__(self, get_response):
        from portfolio.views import ops

        self.get_response = get_response
        self.views = {"/healthz": ops.healthz, "/readyz": ops.readyz}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = self.views.get(request.path_info)
        if view is None:
            return self.get_response(request)
        return view(request)
