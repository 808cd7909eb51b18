"""Personal API tokens: create (the plain token is returned once and never stored), revoke, authenticate."""

from __future__ import annotations

import hashlib
import logging
import secrets
import string
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from portfolio.logging import API_TOKEN_PREFIX
from portfolio.models import ApiToken
from portfolio.services.wallets import refuse_secret_text

log = logging.getLogger(__name__)

_ALPHABET = string.ascii_letters + string.digits
TOKEN_BODY_LENGTH = 40  # 40 base62 characters: ~238 bits, so a plain SHA-256 (no salt, no slow hash) is enough
PREFIX_LENGTH = len(API_TOKEN_PREFIX) + 8
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_ACTIVE_TOKENS = 50


class TokenRejected(Exception):
    """The presented token cannot authenticate. ``code``: ``invalid_token``, ``token_revoked``,
    ``token_expired`` or ``inactive_user``; the message is safe to show (it never holds the token)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_text() -> str:
    return API_TOKEN_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_BODY_LENGTH))


def do_create_api_token(owner, name: str, scope: str, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Create a token for ``owner``; returns the row and the plain token (shown to the user once).

    Raises ``ValidationError``: code ``required`` (no name), ``secret`` (a key in the name), ``invalid``
    (unknown scope, expiry in the past) or ``limit`` (too many active tokens)."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("A token needs a name.", code="required")
    refuse_secret_text(name)
    if scope not in dict(ApiToken.SCOPE_CHOICES):
        raise ValidationError("Unknown scope.", code="invalid")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError("The expiry must be in the future.", code="invalid")
    active = ApiToken.objects.filter(owner=owner, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
    if active.count() >= MAX_ACTIVE_TOKENS:
        raise ValidationError(f"At most {MAX_ACTIVE_TOKENS} active tokens: revoke one first.", code="limit")
    text = new_token_text()
    token = ApiToken.objects.create(owner=owner, name=name[:80], scope=scope, expires_at=expires_at,
                                    prefix=text[:PREFIX_LENGTH], digest=digest_of(text))
    log.info("api token created", extra={"user_id": owner.pk, "token_id": token.pk, "scope": scope})
    return token, text


def do_revoke_api_token(token: ApiToken) -> None:
    """Revoke at once (the next request with it is a 401). Idempotent."""
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        log.info("api token revoked", extra={"user_id": token.owner_id, "token_id": token.pk})


def authenticate_token(text: str, *, now: datetime | None = None) -> ApiToken:
    """The active token whose SHA-256 matches ``text`` (``owner`` loaded), its last-used time refreshed
    when older than a minute. Raises ``TokenRejected``."""
    now = now or timezone.now()
    if not text.startswith(API_TOKEN_PREFIX) or len(text) != len(API_TOKEN_PREFIX) + TOKEN_BODY_LENGTH:
        raise TokenRejected("invalid_token", "Invalid token.")
    token = ApiToken.objects.select_related("owner").filter(digest=digest_of(text)).first()
    if token is None:
        raise TokenRejected("invalid_token", "Invalid token.")
    if token.revoked_at is not None:
        raise TokenRejected("token_revoked", "This token has been revoked.")
    if token.is_expired(now):
        raise TokenRejected("token_expired", "This token has expired.")
    if not token.owner.is_active:
        raise TokenRejected("inactive_user", "This account is disabled.")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional: concurrent requests in the same minute write once between them.
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)).update(last_used_at=now)
        token.last_used_at = now
    return token
