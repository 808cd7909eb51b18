"""Endpoint failover, back-off, health and rate limits, plus a small JSON-RPC-over-HTTP client.

Every adapter reaches the network through ``EndpointPool.call`` (or its async twin ``acall``) so failover,
429 handling and error classification behave the same on every chain, and tests patch one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable, Iterator, Sequence, TypeVar

import httpx

from chains.base import ChainError, EndpointConfig, MalformedResponse, RateLimited, RateLimiter

T = TypeVar("T")

MAX_RETRY_AFTER_S = 30.0

_TLS_LOCK = threading.Lock()
_TLS: list[Any] = []


def tls_context():
    """One verifying TLS context per process for every HTTP client of the adapters: building one
    loads the whole CA bundle (about 35 ms of CPU), and an adapter (with its client) is built for every
    sync. A context is safe to share between threads and clients; it holds no connection."""
    if not _TLS:
        with _TLS_LOCK:
            if not _TLS:
                _TLS.append(httpx.create_ssl_context())
    return _TLS[0]


def http_client() -> httpx.Client:
    """A synchronous HTTP client for JSON-RPC and REST endpoints: no redirects (an endpoint that
    redirects is misconfigured, and following one could leak a key in its path), the shared TLS context."""
    return httpx.Client(follow_redirects=False, verify=tls_context())


@dataclass(frozen=True)
class RpcEvent:
    """What an ``EndpointPool`` reports to observers: one request (``kind="request"``, ``outcome`` "ok",
    "error", "rate_limited" or "broken", ``seconds`` it took) or one wait before a request
    (``kind="wait"``, ``outcome`` "rate_limit" for the shared limiter or "backoff" after a 429)."""

    endpoint: str  # the redacted label, never a key
    method: str
    kind: str
    outcome: str
    seconds: float
    detail: str = ""  # a failed request's error, redacted


_OBSERVERS: list[Callable[[RpcEvent], None]] = []


def add_observer(observer: Callable[[RpcEvent], None]) -> None:
    """Call ``observer(event)`` for every request and wait of every pool in this process (metrics, the
    admin's endpoint health). An observer must be quick and must not raise; errors are swallowed."""
    if observer not in _OBSERVERS:
        _OBSERVERS.append(observer)


def remove_observer(observer: Callable[[RpcEvent], None]) -> None:
    if observer in _OBSERVERS:
        _OBSERVERS.remove(observer)


def _notify(endpoint: EndpointConfig, method: str, kind: str, outcome: str, seconds: float, detail: str = "") -> None:
    if not _OBSERVERS:
        return
    event = RpcEvent(endpoint=endpoint.label, method=method, kind=kind, outcome=outcome, seconds=seconds, detail=detail)
    for observer in list(_OBSERVERS):
        try:
            observer(event)
        except Exception:  # noqa: BLE001 - watching must never break a fetch
            pass


# An OpenTelemetry tracer the application sets while tracing is on (portfolio.tracing); None: no spans,
# and opentelemetry is never imported here.
_tracer: Any = None
_NO_SPAN = contextlib.nullcontext()


def set_tracer(tracer: Any) -> None:
    """Open a span per RPC request with ``tracer`` (an ``opentelemetry.trace.Tracer``), or stop (None)."""
    global _tracer
    _tracer = tracer


def _span(endpoint: EndpointConfig, method: str, protocol: str):
    """The span of one request to ``endpoint`` (a failed one records its redacted error), or a no-op."""
    if _tracer is None:
        return _NO_SPAN
    from opentelemetry.trace import SpanKind

    return _tracer.start_as_current_span(f"rpc {method}", kind=SpanKind.CLIENT, attributes={
        "rpc.system": protocol, "rpc.method": method, "server.address": endpoint.label})


def _outcome(exc: ChainError | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    return "broken" if isinstance(exc, EndpointBroken) else "error"


class EndpointBroken(ChainError):
    """This endpoint cannot be trusted for the rest of the fetch (it serves another chain, cannot prove
    which chain it serves, or its answers do not decode): the pool skips it and fails over. When every
    endpoint is broken the fetch fails permanently, naming the last one (redacted)."""


class LocalRateLimiter:
    """Token bucket per key, shared by the threads of one process (the default outside Celery)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock, self._sleep = clock, sleep
        self._next_free: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, rate_per_s: float) -> None:
        if not rate_per_s or rate_per_s <= 0:
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_free.get(key, now))
            self._next_free[key] = slot + 1.0 / rate_per_s
        if slot > now:
            self._sleep(slot - now)


@dataclass
class _Health:
    failures: int = 0
    down_until: float = 0.0


class EndpointHealth:
    """Process-wide memory of failing endpoints: after ``threshold`` failures in a row an endpoint is
    tried last for ``cooldown_s`` seconds."""

    def __init__(self, threshold: int = 3, cooldown_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.threshold, self.cooldown_s, self._clock = threshold, cooldown_s, clock
        self._state: dict[str, _Health] = {}
        self._lock = threading.Lock()

    def is_healthy(self, url: str) -> bool:
        with self._lock:
            state = self._state.get(url)
            return state is None or state.down_until <= self._clock()

    def record_success(self, url: str) -> None:
        with self._lock:
            self._state.pop(url, None)

    def record_failure(self, url: str) -> None:
        with self._lock:
            state = self._state.setdefault(url, _Health())
            state.failures += 1
            if state.failures >= self.threshold:
                state.down_until = self._clock() + self.cooldown_s

    def reset(self) -> None:
        with self._lock:
            self._state.clear()


HEALTH = EndpointHealth()
LOCAL_LIMITER = LocalRateLimiter()


class EndpointPool:
    """Tries endpoints by priority (lowest number first; unhealthy ones last), honours 429 Retry-After
    with capped, jittered back-off, and raises a transient ``ChainError`` naming the last failure when
    no endpoint answers. Permanent errors are raised at once, without trying other endpoints.
    """

    def __init__(
        self,
        endpoints: Sequence[EndpointConfig],
        *,
        limiter: RateLimiter | None = None,
        health: EndpointHealth | None = None,
        rate_limit_retries: int = 2,
        backoff_base_s: float = 0.25,
        backoff_cap_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        verify: Callable[[EndpointConfig], None] | None = None,
        protocol: str = "jsonrpc",
    ) -> None:
        """``verify(endpoint)`` (optional) runs once per endpoint of this pool before its first use, e.g. a
        chain-identity check; it raises ``EndpointBroken`` (skip the endpoint for this pool's life) or
        another ``ChainError`` (treated like a failed request). ``protocol`` names the wire protocol in
        traces (``jsonrpc``, or ``http`` for REST backends)."""
        if not endpoints:
            raise ChainError("no RPC endpoint is configured for this chain", permanent=True)
        self.endpoints = sorted(endpoints, key=lambda e: e.priority)
        self.limiter = limiter or LOCAL_LIMITER
        self.health = health or HEALTH
        self.rate_limit_retries = rate_limit_retries
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self._sleep = sleep
        self.request_count = 0
        self.last_endpoint: EndpointConfig | None = None
        # Per pool (one fetch): an endpoint that answered 429 gets no request from ``acall`` before its
        # Retry-After has passed, whichever concurrent call asks; an endpoint found unfit (e.g. on another
        # chain) gets none at all.
        self.quiet_until: dict[str, float] = {}
        self.excluded: dict[str, ChainError] = {}
        self.verify = verify
        self.protocol = protocol
        self._verified: set[str] = set()
        self._broken: set[str] = set()
        self._verify_lock = threading.Lock()

    def exclude(self, endpoint: EndpointConfig, error: ChainError) -> None:
        """Send no further request to ``endpoint`` through this pool (``error`` says why)."""
        self.excluded[endpoint.url] = error

    def quiet_for(self, endpoint: EndpointConfig) -> float:
        """Seconds until ``endpoint`` may be sent a request again (0: now)."""
        return max(0.0, self.quiet_until.get(endpoint.url, 0.0) - time.monotonic())

    def ordered(self) -> list[EndpointConfig]:
        usable = [e for e in self.endpoints if e.url not in self._broken]
        healthy = [e for e in usable if self.health.is_healthy(e.url)]
        return healthy + [e for e in usable if e not in healthy]

    def mark_broken(self, endpoint: EndpointConfig) -> None:
        """Skip ``endpoint`` for the rest of this pool's life (one fetch)."""
        self._broken.add(endpoint.url)

    def _ensure_verified(self, endpoint: EndpointConfig) -> None:
        if self.verify is None or endpoint.url in self._verified:
            return
        with self._verify_lock:  # parallel multicall threads: one identity check per endpoint
            if endpoint.url in self._verified:
                return
            if endpoint.rate_per_s:  # the identity check is a request too: it spends the shared budget
                self.limiter.acquire(endpoint.url, endpoint.rate_per_s)
            self.request_count += 1
            self.verify(endpoint)
            self._verified.add(endpoint.url)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt`` (1-based): Retry-After if given, else exponential
        with full jitter, both capped."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER_S)
        return random.uniform(0, min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1)))

    def call(self, method: str, fn: Callable[[EndpointConfig], T]) -> T:
        """Run ``fn(endpoint)`` on the first endpoint that answers; ``method`` names the call in errors.

        ``fn`` raises ``ChainError``: transient ones move on to the next endpoint, permanent ones and
        ones that carry an answer (``answered``, e.g. a JSON-RPC error object) propagate at once.
        Raises those, or a transient ``ChainError`` naming the last failure when no endpoint answered.
        """
        for step in self._failover(method):
            if step.delay is not None:
                self._sleep(step.delay)
                _notify(step.endpoint, method, "wait", "backoff", step.delay)
            started = time.monotonic()
            try:
                # The identity check first: each request takes its rate-limit slot just before it is sent.
                self._ensure_verified(step.endpoint)
                if step.endpoint.rate_per_s:
                    waited = time.monotonic()
                    self.limiter.acquire(step.endpoint.url, step.endpoint.rate_per_s)
                    _notify(step.endpoint, method, "wait", "rate_limit", time.monotonic() - waited)
                self.request_count += 1
                with _span(step.endpoint, method, self.protocol):
                    result = fn(step.endpoint)
            except ChainError as exc:
                step.error = exc
                _notify(step.endpoint, method, "request", _outcome(exc), time.monotonic() - started, str(exc))
                continue
            _notify(step.endpoint, method, "request", "ok", time.monotonic() - started)
            return self._answered(step.endpoint, result)
        raise AssertionError("unreachable: _failover raises when no endpoint is left")

    async def acall(
        self,
        method: str,
        fn: Callable[[EndpointConfig], Awaitable[T]],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> T:
        """The async twin of ``call``, with the same decisions and errors: awaits ``fn(endpoint)`` and
        the back-off ``sleep``; a limiter acquire (which may block) runs in a worker thread."""
        for step in self._failover(method):
            if step.delay is not None:
                await sleep(step.delay)
                _notify(step.endpoint, method, "wait", "backoff", step.delay)
            if (quiet := self.quiet_for(step.endpoint)) > 0:  # another call of this fetch saw a 429 meanwhile
                await sleep(quiet)
            started = time.monotonic()
            try:
                # The identity check first: each request takes its rate-limit slot just before it is sent.
                await asyncio.to_thread(self._ensure_verified, step.endpoint)
                if step.endpoint.rate_per_s:
                    waited = time.monotonic()
                    await asyncio.to_thread(self.limiter.acquire, step.endpoint.url, step.endpoint.rate_per_s)
                    _notify(step.endpoint, method, "wait", "rate_limit", time.monotonic() - waited)
                self.request_count += 1
                with _span(step.endpoint, method, self.protocol):
                    result = await fn(step.endpoint)
            except ChainError as exc:
                step.error = exc
                _notify(step.endpoint, method, "request", _outcome(exc), time.monotonic() - started, str(exc))
                continue
            _notify(step.endpoint, method, "request", "ok", time.monotonic() - started)
            return self._answered(step.endpoint, result)
        raise AssertionError("unreachable: _failover raises when no endpoint is left")

    def _failover(self, method: str) -> Iterator[_Try]:
        """The failover decisions of ``call`` and ``acall``, written once so the two cannot drift.

        Yields the tries to make in turn. The caller waits ``delay`` (when not None), acquires the
        limiter, counts the request and calls the endpoint; it returns through ``_answered`` on success,
        or sets ``error`` and asks for the next try. Re-raises a permanent or answered error; raises a
        transient ``ChainError`` naming the last failure once every endpoint has failed.
        """
        last: ChainError | None = None
        all_broken = True
        for endpoint in self.ordered():
            if endpoint.url in self.excluded:
                last = self.excluded[endpoint.url]
                continue
            delay: float | None = None
            attempt = 0
            while True:
                attempt += 1
                step = _Try(endpoint, delay)
                yield step
                exc = step.error
                assert exc is not None, "a try was neither answered nor failed"
                if isinstance(exc, EndpointBroken):
                    last = exc
                    self.mark_broken(endpoint)
                    self.health.record_failure(endpoint.url)
                    break
                all_broken = False
                if isinstance(exc, RateLimited):
                    last = exc
                    if attempt <= self.rate_limit_retries:
                        delay = self.backoff(attempt, exc.retry_after)
                        until = time.monotonic() + delay
                        self.quiet_until[endpoint.url] = max(self.quiet_until.get(endpoint.url, 0.0), until)
                        continue
                elif exc.permanent or exc.answered:
                    self.last_endpoint = endpoint
                    raise exc
                else:
                    last = exc
                self.health.record_failure(endpoint.url)
                if endpoint.url in self.excluded:
                    last = self.excluded[endpoint.url]
                break
        if last is not None and all_broken:
            raise ChainError(
                f"no trustworthy endpoint; last error: {last.detail}", permanent=True, method=method, endpoint=last.endpoint,
            )
        raise ChainError(
            f"no endpoint answered; last error: {last.detail if last else 'none'}",
            permanent=False,
            method=method,
            endpoint=last.endpoint if last else None,
        )

    def _answered(self, endpoint: EndpointConfig, result: T) -> T:
        self.health.record_success(endpoint.url)
        self.last_endpoint = endpoint
        return result


@dataclass
class _Try:
    """One request ``EndpointPool._failover`` asks for: after ``delay`` seconds (None: at once) call
    ``endpoint``; the caller puts the ``ChainError`` it raised, if any, in ``error``."""

    endpoint: EndpointConfig
    delay: float | None = None
    error: ChainError | None = None


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class RpcError(ChainError):
    """A well-formed JSON-RPC error object: the endpoint answered, so the pool does not fail over.
    Transient by default; callers that know better (``execution reverted``, "too many results")
    catch it and decide."""

    answered = True

    def __init__(self, code: int | None, message: str, data: Any = None, **kwargs: Any) -> None:
        self.code, self.rpc_message, self.data = code, message, data
        super().__init__(f"JSON-RPC error {code}: {message}", **kwargs)


def classify_http_response(response: httpx.Response, endpoint: EndpointConfig, method: str) -> Any:
    """Turn an HTTP response into parsed JSON, or raise the right ``ChainError``."""
    if response.status_code == 429:
        raise RateLimited(
            "rate limited (HTTP 429)",
            endpoint=endpoint.url,
            method=method,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    if response.status_code >= 400:
        raise ChainError(f"HTTP {response.status_code}", endpoint=endpoint.url, method=method)
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise MalformedResponse("answer is not JSON", endpoint=endpoint.url, method=method) from None


def http_json(
    http: httpx.Client, endpoint: EndpointConfig, method: str, verb: str, url: str, body: Any = None, *,
    json_text: str | bytes | None = None,
) -> Any:
    """One HTTP request to ``url`` on ``endpoint``, with the endpoint's headers and timeout and ``body``
    (unless None) as JSON, or ``json_text``, a body already encoded (UTF-8 when bytes); returns the parsed JSON answer.
    ``method`` names the call in errors.

    Raises ``ChainError`` (transient) on a timeout or failed connection, and whatever
    ``classify_http_response`` raises (``RateLimited``, ``ChainError``, ``MalformedResponse``).
    """
    try:
        if json_text is not None:
            content = json_text if isinstance(json_text, bytes) else json_text.encode()
            response = http.request(verb, url, content=content, timeout=endpoint.timeout_s,
                                    headers={"Content-Type": "application/json", **endpoint.headers})
        else:
            response = http.request(verb, url, json=body, headers=dict(endpoint.headers), timeout=endpoint.timeout_s)
    except httpx.TimeoutException:
        raise ChainError("timed out", endpoint=endpoint.url, method=method) from None
    except httpx.HTTPError as exc:
        raise ChainError(f"connection failed: {type(exc).__name__}", endpoint=endpoint.url, method=method) from None
    return classify_http_response(response, endpoint, method)


class PoolBacked:
    """``request_count`` and ``label`` for a backend that reaches the network through ``self.pool``."""

    pool: EndpointPool

    @property
    def request_count(self) -> int:
        return self.pool.request_count

    @property
    def label(self) -> str:
        """The label of the endpoint that answered last (before any answer, the first by priority)."""
        return (self.pool.last_endpoint or self.pool.endpoints[0]).label


def _unwrap(reply: Any, endpoint: EndpointConfig, method: str) -> Any:
    if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
        raise MalformedResponse("answer is not a JSON-RPC response", endpoint=endpoint.url, method=method)
    if "error" in reply and reply["error"] is not None:
        err = reply["error"]
        if not isinstance(err, dict):
            raise MalformedResponse("malformed JSON-RPC error", endpoint=endpoint.url, method=method)
        raise RpcError(err.get("code"), str(err.get("message", ""))[:300], err.get("data"), endpoint=endpoint.url, method=method)
    return reply["result"]


def _decoded(result: Any, decode: Callable[[Any], Any] | None, endpoint: EndpointConfig, method: str) -> Any:
    if decode is None:
        return result
    try:
        return decode(result)
    except (MalformedResponse, ValueError) as exc:
        detail = exc.detail if isinstance(exc, ChainError) else "answer does not decode"
        raise EndpointBroken(f"undecodable answer: {detail}", endpoint=endpoint.url, method=method) from None


class RawJson:
    """Params already encoded as JSON text, in ASCII pieces spliced into the request as they are: an
    eth_call carrying hundreds of kilobytes of hex (a Multicall3 chunk) then costs no second pass to
    escape it, and its text is copied once, into the request body. The caller vouches that the
    pieces joined are valid JSON."""

    __slots__ = ("parts",)

    def __init__(self, *parts: bytes) -> None:
        self.parts = parts


def _request_json(rid: int, method: str, params: Any) -> list[bytes]:
    """One JSON-RPC 2.0 request object as compact JSON text, in pieces (joined by the caller)."""
    if isinstance(params, RawJson):
        return [f'{{"jsonrpc":"2.0","id":{rid},"method":{json.dumps(method)},"params":'.encode(), *params.parts, b"}"]
    text = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}, separators=(",", ":"))
    return [text.encode()]


class JsonRpcClient:
    """JSON-RPC 2.0 over HTTP through an ``EndpointPool``: single calls and batches.

    Transport failures (timeout, refused connection, 429, 5xx, non-JSON) fail over to the next
    endpoint; JSON-RPC error objects are raised as ``RpcError`` from the endpoint that answered.
    """

    def __init__(self, pool: EndpointPool, *, http: httpx.Client | None = None) -> None:
        self.pool = pool
        self.http = http or http_client()
        self._ids = 0

    @property
    def request_count(self) -> int:
        return self.pool.request_count

    @property
    def endpoint_label(self) -> str:
        ep = self.pool.last_endpoint or self.pool.endpoints[0]
        return ep.label

    def _post(self, endpoint: EndpointConfig, body: bytes, method: str) -> Any:
        return http_json(self.http, endpoint, method, "POST", endpoint.url, json_text=body)

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def request(self, method: str, params: list[Any] | dict[str, Any] | RawJson | None = None, *,
                decode: Callable[[Any], T] | None = None) -> Any:
        """One call; returns ``result`` (or ``decode(result)``) or raises ``RpcError`` / ``ChainError``.

        ``decode`` runs inside the failover: an answer it cannot decode (``MalformedResponse``) marks the
        endpoint broken for this fetch and the call moves on to the next endpoint."""
        body = b"".join(_request_json(self._next_id(), method, params if params is not None else []))

        def attempt(endpoint: EndpointConfig) -> Any:
            reply = self._post(endpoint, body, method)
            return _decoded(_unwrap(reply, endpoint, method), decode, endpoint, method)

        return self.pool.call(method, attempt)

    def request_at(self, endpoint: EndpointConfig, method: str, params: list[Any] | None = None) -> Any:
        """One call to ``endpoint`` only, no failover (e.g. checking that endpoint's identity)."""
        body = b"".join(_request_json(self._next_id(), method, params if params is not None else []))
        return _unwrap(self._post(endpoint, body, method), endpoint, method)

    def batch(self, calls: Sequence[tuple[str, list[Any] | dict[str, Any] | RawJson]], *,
              decode: Callable[[int, Any], Any] | None = None) -> list[Any | RpcError]:
        """Several calls in one HTTP request; each item is the result (or ``decode(index, result)``, run
        inside the failover like ``request``'s) or an ``RpcError`` (not raised)."""
        if not calls:
            return []
        ids = [self._next_id() for _ in calls]
        parts = [b"["]
        for i, (m, p) in zip(ids, calls):
            parts += _request_json(i, m, p)
            parts.append(b",")
        parts[-1] = b"]"
        body = b"".join(parts)  # one copy of what may be megabytes of hex
        label = f"batch[{len(calls)}]:{calls[0][0]}"

        def attempt(endpoint: EndpointConfig) -> list[Any]:
            replies = self._post(endpoint, body, label)
            if not isinstance(replies, list):
                if isinstance(replies, dict) and "error" in replies:
                    _unwrap(replies, endpoint, label)  # raises the endpoint's error for the batch
                raise MalformedResponse("batch answer is not a list", endpoint=endpoint.url, method=label)
            by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
            out: list[Any] = []
            for i, (m, _) in zip(ids, calls):
                if i not in by_id:
                    raise MalformedResponse("batch answer misses an id", endpoint=endpoint.url, method=label)
                try:
                    result = _unwrap(by_id[i], endpoint, m)
                except RpcError as exc:
                    out.append(exc)
                    continue
                out.append(_decoded(result, (lambda r, n=len(out): decode(n, r)) if decode else None, endpoint, m))
            return out

        return self.pool.call(label, attempt)
