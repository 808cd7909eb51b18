"""The shared per-endpoint rate limit: many processes and threads together never exceed the rate."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid

import pytest

from chains.endpoints import LocalRateLimiter
from portfolio import ratelimit

RATE = 20.0  # requests per second


def _redis_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    return url if ratelimit.is_redis_url(url) else "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_url():
    redis = pytest.importorskip("redis")
    url = _redis_url()
    try:
        redis.Redis.from_url(url, socket_timeout=1).ping()
    except Exception:  # noqa: BLE001
        pytest.skip(f"no Redis at {url}")
    return url


def _hammer(url: str, key: str, count: int, out) -> None:
    import redis

    limiter = ratelimit.RedisRateLimiter(redis.Redis.from_url(url))
    stamps = []
    for _ in range(count):
        limiter.acquire(key, RATE)
        stamps.append(time.time())
    out.put(stamps)


def _max_in_window(stamps: list[float], window: float = 1.0) -> int:
    stamps = sorted(stamps)
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_four_processes_share_one_budget_per_endpoint(redis_url):
    key = f"http://node.example/{uuid.uuid4().hex}"
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(redis_url, key, 10, out)) for _ in range(4)]
    start = time.time()
    for p in procs:
        p.start()
    stamps = [t for _ in procs for t in out.get(timeout=30)]
    for p in procs:
        p.join(timeout=10)
    assert len(stamps) == 40
    # 40 requests at 20/s: the last may start no sooner than 39/20 s after the first.
    assert max(stamps) - min(stamps) >= 39 / RATE - 0.05
    assert _max_in_window(stamps) <= RATE + 1
    assert time.time() - start < 10


def test_threads_of_one_process_share_it_too(redis_url):
    import redis

    limiter = ratelimit.RedisRateLimiter(redis.Redis.from_url(redis_url))
    key = f"http://node.example/{uuid.uuid4().hex}"
    stamps: list[float] = []
    lock = threading.Lock()

    def work():
        for _ in range(5):
            limiter.acquire(key, RATE)
            with lock:
                stamps.append(time.time())

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stamps) == 30 and _max_in_window(stamps) <= RATE + 1
    assert max(stamps) - min(stamps) >= 29 / RATE - 0.05


def test_different_endpoints_have_separate_budgets(redis_url):
    import redis

    limiter = ratelimit.RedisRateLimiter(redis.Redis.from_url(redis_url))
    a, b = f"http://a.example/{uuid.uuid4().hex}", f"http://b.example/{uuid.uuid4().hex}"
    start = time.monotonic()
    for _ in range(5):
        limiter.acquire(a, 5)
        limiter.acquire(b, 5)
    assert 0.75 <= time.monotonic() - start < 1.6  # 4 waits of 0.2 s, not 9


def test_redis_keys_never_contain_the_endpoint_url(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    limiter = ratelimit.RedisRateLimiter(client)
    secret = uuid.uuid4().hex * 2
    limiter.acquire(f"https://eth.example/v2/{secret}", 100)
    assert not [k for k in client.scan_iter(match=f"*{secret}*")]


def test_without_redis_the_in_process_limiter_is_used(settings):
    settings.CELERY_BROKER_URL = "filesystem://"
    ratelimit.reset_shared_limiter()
    try:
        assert isinstance(ratelimit.shared_limiter(), LocalRateLimiter)
    finally:
        ratelimit.reset_shared_limiter()
