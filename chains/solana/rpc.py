"""solana-py's AsyncClient behind the shared endpoint rules: failover, 429 back-off, error classification.

One AsyncClient per endpoint, created inside the event loop of one fetch and closed with it. Every call
goes through ``SolanaRpc.call``, which runs on ``chains.endpoints.EndpointPool.acall`` (the priority
order, health memory, limiter, Retry-After handling and request counter of every chain) and maps
solana-py / solders / httpx2 exceptions onto ``ChainError``. No solana-py or solders type leaves
``chains.solana``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Awaitable, Callable, TypeVar

import httpx2
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.core import RPCException, RPCNoResultException
from solders.errors import SerdeJSONError

from chains.base import ChainError, EndpointConfig, MalformedResponse, RateLimited
from chains.endpoints import EndpointPool, RpcError, parse_retry_after

T = TypeVar("T")

# solders turns well-known JSON-RPC errors into classes without a ``code`` attribute.
_ERROR_CODES = {
    "ParseErrorMessage": -32700, "InvalidRequestMessage": -32600, "MethodNotFoundMessage": -32601,
    "InvalidParamsMessage": -32602, "InternalErrorMessage": -32603, "NodeUnhealthyMessage": -32005,
    "SendTransactionPreflightFailureMessage": -32002,
}


def _is_panic(exc: BaseException) -> bool:
    # solders parsers are Rust; a shape they do not expect can surface as pyo3's PanicException,
    # which derives from BaseException.
    return type(exc).__name__ == "PanicException"


_LOCAL = threading.local()


def thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's private event loop, kept across fetches so AsyncClients (and their connections)
    can be reused: building one costs ~50 ms, mostly its TLS context."""
    loop = getattr(_LOCAL, "loop", None)
    if loop is None or loop.is_closed():
        loop = _LOCAL.loop = asyncio.new_event_loop()
        _LOCAL.clients = {}
    return loop


def _thread_clients() -> dict[tuple, AsyncClient]:
    thread_loop()
    return _LOCAL.clients


class SolanaRpc:
    """Async JSON-RPC calls through an ``EndpointPool`` (shared request counter and last endpoint)."""

    def __init__(self, pool: EndpointPool, *, commitment: str = "confirmed", max_connections: int = 16,
                 shared: bool = False, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.pool = pool
        self.shared = shared
        self.max_connections = max_connections
        self.commitment = Commitment(commitment)
        self._sleep = sleep
        self._clients: dict[str, AsyncClient] = {}
        self.slots: list[int] = []

    def client(self, endpoint: EndpointConfig) -> AsyncClient:
        """The AsyncClient of ``endpoint``: cached per thread (and its loop) when ``shared``, else per call."""
        key = (endpoint.url, endpoint.timeout_s, tuple(sorted(endpoint.headers.items())), str(self.commitment), self.max_connections)
        cache = _thread_clients() if self.shared else self._clients
        if key not in cache:
            cache[key] = AsyncClient(
                endpoint.url, commitment=self.commitment, timeout=endpoint.timeout_s,
                extra_headers=dict(endpoint.headers) or None, http2=False, max_transport_retries=1,  # one retry: a stale keep-alive connection
                max_connections=self.max_connections, max_keepalive_connections=self.max_connections,
            )
        return cache[key]

    async def close(self) -> None:
        """Close the clients this instance owns (shared per-thread clients stay open for reuse)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    async def _attempt(self, endpoint: EndpointConfig, method: str, fn: Callable[[AsyncClient], Awaitable[T]]) -> T:
        try:
            response = await fn(self.client(endpoint))
        except SolanaRpcException as exc:
            cause = exc.__cause__
            if isinstance(cause, httpx2.HTTPStatusError):
                status = cause.response.status_code
                if status == 429:
                    raise RateLimited("rate limited (HTTP 429)", endpoint=endpoint.url, method=method,
                                      retry_after=parse_retry_after(cause.response.headers.get("retry-after"))) from None
                raise ChainError(f"HTTP {status}", endpoint=endpoint.url, method=method) from None
            if isinstance(cause, httpx2.TimeoutException):
                raise ChainError("timed out", endpoint=endpoint.url, method=method) from None
            raise ChainError(f"connection failed: {type(cause).__name__}", endpoint=endpoint.url, method=method) from None
        except RPCException as exc:
            err = exc.args[0] if exc.args else None
            name = type(err).__name__
            code = getattr(err, "code", None) if not isinstance(getattr(err, "code", None), type(None)) else _ERROR_CODES.get(name)
            message = str(getattr(err, "message", name))
            if name == "NodeUnhealthyMessage":
                # The node says it is behind: another endpoint may well be current, so fail over.
                raise ChainError(f"node is unhealthy: {message[:200]}", endpoint=endpoint.url, method=method) from None
            raise RpcError(code, message[:300], endpoint=endpoint.url, method=method) from None
        except (RPCNoResultException, SerdeJSONError, ValueError, TypeError, KeyError):
            raise MalformedResponse("answer is not a valid JSON-RPC response", endpoint=endpoint.url, method=method) from None
        except BaseException as exc:
            if _is_panic(exc):
                raise MalformedResponse("answer does not match the method's schema", endpoint=endpoint.url, method=method) from None
            raise
        if isinstance(response, int):
            # solders parses an error object it has no class for into its bare ``code``.
            raise RpcError(response, "JSON-RPC error (message not kept by the parser)", endpoint=endpoint.url, method=method)
        if not hasattr(response, "value"):
            raise MalformedResponse(f"unexpected answer type {type(response).__name__}", endpoint=endpoint.url, method=method)
        slot = getattr(getattr(response, "context", None), "slot", None)
        if isinstance(slot, int):
            self.slots.append(slot)
        return response

    async def call(self, method: str, fn: Callable[[AsyncClient], Awaitable[T]]) -> T:
        """Run ``fn(client)`` on the first endpoint that answers, through ``EndpointPool.acall``.

        Raises ``RpcError`` (the endpoint answered with an error object: no failover), a permanent
        ``ChainError`` at once, or a transient ``ChainError`` when no endpoint answered.
        """
        return await self.pool.acall(method, lambda endpoint: self._attempt(endpoint, method, fn), sleep=self._sleep)
