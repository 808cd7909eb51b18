"""Multicall3 aggregate3 reads pinned to one block: chunking, splitting failed chunks, per-call outcomes."""

from __future__ import annotations

import os
import queue
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import accumulate, chain, islice
from typing import Callable, NamedTuple, Sequence, TypeVar

from chains.base import ChainError, MalformedResponse
from chains.endpoints import JsonRpcClient, RawJson, RpcError
from chains.evm.abi import aggregate3_calldata_parts, decode_aggregate3, decode_aggregate3_words, item_of_parts

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_CHUNK_SIZE = 500
DEFAULT_PARALLEL = 2
DEFAULT_CHUNKS_PER_REQUEST = 2
MIN_CHUNK_SIZE = 1
# JSON-RPC errors that mean "ask again later", not "this chunk is too big or breaks": do not split.
RATE_LIMIT = re.compile(r"(?i)rate.?limit|too many requests|exceeded .*(quota|capacity)|daily request")
# What nodes answer when they no longer keep the state of an old block (not archive nodes): geth's
# "missing trie node" / "header not found", Erigon's and Nethermind's pruned-state messages, anvil's
# out-of-range block. Splitting the chunk cannot help: the whole block is unreadable.
STATE_MISSING = re.compile(
    r"(?i)missing trie node|header not found|state (is )?not available|historical state|pruned|"
    r"state.*(unavailable|not found)|blockoutofrange|unknown block|block not found"
)


class StateUnavailable(ChainError):
    """The endpoint keeps no state at ``block`` (it is not an archive node, or the block is unknown)."""

    def __init__(self, message: str, *, block: int, **kwargs) -> None:
        self.block = block
        super().__init__(message, **kwargs)


class CallResult(NamedTuple):
    """Outcome of one call: ``ok`` with ``data``, or ``error`` (reverted, or could not be run).
    A tuple rather than a dataclass: thousands are made per fetch."""

    ok: bool
    data: bytes = b""
    error: str = ""


# One thread pool per process, shared by every read: a read borrows parallel - 1 of its threads and
# works itself too, instead of starting (and joining) threads each time. Threads do not survive a
# fork (Celery's prefork pool), so a child makes its own.
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_POOL_THREADS = 32


def shared_pool() -> ThreadPoolExecutor:
    """The process's thread pool for work that waits on the network, or overlaps it (made on first use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_POOL_THREADS, thread_name_prefix="multicall")
        return _POOL


def _forget_pool() -> None:
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, where nothing forks
    os.register_at_fork(after_in_child=_forget_pool)


def in_flight(work: Callable[[T], R], items: Sequence[T], parallel: int) -> list[R]:
    """``[work(item) for item in items]`` with up to ``parallel`` items in progress at once: this thread
    and ``parallel - 1`` threads of the process's pool take the next item in turn. After a failure no
    new item is started; the first exception is raised once the items in progress are done."""
    results: list = [None] * len(items)
    pending = iter(range(len(items)))  # next() on it is atomic: each index is taken once
    errors: list[BaseException] = []

    def worker() -> None:
        for i in pending:
            if errors:
                return
            try:
                results[i] = work(items[i])
            except BaseException as exc:  # noqa: BLE001 - re-raised by the caller below
                errors.append(exc)
                return

    helpers = [shared_pool().submit(worker) for _ in range(min(parallel, len(items)) - 1)]
    worker()
    for helper in helpers:
        if not helper.cancel():  # a helper that never started has nothing left to do
            helper.result()
    if errors:
        raise errors[0]
    return results


class WordResults(Sequence[CallResult]):
    """The results of a chunk whose every call returned one 32-byte word: the success flags (a byte
    each) and the words, a ``CallResult`` made only when one is asked for. Thousands per fetch that
    are read once, straight from ``flags`` and ``words``, cost no object each."""

    __slots__ = ("flags", "words")

    def __init__(self, flags: bytes, words: Sequence[bytes]) -> None:
        self.flags, self.words = flags, words

    def __len__(self) -> int:
        return len(self.words)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return list(map(_result, self.flags[i], self.words[i]))
        return _result(self.flags[i], self.words[i])

    def __iter__(self):
        return map(_result, self.flags, self.words)


def _result(flag: int, word: bytes) -> CallResult:
    return CallResult(flag == 1, word, "" if flag else "reverted")


class CallResults(Sequence[CallResult]):
    """A read's results in call order, kept as its chunks came back (lists, or ``WordResults``)."""

    __slots__ = ("parts", "_starts", "_len")

    def __init__(self, parts: list[Sequence[CallResult]]) -> None:
        self.parts = parts
        self._starts = [0, *accumulate(map(len, parts))]
        self._len = self._starts.pop()

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            start, stop, step = i.indices(self._len)
            return list(islice(self, start, stop, step)) if step > 0 else [self[k] for k in range(start, stop, step)]
        return item_of_parts(self.parts, self._starts, self._len, i, "call result")

    def __iter__(self):
        return chain.from_iterable(self.parts)


class MulticallReader:
    """Runs many ``(target, calldata)`` reads through Multicall3 ``aggregate3`` (allowFailure=true) in
    chunks of ``chunk_size`` calls per ``eth_call``, every chunk at the same block. A chunk the node
    refuses as a whole (out of gas, too large, reverted) is split in halves and retried, down to
    single calls, so one broken target only loses its own result.

    Up to ``chunks_per_request`` chunks travel in one JSON-RPC batch (one HTTP round trip; a node
    that refuses batches gets them one by one), and up to ``parallel`` such requests are in flight at
    once so encoding and decoding overlap with the node's work. ``eth_calls`` counts the eth_call
    invocations (batch items included).
    """

    def __init__(self, client: JsonRpcClient, multicall_address: str, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 parallel: int = DEFAULT_PARALLEL, chunks_per_request: int = DEFAULT_CHUNKS_PER_REQUEST) -> None:
        if chunk_size < MIN_CHUNK_SIZE:
            raise ValueError("chunk_size must be positive")
        self.client = client
        self.address = multicall_address
        self.chunk_size = chunk_size
        self.parallel = max(1, parallel)
        self.chunks_per_request = max(1, chunks_per_request)
        self.eth_calls = 0
        self._lock = threading.Lock()

    def run(self, calls: Sequence[tuple[str, bytes]], block: int, *,
            each: Callable[[int, Sequence[CallResult]], None] | None = None) -> Sequence[CallResult]:
        """Results in the order of ``calls``: a list, or with ``each`` a ``CallResults``. ``each(first,
        results)``, when given, is called with every chunk's results as soon as they are in
        (``results[0]`` answers ``calls[first]``; a list or ``WordResults``), one call at a time, on
        one more thread than the reading ones (the last ones, once every answer is in, on the calling
        thread): the caller's own decoding then overlaps the node's work on the next chunks, and never
        holds up a request.

        Raises ``ChainError`` (transient) when no endpoint answers or a node is rate limiting,
        ``MalformedResponse`` when an answer cannot be decoded, a permanent ``ChainError`` when
        there is no Multicall3 contract at the configured address, and ``StateUnavailable`` when the
        node keeps no state at ``block``; and whatever ``each`` raises.
        """
        if each is None:
            return self.run_many([(calls, block)])[0]
        parts: list[Sequence[CallResult]] = []
        self.run_many([(calls, block)], each=lambda _job, first, results: each(first, results), parts=parts)
        return CallResults(parts)

    def run_many(self, jobs: Sequence[tuple[Sequence[tuple[str, bytes]], int]], *,
                 each: Callable[[int, int, Sequence[CallResult]], None] | None = None,
                 parts: list[Sequence[CallResult]] | None = None) -> list[list[CallResult]]:
        """Several ``(calls, block)`` jobs (e.g. one per day of a backfill): their chunks share the
        JSON-RPC batches, so days with few calls travel together. Results per job, in order; ``each(job,
        first, results)`` as ``run``'s; raises as ``run``. With ``parts`` (one job): the chunks' results
        are put there as they are, in order, and the list returned is empty."""
        # a chunk is a slice of the calls: a list, or a SameCalldata (see chains.evm.plan.CallList)
        chunks = [(calls[start:start + self.chunk_size], block, j, start)
                  for j, (calls, block) in enumerate(jobs) for start in range(0, len(calls), self.chunk_size)]
        step = self.chunks_per_request
        groups = [chunks[i:i + step] for i in range(0, len(chunks), step)]

        if each is None:
            done = in_flight(self._run_group, groups, self.parallel)
        else:
            done = self._read_handing_over(groups, each)
        out: list[list[CallResult]] = [[] for _ in jobs]
        for group, part in zip(groups, done):
            for (_chunk, _block, j, _first), results in zip(group, part):
                if parts is not None:
                    parts.append(results)
                else:
                    out[j].extend(results)
        return out

    def _read_handing_over(self, groups: list[list[tuple[Sequence[tuple[str, bytes]], int, int, int]]],
                           each: Callable[[int, int, Sequence[CallResult]], None]) -> list[list[Sequence[CallResult]]]:
        """``in_flight(self._run_group, groups, self.parallel)``, with ``each`` called for every chunk's
        results on one more thread, in the order the answers come back: the thread that read an answer
        sends its next request at once instead of decoding first (the node would wait on that slot),
        and the caller's decoding runs while the node works. Once every answer is in, this thread
        decodes what is still waiting itself (the decoding thread would have to be woken for it, and
        this one again after it). Raises what ``_run_group`` or ``each`` raised; after a failure of
        ``each`` no new request is started."""
        handed: queue.SimpleQueue = queue.SimpleQueue()
        failed: list[BaseException] = []
        one_at_a_time = threading.Lock()
        settled = threading.Condition()
        counts = [0, 0]  # answers handed over, decoded

        def decode(item: tuple[int, int, Sequence[CallResult]]) -> None:
            with one_at_a_time:
                if not failed:
                    try:
                        each(*item)
                    except BaseException as exc:  # noqa: BLE001 - raised by the reading thread below
                        failed.append(exc)
            with settled:
                counts[1] += 1
                settled.notify_all()

        def read(group: list[tuple[Sequence[tuple[str, bytes]], int, int, int]]) -> list[Sequence[CallResult]]:
            if failed:
                raise failed[0]
            part = self._run_group(group)
            for (_chunk, _block, j, first), results in zip(group, part):
                with settled:
                    counts[0] += 1
                handed.put((j, first, results))
            return part

        def decoding_thread() -> None:
            while (item := handed.get()) is not None:
                decode(item)

        decoder = shared_pool().submit(decoding_thread)
        try:
            done = in_flight(read, groups, self.parallel)
        except BaseException:
            handed.put(None)
            decoder.result()
            raise
        while True:
            try:
                item = handed.get_nowait()
            except queue.Empty:
                break
            decode(item)
        with settled:  # the decoding thread may still be at the item it took last
            settled.wait_for(lambda: counts[1] == counts[0])
        handed.put(None)
        if failed:
            raise failed[0]
        return done

    def _run_group(self, group: list[tuple[Sequence[tuple[str, bytes]], int, int, int]]) -> list[Sequence[CallResult]]:
        """Several chunks in one JSON-RPC batch; a refused chunk is split, a refused batch sent singly."""
        if len(group) == 1:
            return [self._run_chunk(group[0][0], group[0][1])]
        with self._lock:
            self.eth_calls += len(group)
        try:
            # decoded inside the failover: an endpoint whose answers do not decode is dropped for this fetch
            replies = self.client.batch([("eth_call", self._params(chunk, block)) for chunk, block, *_ in group],
                                        decode=lambda i, raw: self._decode(group[i][0], raw))
        except RpcError as exc:
            with self._lock:
                self.eth_calls -= len(group)  # nothing was run
            if STATE_MISSING.search(exc.rpc_message or ""):
                raise StateUnavailable(f"no state at block {group[0][1]}: {exc.rpc_message}", block=group[0][1],
                                       method="eth_call") from None
            return [self._run_chunk(chunk, block) for chunk, block, *_ in group]
        out: list[Sequence[CallResult]] = []
        for (chunk, block, *_), reply in zip(group, replies):
            out.append(self._after_failure(chunk, block, reply) if isinstance(reply, RpcError) else reply)
        return out

    def _run_chunk(self, chunk: Sequence[tuple[str, bytes]], block: int) -> Sequence[CallResult]:
        try:
            return self._eth_call(chunk, block)
        except RpcError as exc:
            return self._after_failure(chunk, block, exc)
        except ChainError as exc:
            # Payload too large for a proxy in front of the node: smaller chunks may pass.
            if exc.permanent or "HTTP 413" not in exc.detail:
                raise
            return self._split(chunk, block, exc.detail)

    def _after_failure(self, chunk: Sequence[tuple[str, bytes]], block: int, exc: RpcError) -> Sequence[CallResult]:
        if RATE_LIMIT.search(exc.rpc_message or ""):
            raise ChainError(f"rate limited: {exc.rpc_message}", method="eth_call")
        if STATE_MISSING.search(exc.rpc_message or ""):
            raise StateUnavailable(f"no state at block {block}: {exc.rpc_message}", block=block, method="eth_call")
        return self._split(chunk, block, exc.rpc_message or "call failed")

    def _split(self, chunk: Sequence[tuple[str, bytes]], block: int, reason: str) -> list[CallResult]:
        if len(chunk) == 1:
            return [CallResult(ok=False, error=f"call failed as a whole: {reason}")]
        half = len(chunk) // 2
        return [*self._run_chunk(chunk[:half], block), *self._run_chunk(chunk[half:], block)]

    def _params(self, chunk: Sequence[tuple[str, bytes]], block: int) -> RawJson:
        # JSON text as is: an address, hex digits and a block number need no escaping
        return RawJson(f'[{{"to":"{self.address}","data":"'.encode(), *aggregate3_calldata_parts(chunk),
                       f'"}},"{hex(block)}"]'.encode())

    def _eth_call(self, chunk: Sequence[tuple[str, bytes]], block: int) -> Sequence[CallResult]:
        with self._lock:
            self.eth_calls += 1
        return self.client.request("eth_call", self._params(chunk, block), decode=lambda raw: self._decode(chunk, raw))

    def _decode(self, chunk: Sequence[tuple[str, bytes]], raw: object) -> list[CallResult] | WordResults:
        if not isinstance(raw, str) or not raw.startswith("0x"):
            raise MalformedResponse("eth_call answer is not hex data", method="eth_call")
        if raw == "0x":
            raise ChainError(f"no Multicall3 contract at {self.address} on this chain", permanent=True, method="eth_call")
        words = decode_aggregate3_words(raw, len(chunk))  # checked as hex text: no need to decode all of it
        if words is not None:
            return WordResults(*words)
        try:
            payload = bytes.fromhex(raw[2:])
        except ValueError:
            raise MalformedResponse("eth_call answer is not hex data", method="eth_call") from None
        return [CallResult(ok, ret, "" if ok else "reverted") for ok, ret in decode_aggregate3(payload, len(chunk))]
