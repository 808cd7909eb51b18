"""Per-endpoint request budget shared by every worker process: a Redis token bucket when the broker is Redis."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Callable

from django.conf import settings

from chains.base import RateLimiter
from chains.endpoints import LOCAL_LIMITER

# GCRA ("virtual scheduling"): the key holds the earliest time (microseconds, Redis clock) the next
# request may start. Each call reserves one slot atomically and returns how long to wait for it, so
# N processes together never start more than rate_per_s requests per second on one endpoint.
_RESERVE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local free_at = tonumber(redis.call('GET', KEYS[1]) or '0')
if free_at < now then free_at = now end
local next_free = free_at + interval
redis.call('SET', KEYS[1], tostring(next_free), 'PX', math.floor((next_free - now) / 1000) + 1000)
return free_at - now
"""


class RedisRateLimiter:
    """Shared GCRA limiter on Redis. Keys are hashes of the endpoint URL (URLs may embed API keys)."""

    prefix = "chainfolio:ratelimit:"

    def __init__(self, client, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self._reserve = client.register_script(_RESERVE_SLOT)
        self._sleep = sleep

    def key(self, endpoint: str) -> str:
        return self.prefix + hashlib.sha256(endpoint.encode()).hexdigest()[:32]

    def acquire(self, key: str, rate_per_s: float) -> None:
        if not rate_per_s or rate_per_s <= 0:
            return
        interval_us = max(1, int(1_000_000 / rate_per_s))
        wait_us = int(self._reserve(keys=[self.key(key)], args=[interval_us]))
        if wait_us > 0:
            self._sleep(wait_us / 1_000_000)


_lock = threading.Lock()
_shared: RateLimiter | None = None


def is_redis_url(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://"))


def shared_limiter() -> RateLimiter:
    """The limiter adapters get: Redis-backed when the Celery broker is Redis, else in-process."""
    global _shared
    with _lock:
        if _shared is None:
            url = settings.CELERY_BROKER_URL
            if is_redis_url(url):
                import redis

                _shared = RedisRateLimiter(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3))
            else:
                _shared = LOCAL_LIMITER
        return _shared


def reset_shared_limiter() -> None:
    """Forget the cached limiter (tests change the broker URL; forked workers must not share sockets)."""
    global _shared
    with _lock:
        _shared = None
