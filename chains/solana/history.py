"""Solana history: signatures of the wallet and its token accounts, walked newest to oldest from today's
balances with each transaction's pre/post SOL and token balances, into end-of-day balances and transfers.

Why backward: a token account no transaction in the range touched still has a balance, which only
the current read knows. Starting from the balances read now (each at its answer's context slot) and
undoing every later transaction gives the exact balance at the end of each day, without reading any
state of the past.

Several address streams (the wallet and each token account) are listed page by page with ``before``;
a transaction is undone only once every stream has listed past its slot (the "horizon"), so the walk
stays in slot order across streams. What a page could not finish (signatures listed but not yet
read, the running balances, each stream's position) goes into the cursor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Mapping

from chains.base import FUNGIBLE, NATIVE, AssetRef, HistoryRequest, MalformedResponse, TransferRecord
from chains.history import DAY_S, day_start, utc_day, utc_time
from chains.solana.rpc import Call, SolanaRpc

CURSOR_VERSION = 1
SIGNATURES_PER_CALL = 1000  # the most getSignaturesForAddress returns
TOKEN_STANDARDS = {"TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA": "spl", "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb": "token2022"}


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} is not a non-negative integer")
    return value


def parse_signatures(result: Any) -> list[tuple[int, int, str]]:
    """getSignaturesForAddress -> ``[(slot, block time, signature)]`` newest first."""
    if not isinstance(result, list):
        raise TypeError("signatures are not a list")
    out = []
    for item in result:
        sig = item["signature"]
        if not isinstance(sig, str) or not 64 <= len(sig) <= 88:
            raise ValueError("signature is not a base58 signature")
        block_time = item["blockTime"]
        if block_time is None:
            raise ValueError("the endpoint keeps no block time for this signature")
        out.append((_int(item["slot"], "slot"), _int(block_time, "blockTime"), sig))
    return out


@dataclass(frozen=True)
class TxChange:
    """What one transaction did to the watched wallet: ``sol`` lamports (fee included), ``fee`` when the
    wallet paid it, and per token account ``(mint, pre, post, decimals, program)``; counterparties."""

    sol: int
    fee: int
    sol_others: tuple[tuple[str, int], ...]
    tokens: Mapping[str, tuple[str, int, int, int, str]]
    token_others: Mapping[str, tuple[tuple[str, int], ...]]  # mint -> (other owner, change)


def parse_transaction(wallet: str, owned: set[str]):
    """A ``Call.parse`` for getTransaction (json encoding) reading ``wallet``'s changes; ``owned`` are the
    token accounts known to be the wallet's (their owner field is trusted otherwise)."""

    def parse(result: Any) -> TxChange | None:
        if result is None:
            return None  # listed but not kept (a node without the full ledger): history ends here
        meta, message = result["meta"], result["transaction"]["message"]
        keys = [str(k) if isinstance(k, str) else str(k["pubkey"]) for k in message["accountKeys"]]
        loaded = meta.get("loadedAddresses") or {}
        keys += [str(k) for k in loaded.get("writable", ())] + [str(k) for k in loaded.get("readonly", ())]
        pre, post = meta["preBalances"], meta["postBalances"]
        if not (isinstance(pre, list) and isinstance(post, list) and len(pre) == len(post) == len(keys)):
            raise ValueError("pre/post balances do not match the account keys")
        fee = _int(meta["fee"], "fee")
        sol, others = 0, []
        for i, key in enumerate(keys):
            change = _int(post[i], "postBalance") - _int(pre[i], "preBalance")
            if key == wallet:
                sol += change
            elif change:
                others.append((key, change + (fee if i == 0 else 0)))
        tokens: dict[str, list[Any]] = {}
        other_tokens: dict[tuple[str, str], int] = {}
        for field_name, sign in (("preTokenBalances", -1), ("postTokenBalances", 1)):
            for tb in meta.get(field_name) or ():
                account = keys[_int(tb["accountIndex"], "accountIndex")]
                amount = tb["uiTokenAmount"]["amount"]
                if not isinstance(amount, str) or not amount.isdigit():
                    raise ValueError("token amount is not a decimal string")
                mint, owner = str(tb["mint"]), tb.get("owner")
                if owner == wallet or account in owned:
                    row = tokens.setdefault(account, [mint, 0, 0, _int(tb["uiTokenAmount"]["decimals"], "decimals"),
                                                      TOKEN_STANDARDS.get(str(tb.get("programId")), "spl")])
                    row[1 if sign < 0 else 2] = int(amount)
                else:
                    k = (mint, str(owner or account))
                    other_tokens[k] = other_tokens.get(k, 0) + sign * int(amount)
        token_others: dict[str, list[tuple[str, int]]] = {}
        for (mint, owner), change in other_tokens.items():
            if change:
                token_others.setdefault(mint, []).append((owner, change))
        return TxChange(
            sol=sol, fee=fee if keys and keys[0] == wallet else 0, sol_others=tuple(others),
            tokens={a: tuple(v) for a, v in tokens.items()}, token_others={m: tuple(v) for m, v in token_others.items()},
        )

    return parse


def _clear(others: tuple[tuple[str, int], ...], sign: int) -> str:
    """The one account/owner that moved the opposite way, if exactly one did."""
    names = {name for name, change in others if change * sign < 0}
    return next(iter(names)) if len(names) == 1 else ""


@dataclass
class Walk:
    """The backward walk's state, as stored in the cursor (JSON types only)."""

    wallet: str
    since: date
    until: date
    # account -> [mint or "native", amount now being walked back, slot the amount was read at, decimals, standard]
    accounts: dict[str, list[Any]] = field(default_factory=dict)
    # address -> [before signature or None, oldest slot listed, its block time, done]
    streams: dict[str, list[Any]] = field(default_factory=dict)
    pending: dict[str, list[int]] = field(default_factory=dict)  # signature -> [slot, block time]
    next_day: date | None = None
    cut_by_since: bool = False
    complete_from: date | None = None  # set when the endpoint does not keep older transactions
    first_time: int | None = None
    floor: list[Any] = field(default_factory=lambda: [None, []])  # [lowest slot undone, its signatures undone]
    genesis: str | None = None

    @classmethod
    def load(cls, cursor: Mapping[str, Any], request: HistoryRequest, wallet: str) -> "Walk | None":
        if cursor.get("v") != CURSOR_VERSION or cursor.get("wallet") != wallet:
            return None
        if cursor.get("range") != [request.since.isoformat(), request.until.isoformat()]:
            return None
        try:
            return cls(
                wallet=wallet, since=request.since, until=request.until, accounts=dict(cursor["accounts"]),
                streams=dict(cursor["streams"]), pending=dict(cursor["pending"]),
                next_day=date.fromisoformat(cursor["next_day"]) if cursor["next_day"] else None,
                cut_by_since=bool(cursor["cut_by_since"]), first_time=cursor["first_time"],
                complete_from=date.fromisoformat(cursor["complete_from"]) if cursor.get("complete_from") else None,
                floor=list(cursor["floor"]), genesis=cursor.get("genesis"),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def dump(self) -> dict[str, Any]:
        return {
            "v": CURSOR_VERSION, "wallet": self.wallet, "range": [self.since.isoformat(), self.until.isoformat()],
            "accounts": self.accounts, "streams": self.streams, "pending": self.pending,
            "next_day": self.next_day.isoformat() if self.next_day else None, "cut_by_since": self.cut_by_since,
            "first_time": self.first_time, "floor": self.floor, "genesis": self.genesis,
            "complete_from": self.complete_from.isoformat() if self.complete_from else None,
        }

    def snapshot(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for mint, amount, *_ in self.accounts.values():
            key = NATIVE if mint == NATIVE else mint
            out[key] = out.get(key, 0) + amount
        return {k: v for k, v in out.items() if v}

    def emit_until(self, daily: dict[date, dict[str, int]], time: int | None) -> None:
        """Write the days whose end lies after ``time`` (None: every day left), going back from
        ``next_day``; with ``time`` None, stop at the first transaction's day unless ``since`` cut the walk."""
        if self.next_day is None:
            return
        floor = self.since
        if time is None and not self.cut_by_since:
            floor = max(self.since, utc_day(self.first_time)) if self.first_time is not None else self.until + timedelta(days=1)
        while self.next_day >= floor and (time is None or day_start(self.next_day) + DAY_S > time):
            daily[self.next_day] = self.snapshot()
            self.next_day -= timedelta(days=1)
        if time is None or self.next_day < self.since:
            self.next_day = None


class HistoryReader:
    """One page of a wallet's history (see the module docstring). ``committed(call)`` adds the adapter's
    commitment; ``native`` is the SOL asset; ``known`` maps mint -> AssetRef for names and symbols."""

    def __init__(self, rpc: SolanaRpc, committed, native: AssetRef, known: Mapping[str, AssetRef], *,
                 signatures_per_call: int = SIGNATURES_PER_CALL, transactions_per_page: int = 500) -> None:
        self.rpc, self.committed, self.native, self.known = rpc, committed, native, known
        self.limit = max(1, min(SIGNATURES_PER_CALL, signatures_per_call))
        self.per_page = max(1, transactions_per_page)

    async def start(self, request: HistoryRequest, wallet: str) -> Walk:
        """Today's balances (SOL and every token account, each with its context slot): the walk's start."""

        def lamports(result: Any) -> tuple[int, int]:
            return _int(result["context"]["slot"], "context slot"), _int(result["value"], "lamports")

        def token_accounts(standard: str):
            def parse(result: Any) -> tuple[int, dict[str, list[Any]]]:
                slot, out = _int(result["context"]["slot"], "context slot"), {}
                for item in result["value"]:
                    info = item["account"]["data"]["parsed"]["info"]
                    amount = info["tokenAmount"]["amount"]
                    if not isinstance(amount, str) or not amount.isdigit() or info["owner"] != wallet:
                        raise ValueError("token amount is not a decimal string, or the owner is another")
                    out[str(item["pubkey"])] = [str(info["mint"]), int(amount), slot,
                                                _int(info["tokenAmount"]["decimals"], "decimals"), standard]
                return slot, out
            return parse

        calls = [self.committed(Call("getBalance", [wallet], lamports))] + [
            self.committed(Call("getTokenAccountsByOwner", [wallet, {"programId": program}, {"encoding": "jsonParsed"}],
                                token_accounts(standard)))
            for program, standard in TOKEN_STANDARDS.items()]
        (slot, sol), *programs = await self.rpc.many(calls)
        walk = Walk(wallet=wallet, since=request.since, until=request.until, next_day=request.until)
        walk.accounts[wallet] = [NATIVE, sol, slot, self.native.decimals, "native"]
        for _, accounts in programs:
            walk.accounts.update(accounts)
        walk.streams = {address: [None, None, None, False] for address in walk.accounts}
        return walk

    async def page(self, walk: Walk) -> tuple[dict[date, dict[str, int]], list[TransferRecord]]:
        """List one page of every open stream, undo what lies past the horizon (at most
        ``transactions_per_page``), and return the days and transfers this settled."""
        await self._list(walk)
        open_streams = [s for s in walk.streams.values() if not s[3]]
        horizon = max((s[1] for s in open_streams), default=-1)
        ready = sorted(((v[0], v[1], sig) for sig, v in walk.pending.items() if v[0] > horizon), reverse=True)
        ready = ready[: self.per_page]
        owned = set(walk.accounts)
        changes = await self.rpc.many([
            self.committed(Call("getTransaction", [sig, {"encoding": "json", "maxSupportedTransactionVersion": 0}],
                                parse_transaction(walk.wallet, owned))) for _, _, sig in ready])
        daily: dict[date, dict[str, int]] = {}
        transfers: list[TransferRecord] = []
        for (slot, block_time, sig), change in zip(ready, changes):
            walk.emit_until(daily, block_time)
            if change is None:
                # Its day's end and every later day are exact (all that came after is undone); nothing
                # older can be read here.
                walk.complete_from = min(utc_day(block_time), walk.until + timedelta(days=1))
                walk.next_day, walk.pending = None, {}
                for stream in walk.streams.values():
                    stream[3] = True
                return daily, transfers
            found = self._undo(walk, slot, block_time, sig, change)
            del walk.pending[sig]
            if walk.since <= utc_day(block_time) <= walk.until:
                transfers.extend(self._transfers(walk, sig, slot, block_time, change))
            walk.first_time = block_time if walk.first_time is None else min(walk.first_time, block_time)
            if found:
                break  # list the account found before going further back
        waiting = [v[1] for v in walk.pending.values()] + [s[2] for s in walk.streams.values() if not s[3]]
        walk.emit_until(daily, max(waiting) if waiting else None)
        return daily, transfers

    async def _list(self, walk: Walk) -> None:
        addresses = [a for a, s in walk.streams.items() if not s[3]]
        calls = []
        for address in addresses:
            before = walk.streams[address][0]
            config: dict[str, Any] = {"limit": self.limit, **({"before": before} if before else {})}
            calls.append(self.committed(Call("getSignaturesForAddress", [address, config], parse_signatures)))
        pages = await self.rpc.many(calls)
        floor = day_start(walk.since)
        for address, entries in zip(addresses, pages):
            stream = walk.streams[address]
            for slot, block_time, sig in entries:
                if sig in walk.floor[1]:
                    continue  # undone already (same slot as the walk's lowest, listed again by another stream)
                if block_time >= floor:
                    walk.pending.setdefault(sig, [slot, block_time])
                else:
                    walk.cut_by_since = True
            if len(entries) < self.limit:
                stream[3] = True
            else:
                stream[0], stream[1], stream[2] = entries[-1][2], entries[-1][0], entries[-1][1]
                if entries[-1][1] < floor:
                    stream[3] = True

    def _undo(self, walk: Walk, slot: int, block_time: int, sig: str, change: TxChange) -> bool:
        """Walk the wallet's accounts back over one transaction; True when it revealed a token account
        of the wallet that is gone now (closed or given away), whose own signatures must be listed."""
        found = False
        wallet_row = walk.accounts[walk.wallet]
        if slot <= wallet_row[2]:
            wallet_row[1] -= change.sol
        for account, (mint, pre, post, decimals, standard) in change.tokens.items():
            row = walk.accounts.get(account)
            if row is None:
                walk.accounts[account] = [mint, pre, slot, decimals, standard]
                walk.streams[account] = [sig, slot, block_time, False]
                found = True
            elif slot <= row[2]:
                row[1] -= post - pre
        if any(row[1] < 0 for row in walk.accounts.values()):
            raise MalformedResponse("a balance went below zero walking back: the history is incomplete",
                                    method="getTransaction")
        walk.floor = [slot, walk.floor[1] + [sig]] if walk.floor[0] == slot else [slot, [sig]]
        return found

    def asset(self, mint: str, decimals: int, standard: str) -> AssetRef:
        if mint == NATIVE:
            return self.native
        known = self.known.get(mint)
        if known is not None:
            return known
        return AssetRef(kind=FUNGIBLE, address=mint, symbol=mint[:6], name="", decimals=decimals, standard=standard)

    def _transfers(self, walk: Walk, sig: str, slot: int, block_time: int, change: TxChange) -> list[TransferRecord]:
        at = utc_time(block_time)
        out: list[TransferRecord] = []
        moved = change.sol + change.fee  # SOL that went in or out besides the fee
        fee_left = change.fee
        if moved:
            direction = "in" if moved > 0 else "out"
            out.append(TransferRecord(owner=walk.wallet, asset=self.native, tx=sig, key=NATIVE, direction=direction,
                                      amount=abs(moved), at=at, height=slot, fee=fee_left if direction == "out" else 0,
                                      counterparty=_clear(change.sol_others, 1 if moved > 0 else -1)))
            fee_left = 0 if direction == "out" else fee_left
        by_mint: dict[str, list[Any]] = {}
        for mint, pre, post, decimals, standard in change.tokens.values():
            row = by_mint.setdefault(mint, [0, decimals, standard])
            row[0] += post - pre
        for mint, (delta, decimals, standard) in sorted(by_mint.items()):
            if not delta:
                continue
            direction = "in" if delta > 0 else "out"
            fee = fee_left if direction == "out" else 0
            fee_left -= fee
            out.append(TransferRecord(owner=walk.wallet, asset=self.asset(mint, decimals, standard), tx=sig, key=mint,
                                      direction=direction, amount=abs(delta), at=at, height=slot, fee=fee,
                                      counterparty=_clear(change.token_others.get(mint, ()), 1 if delta > 0 else -1)))
        if fee_left:  # the wallet paid for a transaction that moved nothing else out of it
            out.append(TransferRecord(owner=walk.wallet, asset=self.native, tx=sig, key="fee", direction="out", amount=0,
                                      at=at, height=slot, fee=fee_left))
        return out


def assets_of(walk: Walk, reader: HistoryReader) -> tuple[AssetRef, ...]:
    seen: dict[str, AssetRef] = {NATIVE: reader.native}
    for mint, _, _, decimals, standard in walk.accounts.values():
        if mint != NATIVE and mint not in seen:
            seen[mint] = reader.asset(mint, decimals, standard)
    return tuple(seen.values())
