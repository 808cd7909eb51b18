"""Request limits of the REST API per token and per user: a GCRA token bucket in Redis when the broker is
Redis (shared by every web process), else in Django's cache."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from portfolio.ratelimit import shared_limiter

log = logging.getLogger(__name__)

PERIOD_S = 60.0

# GCRA: the key holds the "theoretical arrival time" (TAT, microseconds on the Redis clock). A request
# is admitted when TAT - now <= period - interval (a full bucket allows `limit` requests at once, then
# one per interval); else it is refused and the reply is how long until it would be admitted.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now - (period - interval)
if wait > 0 then return wait end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.floor((tat + interval - now) / 1000) + 1000)
return 0
"""


@dataclass(frozen=True)
class Refusal:
    """A limit was hit: which one and how many seconds until a request would be admitted."""

    scope: str
    retry_after: float


class _CacheBuckets:
    """GCRA over Django's cache. The lock makes it exact for the per-process default cache; with a
    shared cache (memcached, Redis via CACHES) two processes may rarely both take the last slot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def take(self, key: str, limit: int) -> float:
        interval = PERIOD_S / limit
        with self._lock:
            now = time.time()
            tat = max(cache.get(key, 0.0), now)
            wait = tat - now - (PERIOD_S - interval)
            if wait > 0:
                return wait
            cache.set(key, tat + interval, timeout=int(tat + interval - now) + 1)
            return 0.0


class _RedisBuckets:
    def __init__(self, client) -> None:
        self._admit = client.register_script(_ADMIT)

    def take(self, key: str, limit: int) -> float:
        interval_us = max(1, int(PERIOD_S * 1_000_000 / limit))
        return int(self._admit(keys=[key], args=[interval_us, int(PERIOD_S * 1_000_000)])) / 1_000_000


_lock = threading.Lock()
_buckets: _CacheBuckets | _RedisBuckets | None = None


def _store():
    """Redis buckets on the connection of the workers' endpoint limiter when the broker is Redis."""
    global _buckets
    with _lock:
        if _buckets is None:
            client = getattr(shared_limiter(), "client", None)
            _buckets = _RedisBuckets(client) if client is not None else _CacheBuckets()
        return _buckets


def reset_store() -> None:
    """Forget the chosen store (tests change the broker URL)."""
    global _buckets
    with _lock:
        _buckets = None


def _key(kind: str, ident: str) -> str:
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    return f"{prefix}chainfolio:api-limit:{kind}:{ident}"


def check(user, token=None) -> Refusal | None:
    """Take one request from the token's bucket (if any) and the user's; a Refusal when either is empty.

    Limits are ``API_RATE_PER_MINUTE_TOKEN`` and ``API_RATE_PER_MINUTE_USER`` (0: no limit). Buckets are
    keyed by the token's digest and by the user's id and join time (SQLite may reuse a deleted user's
    id; a new account must not inherit its bucket). A store that does not answer admits the request:
    a Redis outage must not take the API down with it."""
    wanted = []
    if token is not None and settings.API_RATE_PER_MINUTE_TOKEN:
        wanted.append(("token", _key("token", token.digest[:32]), settings.API_RATE_PER_MINUTE_TOKEN))
    if settings.API_RATE_PER_MINUTE_USER:
        joined = int(user.date_joined.timestamp() * 1_000_000) if getattr(user, "date_joined", None) else 0
        wanted.append(("user", _key("user", f"{user.pk}-{joined}"), settings.API_RATE_PER_MINUTE_USER))
    refusal = None
    for scope, key, limit in wanted:
        try:
            wait = _store().take(key, limit)
        except Exception:  # noqa: BLE001 - any Redis/cache failure: admit, and say so once per request
            log.warning("api rate limit store unavailable; request admitted", exc_info=True)
            return None
        if wait > 0 and (refusal is None or wait > refusal.retry_after):
            refusal = Refusal(scope, wait)
    return refusal
