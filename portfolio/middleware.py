"""The app's middleware: a strict Content-Security-Policy (no inline scripts; images from https: and raster
data: URLs only, since NFT images come from anywhere), request ids and metrics, health probes answered
before sessions, secret-bearing query strings kept out of pages and history, a second factor for staff,
and no caching of anything personal."""

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


class StaffSecondFactorMiddleware:
    """With MFA_REQUIRED_FOR_STAFF, a staff user without a second factor can only reach the pages that set
    one up (and sign-out): every other page, the admin included, sends them to the set-up."""

    allowed_prefixes = ("/accounts/", "/static/", "/healthz", "/readyz")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.conf import settings

        user = getattr(request, "user", None)
        if (
            settings.MFA_REQUIRED_FOR_STAFF
            and user is not None
            and user.is_authenticated
            and user.is_staff
            and not request.path.startswith(self.allowed_prefixes)
            and not _has_second_factor(user)
        ):
            from django.contrib import messages
            from django.shortcuts import redirect

            messages.warning(request, "Staff accounts need a second factor: set up an authenticator app to continue.")
            return redirect("mfa_activate_totp")
        return self.get_response(request)


def _has_second_factor(user) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user_id=user.pk).exclude(type=Authenticator.Type.RECOVERY_CODES).exists()


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every answer to a signed-in user and on every CSV and API answer, so
    balances and addresses never stay in a shared or browser cache (static files and asset logos keep
    their caching)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        content_type = response.headers.get("Content-Type", "")
        if (
            (user is not None and user.is_authenticated)
            or request.path.startswith("/api/")
            or content_type.startswith("text/csv")
        ) and not request.path.startswith(("/static/", "/icons/")):  # logos: public, versioned URLs
            response.headers["Cache-Control"] = "no-store"
        return response


class SecretQueryMiddleware:
    """A query parameter holding a private key or seed phrase (a search box, a filter) is dropped before any
    view sees it, so it is never echoed. A page load is redirected to the same URL without it (the browser's
    history keeps only the final URL); an htmx request carries on without it and tells htmx to put the clean
    URL in the address bar and to blank the field (static/js/app.js); the API answers 422."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from chains.secrets import WATCH_ONLY_MESSAGE, secret_kind

        refused = sorted({key for key, values in request.GET.lists() if any(secret_kind(v) for v in values) or secret_kind(key)})
        if not refused:
            return self.get_response(request)
        clean = request.GET.copy()
        for key in refused:
            del clean[key]
        url = request.path + (f"?{clean.urlencode()}" if clean else "")
        if request.path.startswith("/api/"):
            from django.http import JsonResponse

            detail = [{"loc": ["query", "[refused]"], "msg": WATCH_ONLY_MESSAGE, "type": "secret"} for _ in refused]
            return JsonResponse({"detail": detail, "code": "invalid"}, status=422)  # as every API 422 (ValidationErrorOut)
        if request.method in ("GET", "HEAD") and not getattr(request, "htmx", False):
            from django.contrib import messages
            from django.shortcuts import redirect

            messages.error(request, WATCH_ONLY_MESSAGE)
            return redirect(url)
        request.GET = clean
        request.META["QUERY_STRING"] = clean.urlencode()
        response = self.get_response(request)
        response.headers["HX-Replace-Url"] = url
        response.headers["X-Refused-Fields"] = ",".join(k for k in refused if not secret_kind(k))
        return response
