"""Solana JSON-RPC over httpx: batches where the endpoint takes them, concurrent calls where it does not.

Every request goes through ``chains.endpoints.EndpointPool.acall`` (priority order, health memory, limiter,
429 Retry-After for the whole fetch, request counter). Each batch carries a ``getGenesisHash`` item, and an
endpoint that does not take batches is asked ``getGenesisHash`` once per fetch before anything else: no
answer is used from an endpoint on another cluster; such an endpoint is excluded for the rest of the
fetch and the next one is tried. Answers are plain JSON checked by the caller's parser; no third-party
client type leaves ``chains.solana``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import httpx

from chains.base import ChainError, EndpointConfig, MalformedResponse
from chains.endpoints import EndpointPool, RpcError, classify_http_response

NODE_UNHEALTHY = -32005
GENESIS = "getGenesisHash"


@dataclass(frozen=True)
class Call:
    """One JSON-RPC call; ``parse(result)`` turns the raw result into what the caller wants and raises
    ``ValueError``/``TypeError``/``KeyError`` when the answer does not have the method's shape.
    An ``optional`` call (a protocol's read) that the endpoint answers with an error object or an
    answer of the wrong shape yields a ``CallFailed`` instead of failing the whole fetch."""

    method: str
    params: list[Any]
    parse: Callable[[Any], Any] = lambda result: result
    optional: bool = False


@dataclass(frozen=True)
class CallFailed:
    """The answer of an ``optional`` call that failed: ``reason`` is safe to show (endpoint redacted)."""

    reason: str


class WrongCluster(ChainError):
    """The endpoint answers for another Solana cluster than the one configured (genesis hash differs)."""


_LOCAL = threading.local()


def thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's private event loop, kept across fetches so its HTTP client (and the connections it
    keeps alive) can be reused."""
    loop = getattr(_LOCAL, "loop", None)
    if loop is None or loop.is_closed():
        loop = _LOCAL.loop = asyncio.new_event_loop()
        _LOCAL.clients = {}
    return loop


def _new_client(max_connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(limits=limits, follow_redirects=False, transport=httpx.AsyncHTTPTransport(retries=1, limits=limits))


class SolanaRpc:
    """The calls of one fetch. ``genesis_hash``: the cluster every answer must come from (None: the first
    endpoint that answers decides, and ``seen_genesis`` tells which). ``batch_size`` calls per HTTP
    request (0: never batch); ``max_in_flight`` HTTP requests at once."""

    def __init__(self, pool: EndpointPool, *, genesis_hash: str | None, batch_size: int = 100, max_in_flight: int = 4,
                 max_connections: int = 16, shared: bool = False) -> None:
        self.pool = pool
        self.seen_genesis = genesis_hash
        self.batch_size = max(0, batch_size)
        self.slots: list[int] = []
        self._sem = asyncio.Semaphore(max(1, max_in_flight))
        self._single_sem = asyncio.Semaphore(max(1, max_connections))  # calls one by one: one per connection
        self._unbatched: set[str] = set()
        self._verified: set[str] = set()
        self._verify_locks: dict[str, asyncio.Lock] = {}
        self._ids = 0
        if shared:
            thread_loop()
            clients = _LOCAL.clients
            self.http = clients.get(max_connections) or clients.setdefault(max_connections, _new_client(max_connections))
            self._owns_http = False
        else:
            self.http, self._owns_http = _new_client(max_connections), True

    async def close(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    # ------------------------------------------------------------------ public

    async def many(self, calls: Sequence[Call]) -> list[Any]:
        """Run ``calls`` (batched in chunks, chunks concurrently) and return their parsed results in order.

        Raises ``RpcError`` when an endpoint answers an error object (no failover), a transient
        ``ChainError`` when no endpoint gave a usable answer (the last failure, endpoint named).
        """
        if not calls:
            return []
        size = self.batch_size or len(calls)
        chunks = [list(calls[i : i + size]) for i in range(0, len(calls), size)]
        results = await asyncio.gather(*(self._chunk(c) for c in chunks), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return [value for chunk in results for value in chunk]

    # ------------------------------------------------------------------ one chunk

    async def _chunk(self, calls: list[Call]) -> list[Any]:
        label = calls[0].method if len(calls) == 1 else f"batch[{len(calls)}]:{calls[0].method}"
        async with self._sem:
            return await self.pool.acall(label, lambda endpoint: self._attempt(endpoint, calls, label))

    async def _attempt(self, endpoint: EndpointConfig, calls: list[Call], label: str) -> list[Any]:
        if self.batch_size and endpoint.url not in self._unbatched:
            ids = [self._next_id() for _ in range(len(calls) + 1)]
            payload = [self._item(ids[0], GENESIS, [])] + [self._item(i, c.method, c.params) for i, c in zip(ids[1:], calls)]
            reply = await self._post(endpoint, payload, label)
            if isinstance(reply, list):
                by_id = {r.get("id"): r for r in reply if isinstance(r, dict)}
                if any(i not in by_id for i in ids):
                    raise MalformedResponse("batch answer misses an id", endpoint=endpoint.url, method=label)
                self._check_genesis(endpoint, self._unwrap(endpoint, GENESIS, by_id[ids[0]]))
                return [self._answer(endpoint, c, by_id[i]) for i, c in zip(ids[1:], calls)]
            if not (isinstance(reply, dict) and reply.get("error")):
                raise MalformedResponse("batch answer is not a list", endpoint=endpoint.url, method=label)
            # One error object for the whole array: this endpoint does not take batches; ask call by call.
            self._unbatched.add(endpoint.url)
        await self._verify(endpoint)
        self.pool.request_count += len(calls) - 1  # the pool counted this attempt as one request
        answers = await asyncio.gather(*(self._single(endpoint, c) for c in calls), return_exceptions=True)
        errors = [a for a in answers if isinstance(a, BaseException)]
        if errors:
            raise errors[0]
        return answers

    async def _single(self, endpoint: EndpointConfig, call: Call) -> Any:
        async with self._single_sem:
            reply = await self._post(endpoint, self._item(self._next_id(), call.method, call.params), call.method)
        return self._answer(endpoint, call, reply)

    def _answer(self, endpoint: EndpointConfig, call: Call, reply: Any) -> Any:
        try:
            return self._parse(endpoint, call, self._unwrap(endpoint, call.method, reply))
        except (RpcError, MalformedResponse) as exc:
            if not call.optional:
                raise
            return CallFailed(exc.detail)

    async def _verify(self, endpoint: EndpointConfig) -> None:
        """Ask an endpoint that takes no batches for its genesis hash, once per fetch."""
        if endpoint.url in self._verified:
            return
        async with self._verify_locks.setdefault(endpoint.url, asyncio.Lock()):
            if endpoint.url in self._verified:
                return
            self.pool.request_count += 1
            reply = await self._post(endpoint, self._item(self._next_id(), GENESIS, []), GENESIS)
            self._check_genesis(endpoint, self._unwrap(endpoint, GENESIS, reply))

    # ------------------------------------------------------------------ helpers

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    @staticmethod
    def _item(rid: int, method: str, params: list[Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}

    async def _post(self, endpoint: EndpointConfig, payload: Any, label: str) -> Any:
        try:
            response = await self.http.post(endpoint.url, content=json.dumps(payload, separators=(",", ":")),
                                            headers={"Content-Type": "application/json", **endpoint.headers},
                                            timeout=endpoint.timeout_s)
        except httpx.TimeoutException:
            raise ChainError("timed out", endpoint=endpoint.url, method=label) from None
        except httpx.HTTPError as exc:
            raise ChainError(f"connection failed: {type(exc).__name__}", endpoint=endpoint.url, method=label) from None
        return classify_http_response(response, endpoint, label)

    @staticmethod
    def _unwrap(endpoint: EndpointConfig, method: str, reply: Any) -> Any:
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            raise MalformedResponse("answer is not a JSON-RPC response", endpoint=endpoint.url, method=method)
        err = reply.get("error")
        if err is None:
            return reply["result"]
        if not isinstance(err, dict):
            raise MalformedResponse("malformed JSON-RPC error", endpoint=endpoint.url, method=method)
        code, message = err.get("code"), str(err.get("message", ""))[:300]
        if code == NODE_UNHEALTHY:
            # The node says it is behind: another endpoint may well be current, so fail over.
            raise ChainError(f"node is unhealthy: {message[:200]}", endpoint=endpoint.url, method=method)
        raise RpcError(code if isinstance(code, int) else None, message, err.get("data"), endpoint=endpoint.url, method=method)

    def _parse(self, endpoint: EndpointConfig, call: Call, result: Any) -> Any:
        try:
            if isinstance(result, dict) and "context" in result:
                slot = result["context"]["slot"]
                if not isinstance(slot, int) or isinstance(slot, bool) or slot < 0:
                    raise ValueError("context slot is not a slot number")
                self.slots.append(slot)
            return call.parse(result)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            raise MalformedResponse(f"answer does not match the method's schema ({str(exc)[:120]})",
                                    endpoint=endpoint.url, method=call.method) from None

    def _check_genesis(self, endpoint: EndpointConfig, got: Any) -> None:
        if not isinstance(got, str) or not 32 <= len(got) <= 44:
            raise MalformedResponse("getGenesisHash answer is not a hash", endpoint=endpoint.url, method=GENESIS)
        if self.seen_genesis is None:
            self.seen_genesis = got
        elif got != self.seen_genesis:
            error = WrongCluster(f"endpoint is on another cluster (genesis hash {got}, expected {self.seen_genesis})",
                                 endpoint=endpoint.url, method=GENESIS)
            self.pool.exclude(endpoint, error)
            raise error
        self._verified.add(endpoint.url)
