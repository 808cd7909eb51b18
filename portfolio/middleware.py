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
    balances and addresses never stay in a shared or browser cache (static files keep their caching)."""

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
        ) and not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response
