"""JSON-RPC batches with a fallback to single requests for endpoints that refuse batches."""

from __future__ import annotations

from typing import Any, Sequence

from chains.endpoints import JsonRpcClient, RpcError


def call_many(client: JsonRpcClient, calls: Sequence[tuple[str, list[Any]]], *, use_batch: bool = True) -> list[Any]:
    """Results (or ``RpcError`` items, not raised) of ``calls``, in order: one JSON-RPC batch when
    ``use_batch`` and the endpoint accepts it, else one request per call.

    Raises ``ChainError`` (transient) when no endpoint answers.
    """
    if use_batch and len(calls) > 1:
        try:
            return client.batch(calls)
        except RpcError:
            pass  # the endpoint refused the batch as a whole (some do): ask one by one
    out: list[Any] = []
    for method, params in calls:
        try:
            out.append(client.request(method, params))
        except RpcError as exc:
            out.append(exc)
    return out
