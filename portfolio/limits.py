"""Brakes on greed: how many wallets and portfolios a user may have, and how often they may ask for a refresh.

Site defaults are settings (MAX_WALLETS_PER_USER, MAX_PORTFOLIOS_PER_USER, REFRESH_MIN_INTERVAL_SECONDS); staff
raise one user's counts in the admin (Profile.max_wallets / max_portfolios). Services call the checks, so the
form, the API and any other caller meet the same limits; the API answers both LimitReached (code ``limit``)
and RefreshTooSoon (code ``rate_limited``) with 429 and Retry-After (portfolio/api.py)."""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError

from portfolio.models import Portfolio, Profile, Wallet


class LimitReached(ValidationError):
    """A count limit (wallets, portfolios) is reached. Code ``limit``."""

    # The API's Retry-After: a count limit does not lift by itself (the user removes something or staff
    # raise it), so this only tells a client not to retry in a loop.
    retry_after = 3600


class RefreshTooSoon(Exception):
    """A refresh of the same scope was asked for less than REFRESH_MIN_INTERVAL_SECONDS ago."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"A refresh was started moments ago. Try again in {self.retry_after} s.")


def _profile_value(user, field: str) -> int | None:
    return Profile.objects.filter(user_id=user.pk).values_list(field, flat=True).first()


def wallet_limit(user) -> int:
    return _profile_value(user, "max_wallets") or settings.MAX_WALLETS_PER_USER


def portfolio_limit(user) -> int:
    return _profile_value(user, "max_portfolios") or settings.MAX_PORTFOLIOS_PER_USER


def _check_count(user, model, limit: int, adding: int, have: str, remove: str) -> None:
    if model.objects.filter(owner_id=user.pk).count() + adding > limit:
        raise LimitReached(
            f"You {have} {limit} {model._meta.verbose_name_plural}, the most this account may have. {remove} one, "
            "or ask an administrator to raise your limit.",
            code="limit",
        )


def check_wallet_limit(user, adding: int = 1) -> None:
    """Raise ``LimitReached`` if ``user`` cannot add ``adding`` more wallets."""
    _check_count(user, Wallet, wallet_limit(user), adding, "track", "Remove")


def check_portfolio_limit(user, adding: int = 1) -> None:
    """Raise ``LimitReached`` if ``user`` cannot create ``adding`` more portfolios."""
    _check_count(user, Portfolio, portfolio_limit(user), adding, "have", "Delete")


def refresh_scope_key(user, *, portfolio_id: int | None = None, wallet_id: int | None = None) -> str:
    """The cache key of one user's refresh scope: all wallets, one portfolio or one wallet."""
    scope = f"p{portfolio_id}" if portfolio_id else f"w{wallet_id}" if wallet_id else "all"
    return f"chainfolio:refresh:{user.pk}:{scope}"


def claim_refresh(user, *, portfolio_id: int | None = None, wallet_id: int | None = None) -> None:
    """Record a refresh of the scope now, or raise ``RefreshTooSoon`` (with the seconds to wait) if one was
    recorded less than REFRESH_MIN_INTERVAL_SECONDS ago. Atomic (cache.add), so two requests racing each
    other cannot both pass; shared by every web process when the cache is Redis (CACHE_URL)."""
    interval = settings.REFRESH_MIN_INTERVAL_SECONDS
    if interval <= 0:
        return
    key = refresh_scope_key(user, portfolio_id=portfolio_id, wallet_id=wallet_id)
    now = time.time()
    if cache.add(key, now, timeout=interval):
        return
    started = cache.get(key)
    if started is None:  # expired between the two calls
        cache.set(key, now, timeout=interval)
        return
    raise RefreshTooSoon(math.ceil(interval - (now - float(started))))


def release_refresh(user, *, portfolio_id: int | None = None, wallet_id: int | None = None) -> None:
    """Forget the scope's last refresh (it never ran: the broker refused it), so the next one may go."""
    cache.delete(refresh_scope_key(user, portfolio_id=portfolio_id, wallet_id=wallet_id))
