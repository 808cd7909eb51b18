"""The REST API v1: one NinjaAPI under /api/v1/, its authentication, its routers and the one place that
turns domain errors into responses."""

from __future__ import annotations

import functools

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, URLResolver, re_path
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.errors import ValidationError as RequestInvalid

from portfolio.api_auth import API_AUTH, bearer_challenge
from portfolio.api_routers import activity, chains, holdings, nfts, portfolios, positions, summary, sync, wallets
from portfolio.api_routers.responses import ApiError
from portfolio.limits import LimitReached, RefreshTooSoon

api = NinjaAPI(
    title="Chainfolio API",
    version="1",
    description="Watch-only portfolio data of the token's (or the signed-in session's) user. Exact numbers are "
    "strings. Another user's object is a 404, never a 403. Every refusal is `{\"detail\": ..., \"code\": ...}`.",
    auth=API_AUTH,
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)

api.add_router("/portfolios", portfolios.router)
api.add_router("/wallets", wallets.router)
api.add_router("/holdings", holdings.router)
api.add_router("/positions", positions.router)
api.add_router("/nfts", nfts.router)
api.add_router("", summary.router)  # /summary, /history, /performance, /allocation
api.add_router("", activity.router)  # /activity
api.add_router("/chains", chains.router)
api.add_router("/sync", sync.router)


# --------------------------------------------------------------------------- errors: one shape

# Codes of the refusals ninja raises itself (HttpError and its subclasses).
HTTP_CODES = {400: "unreadable_body", 401: "not_authenticated", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "duplicate", 429: "rate_limited", 503: "unavailable"}


def error_response(request: HttpRequest, status: int, detail, code: str, headers: dict | None = None) -> HttpResponse:
    response = api.create_response(request, {"detail": detail, "code": code}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(request, exc.status, exc.detail, exc.code, exc.headers)


def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = HTTP_CODES.get(exc.status_code, "error")
    headers = bearer_challenge() if exc.status_code == 401 else None
    return error_response(request, exc.status_code, str(exc), code, headers)


def not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(request, 404, "Not Found", "not_found")


def request_invalid(request: HttpRequest, exc: RequestInvalid) -> HttpResponse:
    # Only where, what and a code: pydantic's "input" (and "ctx", which may quote it) never go back, so a
    # pasted secret in a field of the wrong type is not echoed.
    errors = [{"loc": list(e.get("loc", [])), "msg": e.get("msg", ""), "type": e.get("type", "invalid")}
              for e in exc.errors]
    return error_response(request, 422, errors, "invalid")


def domain_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """The one mapping of service-layer errors to responses. Messages are the services' safe ones (they
    never contain the input: a pasted secret is not echoed). A clash with an existing object is a 409;
    everything else a 422 with the field it concerns."""
    pairs = list(exc.error_dict.items()) if hasattr(exc, "error_dict") else [(None, exc.error_list)]
    flat = [(field, e) for field, field_errors in pairs for e in field_errors]
    message = lambda e: e.message % e.params if e.params else e.message  # noqa: E731
    if any(e.code == "duplicate" for _, e in flat):
        return error_response(request, 409, message(next(e for _, e in flat if e.code == "duplicate")), "duplicate")
    errors = [{"loc": ["body", "payload", field] if field else ["body"], "msg": message(e), "type": e.code or "invalid"}
              for field, e in flat]
    return error_response(request, 422, errors, "invalid")


api.add_exception_handler(ApiError, api_error)
api.add_exception_handler(HttpError, http_error)
api.add_exception_handler(Http404, not_found)
# An object of another user reaching a service is answered like a missing one, so ids cannot be probed.
api.add_exception_handler(PermissionError, not_found)
api.add_exception_handler(RequestInvalid, request_invalid)
api.add_exception_handler(ValidationError, domain_error)


def refresh_too_soon(request: HttpRequest, exc: RefreshTooSoon) -> HttpResponse:
    return error_response(request, 429, str(exc), "rate_limited", {"Retry-After": str(exc.retry_after)})


def limit_reached(request: HttpRequest, exc: LimitReached) -> HttpResponse:
    return error_response(request, 429, exc.messages[0], "limit", {"Retry-After": str(exc.retry_after)})


api.add_exception_handler(RefreshTooSoon, refresh_too_soon)
api.add_exception_handler(LimitReached, limit_reached)  # before ValidationError: ninja takes the closest class


# --------------------------------------------------------------------------- URLs


def _json_not_allowed(view):
    """ninja answers a method a path does not have with Django's empty 405; give it the API's JSON shape
    (the Allow header stays)."""

    @functools.wraps(view)  # keeps csrf_exempt and the other flags ninja set on the view
    def wrapper(request: HttpRequest, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            allowed = response.get("Allow", "")
            response = JsonResponse({"detail": f"Method not allowed (use {allowed}).", "code": "method_not_allowed"},
                                    status=405)
            response["Allow"] = allowed
        return response

    return wrapper


def _not_behind_login_redirect(patterns):
    """LoginRequiredMiddleware redirects anonymous requests to the sign-in page; an API client must get
    a 401 JSON from the auth above instead, so the operation views opt out of the redirect. The docs
    page and the schema keep it: like every page, they are for signed-in users."""
    for p in patterns:
        if isinstance(p, URLResolver):
            _not_behind_login_redirect(p.url_patterns)
        elif isinstance(p, URLPattern) and p.name not in ("openapi-json", "openapi-view"):
            p.callback = _json_not_allowed(p.callback)
            p.callback.login_required = False  # what django.contrib.auth.decorators.login_not_required sets
    return patterns


def unknown_route(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Any other path under /api/v1/: the same JSON 404 as a missing object, not the HTML page."""
    return JsonResponse({"detail": "Not Found", "code": "not_found"}, status=404)


def url_patterns():
    """(patterns, app_name, namespace) for ``path("api/v1/", api.url_patterns())``."""
    patterns, app_name, namespace = api.urls
    patterns = [*patterns, re_path(r"^(?P<rest>.*)$", unknown_route, name="unknown")]
    return _not_behind_login_redirect(patterns), app_name, namespace
