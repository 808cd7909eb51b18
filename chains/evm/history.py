"""EVM history for a backfill: the block at each day's end (a bounded search over block timestamps,
cached per chain), the wallet's native and token balances and the oracle prices at those blocks (the
sync's block-pinned Multicall batches), and its ERC-20 transfers from Transfer logs.

What it cannot give: plain native (ETH) transfers and the fees of outgoing transactions. A node
indexes no value transfers (that needs trace APIs or an indexer), so native *balances* are exact at
every day's end but the transfer list holds token movements only."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time as dt_time, timedelta, timezone as dt_timezone
from typing import Any, Hashable, Mapping

from chains.base import FUNGIBLE, AssetRef, ChainError, HistoryPage, HistoryRequest, MalformedResponse, TransferRecord
from chains.endpoints import JsonRpcClient, RpcError
from chains.evm import abi
from chains.evm.address import parse_address, to_checksum
from chains.evm.batching import call_many
from chains.evm.discovery import TOO_MANY
from chains.evm.multicall import RATE_LIMIT, MulticallReader, StateUnavailable
from chains.evm.plan import Plan, WalletState

DEFAULT_DAYS_PER_PAGE = 30
_SAMPLES_MAX = 50_000
# chain identity (its genesis block hash) -> block number -> timestamp: every header ever read, so
# later searches on the same chain start from narrow brackets (and a devnet reset is a new chain).
_SAMPLES: dict[str, dict[int, int]] = {}
_SAMPLES_LOCK = threading.Lock()


def day_end(day: date) -> int:
    """The last second of a UTC day, as a unix time."""
    return int(datetime.combine(day + timedelta(days=1), dt_time.min, tzinfo=dt_timezone.utc).timestamp()) - 1


class BlockClock:
    """Finds the last block at or before given moments: every round reads the headers of all open
    searches in one JSON-RPC batch (an interpolation guess and the block after it), alternating with
    bisection so a chain with irregular block times still converges in O(log n) rounds."""

    def __init__(self, client: JsonRpcClient, *, use_batch: bool = True) -> None:
        self.client = client
        self.use_batch = use_batch
        self.samples: dict[int, int] = {}
        self.rounds = 0

    def head(self) -> tuple[int, int]:
        """(number, timestamp) of the latest block; also picks this chain's cache by its genesis hash.
        Raises ``ChainError`` when the node does not answer, ``MalformedResponse`` on a bad header."""
        latest, genesis = call_many(self.client, [("eth_getBlockByNumber", ["latest", False]),
                                                  ("eth_getBlockByNumber", ["0x0", False])], use_batch=self.use_batch)
        number, ts = _header(latest)
        key = genesis.get("hash") if isinstance(genesis, dict) else None
        with _SAMPLES_LOCK:
            if len(_SAMPLES) > 64:
                _SAMPLES.clear()
            self.samples = _SAMPLES.setdefault(str(key), {}) if key else {}
            self.samples[number] = ts
        return number, ts

    def blocks_at(self, moments: Mapping[Hashable, int], head: tuple[int, int]) -> dict[Hashable, int]:
        """``key -> last block whose timestamp is <= moment`` (block 0 when the moment is before the
        chain's first blocks; the head for moments after it). Raises as ``head``."""
        head_n, head_ts = head
        out: dict[Hashable, int] = {}
        open_: dict[Hashable, list[int]] = {}
        blocks, stamps = self._sorted()
        for key, t in moments.items():
            if t >= head_ts:
                out[key] = head_n
                continue
            i = bisect.bisect_right(stamps, t)  # samples[:i] have ts <= t
            lo = blocks[i - 1] if i > 0 else 0
            hi = blocks[i] if i < len(blocks) else head_n
            open_[key] = [lo, min(hi, head_n)]
        step = 0
        while True:
            probes: dict[Hashable, list[int]] = {}
            for key, (lo, hi) in open_.items():
                if hi - lo <= 1:
                    continue
                t = moments[key]
                if step % 2 == 0 and lo in self.samples and hi in self.samples and self.samples[hi] > self.samples[lo]:
                    guess = lo + (t - self.samples[lo]) * (hi - lo) // (self.samples[hi] - self.samples[lo])
                    guess = min(max(guess, lo + 1), hi - 1)
                    probes[key] = [guess] + ([guess + 1] if guess + 1 < hi else [])
                else:
                    probes[key] = [(lo + hi) // 2]
            if not probes:
                break
            self.timestamps({b for bs in probes.values() for b in bs})
            for key, bs in probes.items():
                for b in bs:
                    lo, hi = open_[key]
                    if lo < b < hi:
                        open_[key] = [b, hi] if self.samples[b] <= moments[key] else [lo, b]
            step += 1
        self.rounds += step
        out.update({key: lo for key, (lo, _hi) in open_.items()})
        return out

    def timestamps(self, numbers: set[int]) -> dict[int, int]:
        """Timestamps of blocks (headers not seen before are read in one batch)."""
        missing = sorted(n for n in numbers if n not in self.samples)
        if missing:
            replies = call_many(self.client, [("eth_getBlockByNumber", [hex(n), False]) for n in missing], use_batch=self.use_batch)
            with _SAMPLES_LOCK:
                if len(self.samples) > _SAMPLES_MAX:
                    self.samples.clear()
                for n, reply in zip(missing, replies):
                    if isinstance(reply, RpcError):
                        raise ChainError(f"eth_getBlockByNumber({n}) failed: {reply.rpc_message[:200]}", method="eth_getBlockByNumber")
                    number, ts = _header(reply)
                    if number != n:
                        raise MalformedResponse(f"asked for block {n}, got {number}", method="eth_getBlockByNumber")
                    self.samples[n] = ts
        return {n: self.samples[n] for n in numbers}

    def _sorted(self) -> tuple[list[int], list[int]]:
        """Samples in block order, without any whose time is later than a later block's (a devnet's
        genesis may be newer than its block 1): the brackets need times that never go down."""
        blocks = sorted(self.samples)
        keep: list[int] = []
        floor = None
        for b in reversed(blocks):
            if floor is None or self.samples[b] <= floor:
                keep.append(b)
                floor = self.samples[b]
        keep.reverse()
        return keep, [self.samples[b] for b in keep]


def _header(block: Any) -> tuple[int, int]:
    try:
        return int(block["number"], 16), int(block["timestamp"], 16)
    except (TypeError, KeyError, ValueError):
        raise MalformedResponse("eth_getBlockByNumber answer is not a block header", method="eth_getBlockByNumber") from None


@dataclass
class _Logs:
    """Token Transfer logs to or from one wallet in a block range: transfers and the contracts seen."""

    transfers: list[tuple[str, str, str, str, int, int, str]] = field(default_factory=list)  # token, tx, key, dir, amount, block, other
    tokens: set[str] = field(default_factory=set)


def _scan_transfers(adapter: Any, wallet: str, first: int, last: int) -> _Logs:
    """ERC-20 ``Transfer`` logs from and to ``wallet`` in ``[first, last]``: two filters per request, in
    ranges of ``log_range`` blocks halved on "too many results". Raises ``ChainError`` (transient)
    when a range fails even at one block or the node is rate limiting."""
    found = _Logs()
    topic = abi.topic_for(wallet)
    step = adapter.chain.log_range
    start = first
    while start <= last:
        end = min(last, start + step - 1)
        span = {"fromBlock": hex(start), "toBlock": hex(end)}
        replies = call_many(adapter.client, [
            ("eth_getLogs", [{**span, "topics": [abi.TRANSFER_TOPIC, topic]}]),
            ("eth_getLogs", [{**span, "topics": [abi.TRANSFER_TOPIC, None, topic]}]),
        ], use_batch=adapter.use_batch)
        errors = [r for r in replies if isinstance(r, RpcError)]
        if errors:
            message = errors[0].rpc_message or ""
            if not RATE_LIMIT.search(message) and TOO_MANY.search(message) and step > 1:
                step = max(1, step // 2)
                continue
            raise ChainError(f"eth_getLogs failed for blocks {start}-{end}: {message[:200]}", method="eth_getLogs")
        seen: set[tuple[str, str, str]] = set()
        for direction, logs in zip(("out", "in"), replies):
            if not isinstance(logs, list):
                raise MalformedResponse("eth_getLogs answer is not a list", method="eth_getLogs")
            for log in logs:
                try:
                    topics = [t.lower() for t in log["topics"]]
                    if log.get("removed") or len(topics) != 3:  # 4 topics: an ERC-721 transfer (not valued)
                        continue
                    token = to_checksum(log["address"])
                    tx, index = log["transactionHash"], str(int(log["logIndex"], 16))
                    other = topics[2] if direction == "out" else topics[1]
                    amount = int(log["data"], 16) if log["data"] not in ("0x", "") else 0
                    block = int(log["blockNumber"], 16)
                except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                    raise MalformedResponse("malformed log entry in eth_getLogs answer", method="eth_getLogs") from None
                if (tx, index, direction) in seen:
                    continue
                seen.add((tx, index, direction))
                found.tokens.add(token)
                found.transfers.append((token, tx, index, direction, amount, block, to_checksum("0x" + other[-40:])))
        start = end + 1
        step = min(adapter.chain.log_range, step * 2)
    return found


def read_history(adapter: Any, request: HistoryRequest) -> HistoryPage:
    """One page of the wallet's past, newest days first (``history_days_per_page`` days, default 30):
    the blocks at those days' ends, the ERC-20 transfers between them, then every day's native and
    token balances and oracle prices in block-pinned Multicall batches (days share JSON-RPC batches).

    Tokens to read: the known assets, the tokens the cursor found in newer pages, and those seen in
    this page's logs (a token moved in an older page and not held now was zero on the newer days).
    When the node keeps no state at a day's block ("missing trie node" and similar) the page stops at
    the oldest day it could read: ``complete_from`` is that day, ``reason`` says why, ``done`` is True.

    Raises ``InvalidAddress`` for a bad address and ``ChainError`` (transient) when the node fails.
    """
    start_requests = adapter.pool.request_count
    wallet = parse_address(request.wallet.address).address
    cursor = dict(request.cursor or {})
    newest = date.fromisoformat(cursor["next"]) if cursor.get("next") else request.until
    if newest < request.since:
        return HistoryPage(daily={}, done=True, cursor=cursor, complete_from=request.since)
    per_page = int((adapter.chain.extra or {}).get("history_days_per_page") or DEFAULT_DAYS_PER_PAGE)
    oldest = max(request.since, newest - timedelta(days=per_page - 1))
    days = [newest - timedelta(days=i) for i in range((newest - oldest).days + 1)]  # newest first

    clock = BlockClock(adapter.client, use_batch=adapter.use_batch)
    head = clock.head()
    before = oldest - timedelta(days=1)
    ends = clock.blocks_at({d: day_end(d) for d in [*days, before]}, head)

    native_ref, fungibles, _collections, oracle_assets = adapter._known(request.known_assets)
    known_meta: dict[str, dict[str, Any]] = dict(cursor.get("tokens") or {})
    logs = _scan_transfers(adapter, wallet, ends[before] + 1, ends[newest]) if ends[newest] > ends[before] else _Logs()
    state = WalletState(ref_key=request.wallet.address, address=wallet, cursor={},
                         erc20={t for t in [*known_meta, *logs.tokens] if t not in fungibles}, tokens=known_meta)
    state.tokens = {c: {**m, "standard": "erc20"} for c, m in known_meta.items()}
    discovered = _token_metadata(adapter, state, fungibles, head[0])

    plan = Plan()
    native_idx = {wallet: plan.add(adapter.multicall_address, abi.call_with_address(abi.GET_ETH_BALANCE, wallet))}
    balance_rows = [plan.add_balances_of(wallet, sorted(set(fungibles) | state.erc20))]
    oracle_idx = {feed: (plan.add(feed, abi.DECIMALS), plan.add(feed, abi.LATEST_ROUND_DATA)) for feed in sorted(oracle_assets)}

    reader = MulticallReader(adapter.client, adapter.multicall_address, adapter.chunk_size, adapter.parallel, adapter.chunks_per_request)
    read, stop = _read_days(reader, plan.calls, [(d, ends[d]) for d in days])

    daily: dict[date, dict[str, int]] = {}
    prices: dict[date, dict[str, Any]] = {}
    assets: dict[str, AssetRef] = {native_ref.key: native_ref}
    for day, results in read.items():
        day_plan = Plan()
        day_plan.calls, day_plan.results = plan.calls, results
        problems: list = []
        balances = adapter._balances(day_plan, [state], native_ref, native_idx, fungibles, balance_rows, discovered, problems)
        daily[day] = {b.asset.key: b.amount for b in balances if b.amount}
        for b in balances:
            assets.setdefault(b.asset.key, b.asset)
        prices[day] = {q.asset.key: q for q in adapter._prices(day_plan, oracle_assets, oracle_idx, ends[day], problems)}

    stamps = clock.timestamps({t[5] for t in logs.transfers})
    transfers = []
    for token, tx, index, direction, amount, block, other in logs.transfers:
        asset = fungibles.get(token) or discovered.get(token)
        if asset is None:
            continue
        assets.setdefault(asset.key, asset)
        transfers.append(TransferRecord(owner=wallet, asset=asset, tx=tx, key=index, direction=direction, amount=amount,
                                        at=datetime.fromtimestamp(stamps[block], tz=dt_timezone.utc), height=block,
                                        counterparty=other))

    cursor["tokens"] = {c: {"symbol": a.symbol, "name": a.name, "decimals": a.decimals}
                        for c, a in sorted(discovered.items()) if a.kind == FUNGIBLE}
    if stop is not None:
        complete_from = min(read) if read else newest + timedelta(days=1)
        cursor["next"] = None
        return HistoryPage(daily=daily, assets=tuple(assets.values()), transfers=tuple(transfers), prices=prices,
                           complete_from=complete_from, reason=stop, cursor=cursor, done=True,
                           request_count=adapter.pool.request_count - start_requests)
    done = oldest <= request.since
    cursor["next"] = None if done else before.isoformat()
    return HistoryPage(daily=daily, assets=tuple(assets.values()), transfers=tuple(transfers), prices=prices,
                       complete_from=request.since if done else None, cursor=cursor, done=done,
                       request_count=adapter.pool.request_count - start_requests)


def _read_days(reader: MulticallReader, calls: list, days: list[tuple[date, int]]) -> tuple[dict[date, list], str | None]:
    """Every day's results in shared batches; when the node lacks the state of some block, again day
    by day from the newest, up to the first unreadable one. Returns (results per day read, reason the
    reading stopped or None)."""
    try:
        results = reader.run_many([(calls, block) for _day, block in days])
        return {day: r for (day, _block), r in zip(days, results)}, None
    except StateUnavailable:
        pass
    read: dict[date, list] = {}
    for day, block in days:
        try:
            read[day] = reader.run(calls, block)
        except StateUnavailable as exc:
            return read, f"the endpoint keeps no state at block {block} ({day.isoformat()}): it is not an archive node ({exc.detail[:120]})"
        except ChainError as exc:
            if not exc.permanent:
                raise
            return read, f"state at block {block} ({day.isoformat()}) cannot be read: {exc.detail[:160]}"
    return read, None


def _token_metadata(adapter: Any, state: Any, fungibles: Mapping[str, AssetRef], head: int) -> dict[str, AssetRef]:
    """AssetRefs of the tokens the known assets do not describe: from the cursor, else name/symbol/
    decimals read at the head in one Multicall batch (the sync's own metadata reader)."""
    plan = Plan()
    meta_idx, cached = adapter._plan_metadata(plan, [state], fungibles, {})
    if plan.calls:
        plan.results = MulticallReader(adapter.client, adapter.multicall_address, adapter.chunk_size, adapter.parallel,
                                       adapter.chunks_per_request).run(plan.calls, head)
    return adapter._read_metadata(plan, meta_idx, cached, [])
