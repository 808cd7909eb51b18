"""The REST API v1: one NinjaAPI under /api/v1/, its authentication, its routers and the one place that
turns domain errors into responses."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver
from ninja import NinjaAPI
from ninja.security import SessionAuth

from portfolio.api_routers import holdings, portfolios, summary, sync, wallets
from portfolio.limits import RefreshTooSoon


class SignedInSession(SessionAuth):
    """Django's session cookie, with the CSRF token checked on unsafe methods (as ninja's django_auth).

    Unlike django_auth, a request without a signed-in session is a plain 401 before any CSRF check: CSRF
    only matters when a cookie authenticates, and a client without one (later: with a personal token
    that did not match) should learn that it is not signed in, not that a token it never needed is missing."""

    def _get_key(self, request: HttpRequest):
        if not request.user.is_authenticated:
            return None
        return super()._get_key(request)


# Tried in order; the first that returns a user wins. A personal-token auth (ninja.security.HttpBearer)
# goes in front of the session when the roadmap's tokens land: a token request carries no cookie, so
# it never meets the CSRF check.
API_AUTH = [SignedInSession()]

api = NinjaAPI(
    title="Chainfolio API",
    version="1",
    description="Watch-only portfolio data of the signed-in user. Exact numbers are strings. "
    "Another user's object is a 404, never a 403.",
    auth=API_AUTH,
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)

api.add_router("/portfolios", portfolios.router)
api.add_router("/wallets", wallets.router)
api.add_router("/holdings", holdings.router)
api.add_router("/summary", summary.router)
api.add_router("/sync", sync.router)


# --------------------------------------------------------------------------- domain errors

# Domain exception -> HTTP status. PermissionError (an object of another user reaching a service) is
# answered like a missing object, so ids of other users cannot be probed.
DOMAIN_ERRORS: dict[type[Exception], int] = {ValidationError: 422, PermissionError: 404, RefreshTooSoon: 429}


def domain_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    """The one mapping of service-layer errors to responses. Messages are the services' safe ones
    (they never contain the input: a pasted secret is not echoed)."""
    status = next(code for cls, code in DOMAIN_ERRORS.items() if isinstance(exc, cls))
    if status == 429:
        response = api.create_response(request, {"detail": str(exc)}, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    if status == 404:
        return api.create_response(request, {"detail": "Not Found"}, status=404)
    pairs = exc.error_dict.items() if hasattr(exc, "error_dict") else [(None, exc.error_list)]
    errors = [
        {"loc": ["body", "payload", field] if field else ["body"],
         "msg": e.message % e.params if e.params else e.message, "type": e.code or "invalid"}
        for field, field_errors in pairs for e in field_errors
    ]
    return api.create_response(request, {"detail": errors}, status=422)


for _cls in DOMAIN_ERRORS:
    api.add_exception_handler(_cls, domain_error)


# --------------------------------------------------------------------------- URLs


def _not_behind_login_redirect(patterns):
    """LoginRequiredMiddleware redirects anonymous requests to the sign-in page; an API client must get
    a 401 JSON from the auth above instead, so the operation views opt out of the redirect. The docs
    page and the schema keep it: like every page, they are for signed-in users."""
    for p in patterns:
        if isinstance(p, URLResolver):
            _not_behind_login_redirect(p.url_patterns)
        elif isinstance(p, URLPattern) and p.name not in ("openapi-json", "openapi-view"):
            p.callback.login_required = False  # what django.contrib.auth.decorators.login_not_required sets
    return patterns


def url_patterns():
    """(patterns, app_name, namespace) for ``path("api/v1/", api.url_patterns())``."""
    patterns, app_name, namespace = api.urls
    return _not_behind_login_redirect(patterns), app_name, namespace
