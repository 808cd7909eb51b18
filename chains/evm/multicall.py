"""Multicall3 aggregate3 reads pinned to one block: chunking, splitting failed chunks, per-call outcomes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from chains.base import ChainError, MalformedResponse
from chains.endpoints import JsonRpcClient, RpcError
from chains.evm.abi import decode_aggregate3, encode_aggregate3

DEFAULT_CHUNK_SIZE = 500
MIN_CHUNK_SIZE = 1
# JSON-RPC errors that mean "ask again later", not "this chunk is too big or breaks": do not split.
_RATE_LIMIT = re.compile(r"(?i)rate.?limit|too many requests|exceeded .*(quota|capacity)|daily request")


@dataclass(frozen=True)
class CallResult:
    """Outcome of one call: ``ok`` with ``data``, or ``error`` (reverted, or could not be run)."""

    ok: bool
    data: bytes = b""
    error: str = ""


class MulticallReader:
    """Runs many ``(target, calldata)`` reads through Multicall3 ``aggregate3`` (allowFailure=true) in
    chunks of ``chunk_size`` calls per ``eth_call``, every chunk at the same block. A chunk the node
    refuses as a whole (out of gas, too large, reverted) is split in halves and retried, down to
    single calls, so one broken target only loses its own result.
    """

    def __init__(self, client: JsonRpcClient, multicall_address: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if chunk_size < MIN_CHUNK_SIZE:
            raise ValueError("chunk_size must be positive")
        self.client = client
        self.address = multicall_address
        self.chunk_size = chunk_size
        self.eth_calls = 0

    def run(self, calls: Sequence[tuple[str, bytes]], block: int) -> list[CallResult]:
        """Results in the order of ``calls``.

        Raises ``ChainError`` (transient) when no endpoint answers or a node is rate limiting,
        ``MalformedResponse`` when an answer cannot be decoded, and a permanent ``ChainError`` when
        there is no Multicall3 contract at the configured address.
        """
        out: list[CallResult] = []
        for start in range(0, len(calls), self.chunk_size):
            out.extend(self._run_chunk(list(calls[start:start + self.chunk_size]), block))
        return out

    def _run_chunk(self, chunk: list[tuple[str, bytes]], block: int) -> list[CallResult]:
        try:
            return self._eth_call(chunk, block)
        except RpcError as exc:
            if _RATE_LIMIT.search(exc.rpc_message or ""):
                raise ChainError(f"rate limited: {exc.rpc_message}", endpoint=None, method="eth_call") from None
            reason = exc.rpc_message or "call failed"
        except ChainError as exc:
            # Payload too large for a proxy in front of the node: smaller chunks may pass.
            if exc.permanent or "HTTP 413" not in exc.detail:
                raise
            reason = exc.detail
        if len(chunk) == 1:
            return [CallResult(ok=False, error=f"call failed as a whole: {reason}")]
        half = len(chunk) // 2
        return self._run_chunk(chunk[:half], block) + self._run_chunk(chunk[half:], block)

    def _eth_call(self, chunk: list[tuple[str, bytes]], block: int) -> list[CallResult]:
        data = encode_aggregate3(chunk)
        self.eth_calls += 1
        raw = self.client.request("eth_call", [{"to": self.address, "data": "0x" + data.hex()}, hex(block)])
        if not isinstance(raw, str) or not raw.startswith("0x"):
            raise MalformedResponse("eth_call answer is not hex data", method="eth_call")
        if raw == "0x":
            raise ChainError(f"no Multicall3 contract at {self.address} on this chain", permanent=True, method="eth_call")
        try:
            payload = bytes.fromhex(raw[2:])
        except ValueError:
            raise MalformedResponse("eth_call answer is not hex data", method="eth_call") from None
        return [CallResult(ok=ok, data=ret, error="" if ok else "reverted") for ok, ret in decode_aggregate3(payload, len(chunk))]
