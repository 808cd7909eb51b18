"""Who is calling the REST API: a personal token (``Authorization: Bearer cf_…``) or the browser session
(with the CSRF token on unsafe methods), then the token's scope and the request limits."""

from __future__ import annotations

import math

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from portfolio import api_limits
from portfolio.api_routers.responses import ApiError
from portfolio.models import ApiToken
from portfolio.services.tokens import TokenRejected, authenticate_token

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def bearer_challenge(error: str | None = None) -> dict[str, str]:
    """RFC 6750's WWW-Authenticate header of a 401."""
    value = 'Bearer realm="api"' + (f', error="{error}"' if error else "")
    return {"WWW-Authenticate": value}


def admit(request: HttpRequest, user, token: ApiToken | None):
    """The checks after authentication, for tokens and sessions alike: a read-only token may only read
    (403 ``insufficient_scope``), and the token's and the user's request budgets (429 with Retry-After)."""
    if token is not None and token.scope != ApiToken.WRITE and request.method not in SAFE_METHODS:
        raise ApiError(403, "This token is read-only: create a read-write token to change data.", "insufficient_scope")
    refusal = api_limits.check(user, token)
    if refusal is not None:
        wait = max(1, math.ceil(refusal.retry_after))
        raise ApiError(429, f"Too many requests for this {refusal.scope}: retry in {wait} s.", "rate_limited",
                       {"Retry-After": str(wait)})
    return user


class PersonalToken(HttpBearer):
    """``Authorization: Bearer <token>``. A token that does not authenticate is a 401 at once, even when
    a session cookie is sent too: a script must learn that its token is bad, not act as someone else."""

    def __call__(self, request: HttpRequest):
        # Not HttpBearer.__call__: it logs an unexpected header's whole value when DEBUG is on.
        scheme, _, text = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.authenticate(request, text.strip())

    def authenticate(self, request: HttpRequest, token: str):
        try:
            found = authenticate_token(token)
        except TokenRejected as exc:
            raise ApiError(401, str(exc), exc.code, bearer_challenge("invalid_token")) from None
        return admit(request, found.owner, found)


class SignedInSession(SessionAuth):
    """Django's session cookie, with the CSRF token checked on unsafe methods (as ninja's django_auth).

    Unlike django_auth, a request without a signed-in session is a plain 401 before any CSRF check: CSRF
    only matters when a cookie authenticates, and a client without one (a script with a token) should
    learn that it is not signed in, not that a token it never needed is missing."""

    def _get_key(self, request: HttpRequest):
        if not request.user.is_authenticated:
            return None
        try:
            return super()._get_key(request)
        except HttpError:  # ninja's 403 of a failed CSRF check
            raise ApiError(403, "CSRF check failed: send the X-CSRFToken header with the csrftoken cookie's value.",
                           "csrf_failed") from None

    def authenticate(self, request: HttpRequest, key):
        user = super().authenticate(request, key)
        return admit(request, user, None) if user else None


# Tried in order; the first that returns a user wins. A token request carries no cookie, so it never
# meets the CSRF check.
API_AUTH = [PersonalToken(), SignedInSession()]
