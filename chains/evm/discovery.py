"""Token and NFT discovery from Transfer / TransferSingle / TransferBatch logs, in bounded block ranges."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from chains.base import ChainError, MalformedResponse, Problem
from chains.endpoints import JsonRpcClient, RpcError
from chains.evm.batching import call_many
from chains.evm.multicall import RATE_LIMIT
from chains.evm.abi import (
    TRANSFER_BATCH_TOPIC,
    TRANSFER_SINGLE_TOPIC,
    TRANSFER_TOPIC,
    decode_uint_array_pair,
    topic_for,
)
from chains.evm.address import to_checksum

# What providers answer when a range holds too many logs or the response would be too big.
TOO_MANY = re.compile(
    r"(?i)too many|more than \d+|query returned more than|response size|exceed|limit|block range|range is too (large|wide)|timeout"
)


@dataclass
class ScanFindings:
    """What one scan found, per wallet (checksummed): contracts and NFT ids received."""

    erc20: dict[str, set[str]] = field(default_factory=dict)
    erc721: dict[str, dict[str, set[int]]] = field(default_factory=dict)
    erc1155: dict[str, dict[str, set[int]]] = field(default_factory=dict)
    scanned_to: dict[str, int] = field(default_factory=dict)  # wallets whose scan completed
    problems: list[Problem] = field(default_factory=list)
    ranges: list[tuple[int, int]] = field(default_factory=list)  # (from, to) of every eth_getLogs pair


class LogScanner:
    """Scans logs to many wallets at once: the wallets' topics go in one OR-list (``address_chunk``
    per filter), ranges of ``log_range`` blocks, halved on "too many results"-style errors and
    grown back after successes.
    """

    def __init__(self, client: JsonRpcClient, *, log_range: int, address_chunk: int = 100, use_batch: bool = True) -> None:
        self.client = client
        self.use_batch = use_batch
        self.log_range = max(1, log_range)
        self.address_chunk = max(1, address_chunk)

    def scan(self, groups: dict[int, list[str]], to_block: int) -> ScanFindings:
        """Scan ``[from_block, to_block]`` for each ``from_block -> wallets`` group.

        A range that fails even at one block is reported as a ``log_scan_failed`` problem and the
        wallets concerned are left out of ``scanned_to`` (their cursor must not advance).
        Raises ``ChainError`` (transient) when no endpoint answers or the node says it is rate
        limiting, ``MalformedResponse`` on
        answers that are not lists of logs.
        """
        found = ScanFindings()
        for from_block, wallets in sorted(groups.items()):
            for i in range(0, len(wallets), self.address_chunk):
                chunk = wallets[i:i + self.address_chunk]
                if self._scan_chunk(chunk, from_block, to_block, found):
                    for w in chunk:
                        found.scanned_to[w] = to_block
        return found

    def _scan_chunk(self, wallets: Sequence[str], start: int, to_block: int, found: ScanFindings) -> bool:
        by_topic = {topic_for(w): w for w in wallets}
        topics = list(by_topic)
        step = self.log_range
        while start <= to_block:
            end = min(to_block, start + step - 1)
            span = {"fromBlock": hex(start), "toBlock": hex(end)}
            replies = call_many(self.client, [
                ("eth_getLogs", [{**span, "topics": [TRANSFER_TOPIC, None, topics]}]),
                ("eth_getLogs", [{**span, "topics": [[TRANSFER_SINGLE_TOPIC, TRANSFER_BATCH_TOPIC], None, None, topics]}]),
            ], use_batch=self.use_batch)
            found.ranges.append((start, end))
            errors = [r for r in replies if isinstance(r, RpcError)]
            if errors:
                message = errors[0].rpc_message or ""
                if RATE_LIMIT.search(message):  # "limit" below would match this too: not a range problem
                    raise ChainError(f"rate limited: {message[:200]}", method="eth_getLogs")
                if TOO_MANY.search(message) and step > 1:
                    step = max(1, step // 2)
                    continue
                found.problems.append(Problem(
                    "log_scan_failed", f"eth_getLogs failed for blocks {start}-{end}: {message[:200]}", ""))
                return False
            for logs in replies:
                self._collect(logs, by_topic, found)
            start = end + 1
            step = min(self.log_range, step * 2)
        return True

    @staticmethod
    def _collect(logs: Any, by_topic: dict[str, str], found: ScanFindings) -> None:
        if not isinstance(logs, list):
            raise MalformedResponse("eth_getLogs answer is not a list", method="eth_getLogs")
        for log in logs:
            try:
                topics = [t.lower() for t in log["topics"]]
                contract = to_checksum(log["address"])
                if log.get("removed"):
                    continue
                if topics[0] == TRANSFER_TOPIC and len(topics) in (3, 4):
                    wallet = by_topic.get(topics[2])
                    if wallet is None:
                        continue
                    if len(topics) == 3:
                        found.erc20.setdefault(wallet, set()).add(contract)
                    else:
                        found.erc721.setdefault(wallet, {}).setdefault(contract, set()).add(int(topics[3], 16))
                elif topics[0] in (TRANSFER_SINGLE_TOPIC, TRANSFER_BATCH_TOPIC) and len(topics) == 4:
                    wallet = by_topic.get(topics[3])
                    if wallet is None:
                        continue
                    data = bytes.fromhex(log["data"][2:])
                    if topics[0] == TRANSFER_SINGLE_TOPIC:
                        ids = [int.from_bytes(data[:32], "big")] if len(data) == 64 else []
                    else:
                        pair = decode_uint_array_pair(data)
                        ids = pair[0] if pair else []
                    found.erc1155.setdefault(wallet, {}).setdefault(contract, set()).update(ids)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                raise MalformedResponse("malformed log entry in eth_getLogs answer", method="eth_getLogs") from None


