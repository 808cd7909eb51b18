"""Bitcoin adapter: balances and history of addresses and extended public keys (gap-limit scan with cursors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Mapping, Sequence

from chains.base import (
    NATIVE,
    AssetRef,
    ChainConfig,
    ChainError,
    EndpointConfig,
    FetchRequest,
    FetchResult,
    HistoryPage,
    HistoryRequest,
    InvalidAddress,
    ParsedAddress,
    RateLimiter,
    TokenBalance,
    TransferRecord,
    WalletRef,
)
from chains.bitcoin.address import SCRIPT_TYPES, parse_address
from chains.bitcoin.backends import AddressStats, Backend, ChainTx
from chains.bitcoin.derivation import CHANGE, RECEIVE, account_key
from chains.history import daily_from_changes, utc_day, utc_time

CURSOR_VERSION = 1
HISTORY_CURSOR_VERSION = 1
BRANCHES = {"receive": RECEIVE, "change": CHANGE}
DEFAULT_FULL_RESCAN_EVERY = 24  # incremental scans skip unused addresses below used_max; catch up now and then


def _networks_match(parsed: ParsedAddress, network: str) -> bool:
    return network in parsed.networks or (network == "signet" and "testnet" in parsed.networks)


@dataclass
class _Branch:
    """One derivation chain (0 = receive, 1 = change) of one extended key during a scan."""

    number: int
    gap: int
    addresses: list[str] = field(default_factory=list)  # derived so far, index = position
    used_max: int = -1
    scanned_to: int = 0  # every index below was asked in this scan (or is trusted from the cursor)
    window: int = 0
    asked: dict[int, AddressStats] = field(default_factory=dict)

    def done(self) -> bool:
        return self.scanned_to > self.used_max + self.gap

    def absorb(self) -> None:
        """Walk answered indexes in order: an index with history extends the chain only if it is
        within ``gap`` of the last used one (BIP-44 gap rule: the first ``gap`` unused addresses
        in a row end the account)."""
        for index in sorted(self.asked):
            if index > self.used_max + self.gap:
                break
            if self.asked[index].has_history:
                self.used_max = max(self.used_max, index)


class _HdScan:
    """Scan state of one extended key: which addresses to ask next, and what was found."""

    def __init__(self, wallet: WalletRef, network: str, cursor: Mapping[str, Any] | None, batch_size: int, full_every: int, batched: bool = True) -> None:
        self.wallet = wallet
        self.key = account_key(wallet.address, network, wallet.script_type)
        self.gap = max(1, int(wallet.gap_limit or 20))
        # A batched backend answers 20 or 100 addresses for the price of one request: widen the
        # window each round. One request per address (Esplora): ask exactly what the gap rule needs.
        self.batch_size = batch_size
        self.batched = batched
        self.branches = {name: _Branch(number, self.gap, window=self.gap) for name, number in BRANCHES.items()}
        self.history: set[str] = set()
        self.incremental_runs = 0
        self.mode = "full"
        self.recheck: dict[str, tuple[str, int]] = {}  # address -> (branch, index) asked again from the cursor
        if cursor and self._cursor_fits(cursor) and int(cursor.get("incremental_runs", 0)) + 1 < full_every:
            self.mode = "incremental"
            self.incremental_runs = int(cursor.get("incremental_runs", 0)) + 1
            with_history = set(cursor.get("with_history", ()))
            for name, branch in self.branches.items():
                saved = cursor[name]
                branch.addresses = list(saved["addresses"])
                branch.used_max = int(saved["used_max"])
                branch.scanned_to = branch.used_max + 1  # re-ask the tail past the last used index
                for index, address in enumerate(branch.addresses[: branch.scanned_to]):
                    if address in with_history:
                        self.recheck[address] = (name, index)

    def _cursor_fits(self, cursor: Mapping[str, Any]) -> bool:
        try:
            if cursor.get("v") != CURSOR_VERSION or cursor.get("script_type") != self.key.script_type:
                return False
            if cursor.get("gap_limit") != self.gap:
                return False
            for name, number in BRANCHES.items():
                saved = cursor[name]
                if not isinstance(saved["addresses"], list) or int(saved["used_max"]) >= len(saved["addresses"]):
                    return False
                if saved["addresses"] and saved["addresses"][0] != self.key.address(number, 0):
                    return False  # a cursor of another key or network
            return True
        except (KeyError, TypeError, ValueError):
            return False

    def _address(self, branch: _Branch, index: int) -> str:
        while len(branch.addresses) <= index:
            branch.addresses.append(self.key.address(branch.number, len(branch.addresses)))
        return branch.addresses[index]

    def next_round(self, first: bool) -> dict[str, tuple[str, int]]:
        """Addresses to ask in this round -> (branch name, index)."""
        ask: dict[str, tuple[str, int]] = dict(self.recheck) if first else {}
        for name, branch in self.branches.items():
            if branch.done():
                continue
            end = max(branch.used_max + self.gap + 1, branch.scanned_to + branch.window)
            for index in range(branch.scanned_to, end):
                ask[self._address(branch, index)] = (name, index)
            branch.scanned_to = end
            branch.window = min(self.batch_size, branch.window * 2) if self.batched else 0
        return ask

    def absorb(self, asked: Mapping[str, tuple[str, int]], stats: Mapping[str, AddressStats]) -> None:
        for address, (name, index) in asked.items():
            self.branches[name].asked[index] = stats[address]
        for branch in self.branches.values():
            branch.absorb()

    def done(self) -> bool:
        return all(b.done() for b in self.branches.values())

    def found(self) -> dict[str, tuple[str, int, AddressStats]]:
        """Addresses of the account with history (within the gap rule) -> (branch, index, stats)."""
        out = {}
        for name, branch in self.branches.items():
            for index, st in branch.asked.items():
                if index <= branch.used_max and st.has_history:
                    out[branch.addresses[index]] = (name, index, st)
        return out

    def cursor(self) -> dict[str, Any]:
        found = self.found()
        cursor: dict[str, Any] = {"v": CURSOR_VERSION, "script_type": self.key.script_type, "gap_limit": self.gap}
        for name, branch in self.branches.items():
            keep = branch.used_max + self.gap + 1  # the tail we will re-ask next time
            cursor[name] = {"used_max": branch.used_max, "addresses": [self._address(branch, i) for i in range(keep)]}
        cursor["with_history"] = sorted(found)
        cursor["incremental_runs"] = self.incremental_runs
        return cursor


class BitcoinAdapter:
    """Watch-only Bitcoin: native BTC balance of each wallet (an address, or an extended public key
    scanned over its receive and change chains), confirmed and pending kept apart.

    Backends: ``bcoin`` (the HTTP API of a bcoin node; default on regtest) or ``esplora`` (default on
    mainnet/testnet: the given endpoints, or the providers in bitcoinlib's list). Choose with
    ``chain.extra["backend"]``; ``chain.extra["providers"]`` names bitcoinlib providers to use;
    ``chain.extra["batch_size"]`` (default 100) addresses per bcoin request.
    """

    family = "bitcoin"
    label = "Bitcoin"
    parse_address = staticmethod(parse_address)  # user input -> ParsedAddress, no network

    def __init__(
        self,
        chain: ChainConfig,
        endpoints: Sequence[EndpointConfig] = (),
        *,
        limiter: RateLimiter | None = None,
        backend: Backend | None = None,
    ) -> None:
        """Raises ``ChainError`` (permanent) for an unknown backend or no usable endpoint."""
        self.chain = chain
        self.network = chain.network or "mainnet"
        self.batch_size = int(chain.extra.get("batch_size", 100))
        self.full_every = int(chain.extra.get("full_rescan_every", DEFAULT_FULL_RESCAN_EVERY))
        self.asset = AssetRef(
            kind=NATIVE, address=None, symbol=chain.native_symbol or "BTC", name=chain.native_name or "Bitcoin", decimals=8
        )
        self._endpoints, self._limiter = list(endpoints), limiter
        self._backend = backend

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            kind = self.chain.extra.get("backend") or ("bcoin" if self.network == "regtest" else "esplora")
            if kind == "bcoin":
                from chains.bitcoin.backends.bcoin import BcoinBackend

                self._backend = BcoinBackend(self._endpoints, limiter=self._limiter, batch_size=self.batch_size,
                                             network=self.network)
            elif kind == "esplora":
                from chains.bitcoin.backends.esplora import EsploraBackend, provider_endpoints

                endpoints = self._endpoints or provider_endpoints(self.network, self.chain.extra.get("providers"))
                self._backend = EsploraBackend(self.network, endpoints, limiter=self._limiter)
            else:
                raise ChainError(f"unknown bitcoin backend {kind!r}", permanent=True)
        return self._backend

    @staticmethod
    def derived_addresses(cursor: Mapping[str, Any]) -> set[str]:
        """The addresses an extended key's last scan derived (used ones and the gap after them), from
        the cursor ``fetch`` returned for it; empty for a single address or an unknown cursor."""
        if not isinstance(cursor, Mapping) or cursor.get("v") != CURSOR_VERSION:
            return set()
        return {a for branch in BRANCHES for a in (cursor.get(branch) or {}).get("addresses", ()) if isinstance(a, str)}

    def normalize_address(self, text: str) -> WalletRef:
        """Canonical ``WalletRef`` for an address or extended public key of this chain's network.

        Raises ``SecretRefused`` (extended private key) or ``InvalidAddress``."""
        parsed = parse_address(text)
        if not _networks_match(parsed, self.network):
            raise InvalidAddress(f"this is a {'/'.join(parsed.networks)} address, not {self.network}")
        return WalletRef(address=parsed.address, script_type=parsed.script_type)

    def _check(self, wallet: WalletRef) -> ParsedAddress:
        parsed = parse_address(wallet.address)
        if not _networks_match(parsed, self.network):
            raise InvalidAddress(f"this is a {'/'.join(parsed.networks)} address, not {self.network}")
        if parsed.kind == "extended_key" and wallet.script_type and wallet.script_type not in SCRIPT_TYPES:
            raise InvalidAddress(f"unsupported script type {wallet.script_type!r} (use one of {', '.join(SCRIPT_TYPES)})")
        return parsed

    def fetch(self, request: FetchRequest) -> FetchResult:
        """Balances of every wallet in ``request`` at the tip height read first.

        Raises ``SecretRefused`` / ``InvalidAddress`` (permanent) for bad wallets before any request,
        and a transient ``ChainError`` when the backend fails or answers garbage: never partial zeros.
        """
        parsed = {w.address: self._check(w) for w in request.wallets}
        backend = self.backend
        start_count = backend.request_count
        height = backend.tip_height()

        singles = [w for w in request.wallets if parsed[w.address].kind == "address"]
        scans = {
            w.address: _HdScan(w, self.network, request.cursors.get(w.address), self.batch_size, self.full_every, backend.batched)
            for w in request.wallets
            if parsed[w.address].kind == "extended_key"
        }
        first_stats = _run_scans(backend, [parsed[w.address].address for w in singles], scans)
        single_stats = {w.address: first_stats[parsed[w.address].address] for w in singles}

        balances = []
        cursors: dict[str, Any] = {}
        for wallet in request.wallets:
            if wallet.address in scans:
                scan = scans[wallet.address]
                found = scan.found()
                total = _sum(st for _, _, st in found.values())
                details = {
                    **total,
                    "script_type": scan.key.script_type,
                    "scan": scan.mode,
                    "receive_used_max": scan.branches["receive"].used_max,
                    "change_used_max": scan.branches["change"].used_max,
                    "addresses": {
                        a: {"path": f"{BRANCHES[b]}/{i}", "confirmed": st.confirmed, "unconfirmed": st.unconfirmed, "utxo_count": st.utxo_count}
                        for a, (b, i, st) in sorted(found.items(), key=lambda kv: (kv[1][0] != "receive", kv[1][1]))
                    },
                }
                cursors[wallet.address] = scan.cursor()
            else:
                total = _sum([single_stats[wallet.address]])
                details = {**total, "script_type": parsed[wallet.address].script_type}
            confirmed, unconfirmed = details.pop("confirmed"), details.pop("unconfirmed")
            balances.append(TokenBalance(owner=wallet.address, asset=self.asset, amount=confirmed, unconfirmed=unconfirmed, details=details))
        return FetchResult(
            balances=tuple(balances),
            height=height,
            endpoint=backend.label,
            cursors=cursors,
            request_count=backend.request_count - start_count,
        )

    def history(self, request: HistoryRequest) -> HistoryPage:
        """One page of the wallet's past: every confirmed transaction of the address (or of every used
        address of the extended key, found with the gap-limit scan of ``fetch``), netted per
        transaction for the wallet, then the exact balance at the end of each UTC day.

        Pages: the first finds the addresses (and reads the first ``history_batch`` of them); each next
        page reads the transactions of the next batch (``chain.extra["history_batch"]``, default
        ``batch_size`` addresses on bcoin, one request; 10 on Esplora, one request per 25 transactions
        of each); the last one returns ``daily`` from the day of the first transaction (or ``since``,
        if later) to ``until`` and the transfers dated in that range. Pass ``cursor`` back until
        ``done``; a cursor of another wallet or range (or not one of ours) starts over.

        Raises ``SecretRefused`` / ``InvalidAddress`` (permanent) for a bad wallet, transient
        ``ChainError`` (``RateLimited`` for 429) when the backend fails or answers garbage."""
        wallet = request.wallet
        parsed = self._check(wallet)
        backend = self.backend
        start_count = backend.request_count
        cursor = dict(request.cursor or {})
        fits = (cursor.get("v") == HISTORY_CURSOR_VERSION and cursor.get("wallet") == wallet.address
                and cursor.get("range") == [request.since.isoformat(), request.until.isoformat()]
                and isinstance(cursor.get("addresses"), list) and isinstance(cursor.get("next"), int)
                and isinstance(cursor.get("txs"), list) and all(isinstance(r, list) and len(r) == 9 for r in cursor["txs"]))
        if not fits:
            if parsed.kind == "extended_key":
                scan = _HdScan(wallet, self.network, None, self.batch_size, 1, backend.batched)
                _run_scans(backend, [], {wallet.address: scan})
                found = scan.found()
                addresses = sorted(found, key=lambda a: (found[a][0] != "receive", found[a][1]))
            else:
                addresses = [parsed.address]
            cursor = {"v": HISTORY_CURSOR_VERSION, "wallet": wallet.address,
                      "range": [request.since.isoformat(), request.until.isoformat()],
                      "addresses": addresses, "next": 0, "txs": []}
        addresses = list(cursor["addresses"])
        own = set(addresses)
        # bcoin: one request per batch of addresses; Esplora: one per 25 transactions of each address.
        step = max(1, int(self.chain.extra.get("history_batch", self.batch_size if backend.batched else 10)))
        start = int(cursor["next"])
        batch = addresses[start : start + step]
        known = {row[0] for row in cursor["txs"]}
        rows = list(cursor["txs"])
        for tx in backend.address_txs(batch) if batch else ():
            if tx.txid not in known:
                known.add(tx.txid)
                rows.append(_tx_row(tx, own))
        cursor = {**cursor, "next": start + len(batch), "txs": rows}
        requests = backend.request_count - start_count
        if cursor["next"] < len(addresses):
            return HistoryPage(daily={}, assets=(self.asset,), cursor=cursor, done=False, request_count=requests)
        return self._history_page(request, rows, requests)

    def _history_page(self, request: HistoryRequest, rows: list[list[Any]], requests: int) -> HistoryPage:
        rows = sorted(rows, key=lambda r: (r[1], r[0]))
        first = max(request.since, utc_day(min(r[2] for r in rows))) if rows else request.until + timedelta(days=1)
        daily = daily_from_changes(((r[2], {NATIVE: r[3]}) for r in rows), first, request.until)
        transfers = []
        for txid, height, time, net, direction, amount, fee, owner, counterparty in rows:
            if direction and request.since <= utc_day(time) <= request.until:
                transfers.append(TransferRecord(owner=owner, asset=self.asset, tx=txid, key=NATIVE, direction=direction,
                                                amount=amount, at=utc_time(time), height=height, fee=fee,
                                                counterparty=counterparty))
        return HistoryPage(daily=daily, assets=(self.asset,), transfers=tuple(transfers), complete_from=request.since,
                           done=True, request_count=requests)


def _run_scans(backend: Backend, singles: list[str], scans: Mapping[str, _HdScan]) -> dict[str, AddressStats]:
    """Ask ``singles`` and the scans' rounds until every scan is done (the gap rule met); returns the
    stats of the first round (where the single addresses were asked)."""
    first_stats: dict[str, AddressStats] = {}
    first = True
    while first or not all(s.done() for s in scans.values()):
        rounds = {key: scan.next_round(first) for key, scan in scans.items()}
        ask = list(singles) if first else []
        for asked in rounds.values():
            ask.extend(asked)
        stats = backend.address_stats(ask) if ask else {}
        if first:
            first_stats = stats
        for key, scan in scans.items():
            scan.absorb(rounds[key], stats)
        first = False
    return first_stats


def _tx_row(tx: ChainTx, own: set[str]) -> list[Any]:
    """One transaction netted for the wallet whose addresses are ``own``: ``[txid, height, time, net,
    direction, amount, fee, owner, counterparty]``. Moving coins between its own addresses is no
    transfer, only its fee is (an ``out`` of amount 0). The fee is the wallet's when every input is its
    own; the counterparty is the one foreign address on the other side, if there is exactly one."""
    spent = sum(v for a, v in tx.inputs if a in own)
    received = sum(v for a, v in tx.outputs if a in own)
    net = received - spent
    all_own_inputs = bool(tx.inputs) and all(a in own for a, _ in tx.inputs)
    fee = sum(v for _, v in tx.inputs) - sum(v for _, v in tx.outputs) if all_own_inputs else 0
    if net > 0:
        direction, amount = "in", net
        others = {a for a, _ in tx.inputs if a not in own}
        owner = next(a for a, _ in tx.outputs if a in own)
    elif net < 0 or fee:
        direction, amount = "out", -net - fee
        others = {a for a, _ in tx.outputs if a not in own and a}
        owner = next(a for a, _ in tx.inputs if a in own)
    else:
        return [tx.txid, tx.height, tx.time, 0, "", 0, 0, "", ""]
    counterparty = next(iter(others)) if len(others) == 1 else ""
    return [tx.txid, tx.height, tx.time, net, direction, amount, fee, owner, counterparty]


def _sum(stats) -> dict[str, Any]:
    confirmed = unconfirmed = utxos = counted = 0
    txids: set[str] = set()
    exact = True
    for st in stats:
        confirmed += st.confirmed
        unconfirmed += st.unconfirmed
        utxos += st.utxo_count
        if st.txids is None:
            exact = False
            counted += st.tx_count
        else:
            txids |= st.txids
    out = {"confirmed": confirmed, "unconfirmed": unconfirmed, "utxo_count": utxos, "tx_count": len(txids) + counted}
    if not exact:
        out["tx_count_is_upper_bound"] = True  # Esplora counts per address: a tx touching two of them counts twice
    return out
