"""SolanaAdapter: SOL, SPL Token / Token-2022 balances, Metaplex NFTs and protocol positions over JSON-RPC.

Calls per fetch of W wallets (asserted in tests/chains/test_solana_adapter.py), in three rounds:
    1. W * (1 getBalance + 2 getTokenAccountsByOwner [+ 2 getProgramAccounts native stake])
       [+ 1 getEpochInfo + 1 getProgramAccounts stake-pool discovery, when positions are asked]
    2. ceil(K / 100) getMultipleAccounts, K = 2 * M (M distinct mints with a balance: mint + metadata
       PDA) + the stake pools of the pool tokens held
    3. ceil(C / 100) getMultipleAccounts (C verified NFT collections whose metadata was not read yet)
Each round is sent as JSON-RPC batches of ``batch_size`` calls (default 100) plus one ``getGenesisHash``
per batch, so every answer is checked to come from the configured cluster; an endpoint that refuses
batches gets the same calls one by one, ``max_in_flight`` at a time. No getSlot: the height is the
lowest context slot among the answers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from chains.base import (
    FUNGIBLE,
    NATIVE,
    NFT_COLLECTION,
    AssetRef,
    ChainConfig,
    ChainError,
    EndpointConfig,
    FetchRequest,
    FetchResult,
    HistoryPage,
    HistoryRequest,
    MalformedResponse,
    NftHolding,
    Position,
    Problem,
    RateLimiter,
    TokenBalance,
    WalletRef,
)
from chains.endpoints import EndpointHealth, EndpointPool
from chains.metadata import fetch_json as default_fetch_json
from chains.metadata import image_url
from chains.solana.accounts import RawAccount, parse_multiple_accounts
from chains.solana.address import parse_address
from chains.solana.history import SIGNATURES_PER_CALL, HistoryReader, Walk, assets_of
from chains.solana.metaplex import METADATA_PROGRAM_ID, MetaplexError, MetaplexMetadata, metadata_address, parse_metadata
from chains.solana.protocols import PROTOCOLS, PositionContext, SolanaProtocol
from chains.solana.rpc import Call, SolanaRpc, thread_loop
from chains.solana.token2022 import MintError, MintInfo, parse_mint

TOKEN_PROGRAM_ID = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022_PROGRAM_ID = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
TOKEN_PROGRAMS = {TOKEN_PROGRAM_ID: "spl", TOKEN_2022_PROGRAM_ID: "token2022"}
MAX_ACCOUNTS_PER_CALL = 100
SOL_DECIMALS = 9
MAX_METADATA_URL = 2048
INCOMPLETE_CODES = frozenset({"mint_missing", "mint_unparseable", "stake_unparseable", "token_account_unparseable",
                              "protocol_unreadable"})
# Solana genesis hashes of the public clusters, for admins and seeds (the adapter reads the expected one
# from ``ChainConfig.extra["genesis_hash"]``).
GENESIS_HASHES = {
    "mainnet-beta": "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d",
    "devnet": "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG",
    "testnet": "4uhcVJyU9pJkvQyS88uRDiswHXSCkY3zQawwpjk2NsNY",
}


def fallback_symbol(mint: str) -> str:
    """Symbol shown for a mint without any metadata: its first six characters."""
    return mint[:6]


def _run_sync(work: Callable[[bool], Any]) -> Any:
    """Run the coroutine ``work(shared)`` to its end from sync code: in this thread's private loop
    (``shared``: its HTTP client is kept), or, when the caller already runs a loop, in a throw-away loop
    in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return thread_loop().run_until_complete(work(True))
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, work(False)).result()


def _lamports(result: Any) -> int:
    value = result["value"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("getBalance value is not a lamport amount")
    return value


def _token_accounts(result: Any) -> list[tuple[str, Any]]:
    value = result["value"]
    if not isinstance(value, list):
        raise TypeError("token accounts are not a list")
    return [(str(item["pubkey"]), item["account"]) for item in value]


def _epoch(result: Any) -> int:
    epoch = result["epoch"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError("epoch is not a number")
    return epoch


@dataclass
class _WalletRead:
    address: str
    lamports: int = 0
    tokens: dict[str, list[int]] = field(default_factory=dict)  # mint -> [amount, decimals, accounts]
    programs: dict[str, str] = field(default_factory=dict)  # mint -> spl | token2022


@dataclass
class _MintRead:
    mint: str
    standard: str
    decimals: int
    info: MintInfo | None = None
    name: str = ""
    symbol: str = ""
    uri: str = ""
    metaplex: MetaplexMetadata | None = None


class SolanaAdapter:
    """The Solana family adapter (see ``chains.base.ChainAdapter``).

    ``fetch_json`` (default ``chains.metadata.fetch_json``) reads NFT off-chain JSON; tests inject a
    stub so they never touch the network. ``chain.extra`` knobs: ``genesis_hash`` (the cluster's; every
    endpoint is checked against it; without it the first answer's hash is pinned in each wallet's
    cursor), ``commitment`` (default ``confirmed``), ``batch_size`` (calls per JSON-RPC batch, default
    100; 0 sends calls one by one), ``max_in_flight`` (HTTP requests at once, default 4),
    ``max_connections`` (per endpoint, default 16), ``protocols`` (names from
    ``chains.solana.protocols.PROTOCOLS``, default all), and each protocol's own knobs.
    """

    family = "solana"
    label = "Solana"
    parse_address = staticmethod(parse_address)  # user input -> ParsedAddress, no network

    def __init__(
        self,
        chain: ChainConfig,
        endpoints: Sequence[EndpointConfig],
        *,
        limiter: RateLimiter | None = None,
        health: EndpointHealth | None = None,
        fetch_json: Callable[..., dict[str, Any]] | None = None,
    ) -> None:
        self.chain = chain
        self.endpoints = tuple(endpoints)
        self.limiter, self.health = limiter, health
        self.fetch_json = fetch_json or default_fetch_json
        extra = chain.extra or {}
        self.commitment = str(extra.get("commitment", "confirmed"))
        self.genesis_hash = extra.get("genesis_hash") or None
        self.batch_size = int(extra.get("batch_size", 100))
        self.max_in_flight = int(extra.get("max_in_flight", extra.get("max_concurrency", 4)))
        self.max_connections = int(extra.get("max_connections", 16))
        self.protocol_names = tuple(extra.get("protocols") or PROTOCOLS)
        self.native = AssetRef(kind=NATIVE, address=None, symbol=chain.native_symbol or "SOL",
                               name=chain.native_name or "Solana", decimals=SOL_DECIMALS, standard="native")

    # ------------------------------------------------------------------ interface

    def normalize_address(self, text: str) -> WalletRef:
        """Raises ``SecretRefused`` for a keypair, ``InvalidAddress`` for anything not a 32-byte key."""
        return WalletRef(address=parse_address(text).address)

    def fetch(self, request: FetchRequest) -> FetchResult:
        """Read SOL, token balances, NFTs and positions of the request's wallets (sync).

        Runs in this thread's private event loop, reused across fetches with its HTTP client (in a
        throw-away loop in a helper thread when the caller already has a running loop). Raises
        ``InvalidAddress`` (permanent) before any request for a bad address, ``ChainError`` (transient)
        when no endpoint of the right cluster answers or answers are malformed (the message names the
        endpoint), ``RpcError`` when the endpoint answers an error object. Broken metadata and protocol
        accounts are returned as ``problems``.
        """
        wallets = [parse_address(w.address).address for w in request.wallets]
        return _run_sync(lambda shared: self._fetch(request, wallets, shared=shared))

    def history(self, request: HistoryRequest) -> HistoryPage:
        """One page of the wallet's past (see ``chains.solana.history``): the first page reads today's SOL
        and token accounts; every page lists one page of signatures (``before``) for the wallet and each
        of its token accounts, reads up to ``chain.extra["history_page_txs"]`` (default 500) transactions
        past the point every list has reached (batched like ``fetch``), and returns the days (newest
        first) and transfers this settled. Pass ``cursor`` back until ``done``; a cursor of another
        wallet or range starts over. ``known_assets`` name the mints (others get their first six
        characters as symbol). Days start at the first transaction, or at ``since`` when older history
        exists. An endpoint that lists a signature but answers ``getTransaction`` with null keeps no
        older history: the walk stops there, ``complete_from`` is that transaction's day and ``reason`` says why.

        Raises ``InvalidAddress`` (permanent) for a bad address, transient ``ChainError`` (``RateLimited``
        for 429) when no endpoint answers properly, ``RpcError`` for an error object."""
        wallet = parse_address(request.wallet.address).address
        return _run_sync(lambda shared: self._history(request, wallet, shared=shared))

    async def _history(self, request: HistoryRequest, wallet: str, *, shared: bool) -> HistoryPage:
        walk = Walk.load(request.cursor or {}, request, wallet)
        pool = EndpointPool(self.endpoints, limiter=self.limiter, health=self.health)
        expected = self.genesis_hash or (walk.genesis if walk else None)
        rpc = SolanaRpc(pool, genesis_hash=expected, batch_size=self.batch_size, max_in_flight=self.max_in_flight,
                        max_connections=self.max_connections, shared=shared)
        extra = self.chain.extra or {}
        reader = HistoryReader(rpc, self._committed, self.native, {a.address: a for a in request.known_assets if a.address},
                               signatures_per_call=int(extra.get("history_signatures", SIGNATURES_PER_CALL)),
                               transactions_per_page=int(extra.get("history_page_txs", 500)))
        try:
            if walk is None:
                walk = await reader.start(request, wallet)
            daily, transfers = await reader.page(walk)
        finally:
            await rpc.close()
        walk.genesis = rpc.seen_genesis or walk.genesis
        done = walk.next_day is None and not walk.pending and all(stream[3] for stream in walk.streams.values())
        return HistoryPage(daily=daily, assets=assets_of(walk, reader), transfers=tuple(transfers),
                           complete_from=walk.complete_from or request.since, cursor={} if done else walk.dump(), done=done,
                           reason="the endpoint keeps no older transactions (getTransaction answered null)"
                           if walk.complete_from else "",
                           request_count=pool.request_count)

    def check_endpoint(self, endpoint: EndpointConfig) -> str:
        """Ask ``endpoint`` which cluster it serves (for an admin saving it): returns its genesis hash.

        Raises ``WrongCluster`` when it differs from ``chain.extra["genesis_hash"]`` (if set), and a
        ``ChainError`` naming the endpoint when it cannot be reached or answers something else.
        """
        async def ask() -> str:
            pool = EndpointPool([endpoint], limiter=self.limiter, health=EndpointHealth())
            rpc = SolanaRpc(pool, genesis_hash=self.genesis_hash, batch_size=0, max_connections=1)
            try:
                await rpc.many([Call("getBlockHeight", [])])  # any call: the genesis check comes first
            except ChainError:
                if endpoint.url in pool.excluded:
                    raise pool.excluded[endpoint.url] from None
                raise
            finally:
                await rpc.close()
            return str(rpc.seen_genesis)

        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            return executor.submit(asyncio.run, ask()).result()

    # ------------------------------------------------------------------ reading

    def _expected_genesis(self, request: FetchRequest, wallets: list[str]) -> str | None:
        if self.genesis_hash:
            return str(self.genesis_hash)
        pinned = sorted({str(c["genesis_hash"]) for w in wallets if (c := request.cursors.get(w)) and c.get("genesis_hash")})
        return pinned[0] if pinned else None

    def _committed(self, call: Call) -> Call:
        """The call with this adapter's commitment in its config object (added when it has none)."""
        params = list(call.params)
        if params and isinstance(params[-1], dict):
            params[-1] = {"commitment": self.commitment, **params[-1]}
        else:
            params.append({"commitment": self.commitment})
        return replace(call, params=params)

    async def _fetch(self, request: FetchRequest, wallets: list[str], *, shared: bool) -> FetchResult:
        pool = EndpointPool(self.endpoints, limiter=self.limiter, health=self.health)
        expected = self._expected_genesis(request, wallets)
        rpc = SolanaRpc(pool, genesis_hash=expected, batch_size=self.batch_size, max_in_flight=self.max_in_flight,
                        max_connections=self.max_connections, shared=shared)
        problems: list[Problem] = []
        protocols = [PROTOCOLS[name](self.chain) for name in self.protocol_names] if request.include_positions else []
        try:
            reads, epoch = await self._round_one(rpc, wallets, protocols, problems)
            holdings = {r.address: {m: t[0] for m, t in r.tokens.items() if t[0] > 0} for r in reads}
            ctx = PositionContext(native=self.native, epoch=epoch or 0, holdings=holdings, assets={})
            extra_keys = sorted({k for p in protocols for k in p.account_keys(ctx)})
            mints, accounts = await self._read_mints(rpc, reads, extra_keys, problems)
            nfts = await self._nfts(rpc, reads, mints, problems) if request.include_nfts else []
        finally:
            await rpc.close()
        balances: list[TokenBalance] = []
        for read in reads:
            balances.append(TokenBalance(owner=read.address, asset=self.native, amount=read.lamports))
            for mint in sorted(read.tokens):
                amount, _, count = read.tokens[mint]
                m = mints.get(mint)
                if amount == 0 or m is None or self._is_nft(m, amount):
                    continue
                balances.append(TokenBalance(owner=read.address, asset=self._fungible_asset(m), amount=amount,
                                             details={"token_accounts": count}))
        positions: list[Position] = []
        if protocols:
            ctx.holdings = {r.address: {b.asset.key: b.amount for b in balances if b.owner == r.address and b.asset.address}
                            for r in reads}
            ctx.assets = {b.asset.key: b.asset for b in balances if b.asset.address}
            ctx.accounts = accounts
            for protocol in protocols:
                positions.extend(protocol.positions(ctx, problems))
        if expected is None and rpc.seen_genesis:
            problems.append(Problem("genesis_unpinned", "no expected genesis hash is configured for this chain: "
                                    f"answers are trusted from cluster {rpc.seen_genesis} from now on"))
        cursors = {w: {"genesis_hash": rpc.seen_genesis} for w in wallets} if rpc.seen_genesis else {}
        endpoint = (pool.last_endpoint or pool.endpoints[0]).label
        return FetchResult(
            balances=tuple(balances), height=min(rpc.slots) if rpc.slots else None, endpoint=endpoint,
            nfts=tuple(nfts), positions=tuple(positions), problems=tuple(problems), cursors=cursors,
            request_count=pool.request_count, complete=not any(p.code in INCOMPLETE_CODES for p in problems),
        )

    async def _round_one(self, rpc: SolanaRpc, wallets: list[str], protocols: list[SolanaProtocol],
                         problems: list[Problem]) -> tuple[list[_WalletRead], int | None]:
        """Balances, token accounts and the protocols' own first-round calls, in one set of batches."""
        calls: list[Call] = []
        spans: list[tuple[Any, int, int]] = []  # (who takes the answers, start, end)

        def add(owner: Any, new: list[Call]) -> None:
            spans.append((owner, len(calls), len(calls) + len(new)))
            calls.extend(self._committed(c) for c in new)

        for address in wallets:
            add(address, [Call("getBalance", [address], _lamports)] + [
                Call("getTokenAccountsByOwner", [address, {"programId": program}, {"encoding": "jsonParsed"}], _token_accounts)
                for program in TOKEN_PROGRAMS])
            for protocol in protocols:
                add((protocol, address), protocol.wallet_calls(address))
        if protocols:
            add("epoch", [Call("getEpochInfo", [], _epoch)])
            for protocol in protocols:
                add(protocol, protocol.fetch_calls())
        answers = await rpc.many(calls)
        reads, epoch = [], None
        for owner, start, end in spans:
            part = answers[start:end]
            if isinstance(owner, str) and owner == "epoch":
                epoch = part[0]
            elif isinstance(owner, str):
                read = _WalletRead(owner, lamports=part[0])
                for program, items in zip(TOKEN_PROGRAMS.values(), part[1:]):
                    for pubkey, account in items:
                        self._add_token_account(read, program, pubkey, account, problems)
                reads.append(read)
            elif isinstance(owner, tuple):
                owner[0].take_wallet(owner[1], part)
            else:
                owner.take_fetch(part)
        return reads, epoch

    def _add_token_account(self, read: _WalletRead, standard: str, pubkey: str, account: Any, problems: list[Problem]) -> None:
        data = account.get("data") if isinstance(account, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("parsed"), dict):
            problems.append(Problem("token_account_unparseable", "token account was not returned as jsonParsed", pubkey))
            return
        try:
            parsed = data["parsed"]
            if parsed.get("type") != "account":
                return
            info = parsed["info"]
            mint = str(info["mint"])
            amount_text, decimals = info["tokenAmount"]["amount"], int(info["tokenAmount"]["decimals"])
            if not isinstance(amount_text, str) or not amount_text.isdigit():
                raise ValueError("amount is not a decimal string")
            amount = int(amount_text)
            if info.get("owner") != read.address:
                raise ValueError("token account owned by another wallet")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedResponse(f"malformed jsonParsed token account ({exc})", method="getTokenAccountsByOwner") from None
        row = read.tokens.setdefault(mint, [0, decimals, 0])
        row[0] += amount
        row[2] += 1
        read.programs[mint] = standard

    async def _get_accounts(self, rpc: SolanaRpc, keys: list[str]) -> dict[str, RawAccount | None]:
        """getMultipleAccounts (base64) in chunks of 100 keys, batched; returns key -> account or None."""
        chunks = [keys[i : i + MAX_ACCOUNTS_PER_CALL] for i in range(0, len(keys), MAX_ACCOUNTS_PER_CALL)]
        calls = [self._committed(Call("getMultipleAccounts", [chunk, {"encoding": "base64"}],
                                      lambda result, n=len(chunk): parse_multiple_accounts(result, n))) for chunk in chunks]
        results = await rpc.many(calls)
        return {k: acc for chunk, values in zip(chunks, results) for k, acc in zip(chunk, values)}

    async def _read_mints(self, rpc: SolanaRpc, reads: list[_WalletRead], extra_keys: list[str],
                          problems: list[Problem]) -> tuple[dict[str, _MintRead], dict[str, RawAccount | None]]:
        mints: dict[str, _MintRead] = {}
        for read in reads:
            for mint, (amount, decimals, _) in read.tokens.items():
                if amount > 0 and mint not in mints:
                    mints[mint] = _MintRead(mint, read.programs[mint], decimals)
        pdas = {mint: metadata_address(mint) for mint in mints}
        keys = [k for mint in sorted(mints) for k in (mint, pdas[mint])]
        accounts = await self._get_accounts(rpc, keys + [k for k in extra_keys if k not in set(keys)])
        for mint, m in mints.items():
            acc = accounts.get(mint)
            if acc is None:
                problems.append(Problem("mint_missing", "mint account not found", mint))
            else:
                try:
                    m.info = parse_mint(acc.data)
                    m.decimals = m.info.decimals
                    if m.standard == "token2022" and m.info.metadata_pointer in (None, mint):
                        ext = m.info.token_metadata()
                        if ext is not None:
                            m.name, m.symbol, m.uri = ext.name, ext.symbol, ext.uri
                except MintError as exc:
                    problems.append(Problem("mint_unparseable", str(exc), mint))
            meta_acc = accounts.get(pdas[mint])
            if meta_acc is not None and meta_acc.owner == METADATA_PROGRAM_ID:
                try:
                    m.metaplex = parse_metadata(meta_acc.data)
                except MetaplexError as exc:
                    problems.append(Problem("metadata_unparseable", str(exc), mint))
                else:
                    if not (m.name or m.symbol):
                        m.name, m.symbol, m.uri = m.metaplex.name, m.metaplex.symbol, m.metaplex.uri
        return mints, accounts

    # ------------------------------------------------------------------ NFTs

    @staticmethod
    def _is_nft(m: _MintRead, amount: int) -> bool:
        # Supply 1 too (when the mint was readable): a zero-decimals fungible token of which a wallet
        # happens to hold exactly one unit is not an NFT.
        return m.decimals == 0 and amount == 1 and (m.info is None or m.info.supply == 1)

    async def _nfts(self, rpc: SolanaRpc, reads: list[_WalletRead], mints: dict[str, _MintRead],
                    problems: list[Problem]) -> list[NftHolding]:
        held = [(read.address, mints[mint]) for read in reads for mint, (amount, _, _) in sorted(read.tokens.items())
                if mint in mints and self._is_nft(mints[mint], amount)]
        if not held:
            return []
        collections: dict[str, MetaplexMetadata | None] = {}
        wanted = sorted({m.metaplex.verified_collection for _, m in held if m.metaplex and m.metaplex.verified_collection})
        for key in wanted:
            if key in mints and mints[key].metaplex is not None:
                collections[key] = mints[key].metaplex
        missing = [k for k in wanted if k not in collections]
        if missing:
            pdas = {k: metadata_address(k) for k in missing}
            accounts = await self._get_accounts(rpc, [pdas[k] for k in missing])
            for key in missing:
                acc = accounts.get(pdas[key])
                collections[key] = None
                if acc is not None and str(acc.owner) == METADATA_PROGRAM_ID:
                    try:
                        collections[key] = parse_metadata(bytes(acc.data))
                    except MetaplexError as exc:
                        problems.append(Problem("metadata_unparseable", str(exc), key))
        offchain = await self._offchain({m.uri for _, m in held if m.uri}, problems)
        out = []
        for owner, m in held:
            doc = offchain.get(m.uri) or {}
            coll_key = m.metaplex.verified_collection if m.metaplex else None
            if coll_key:
                cmeta = collections.get(coll_key)
                collection = AssetRef(kind=NFT_COLLECTION, address=coll_key, symbol=cmeta.symbol if cmeta else m.symbol,
                                      name=cmeta.name if cmeta else "", decimals=0, standard=m.standard)
            else:
                collection = AssetRef(kind=NFT_COLLECTION, address=m.mint, symbol=m.symbol or fallback_symbol(m.mint),
                                      name=m.name, decimals=0, standard=m.standard)
            name = m.name or str(doc.get("name") or "")
            description = doc.get("description")
            out.append(NftHolding(
                owner=owner, collection=collection, token_id=m.mint, amount=1, name=name[:200],
                image_url=image_url(doc, self.chain.ipfs_gateway) if doc else "",
                metadata_url=m.uri if len(m.uri) <= MAX_METADATA_URL else "",
                description=description[:1000] if isinstance(description, str) else "",
            ))
        return out

    async def _offchain(self, uris: set[str], problems: list[Problem]) -> dict[str, dict[str, Any]]:
        sem = asyncio.Semaphore(4)

        async def one(uri: str) -> tuple[str, dict[str, Any] | None]:
            async with sem:
                try:
                    return uri, await asyncio.to_thread(self.fetch_json, uri, ipfs_gateway=self.chain.ipfs_gateway)
                except Exception as exc:  # noqa: BLE001 - off-chain metadata never fails a sync
                    detail = exc.detail if isinstance(exc, ChainError) else type(exc).__name__
                    problems.append(Problem("nft_metadata_unavailable", detail, uri[:100]))
                    return uri, None

        return {uri: doc for uri, doc in await asyncio.gather(*(one(u) for u in sorted(uris))) if doc is not None}

    # ------------------------------------------------------------------ assets and positions

    def _fungible_asset(self, m: _MintRead) -> AssetRef:
        # The logo: the token's Metaplex (or Token-2022) metadata document, whose "image" the app's logo
        # worker fetches later (never during a sync).
        return AssetRef(kind=FUNGIBLE, address=m.mint, symbol=(m.symbol or fallback_symbol(m.mint))[:32],
                        name=m.name[:200], decimals=m.decimals, standard=m.standard, logo_url=m.uri.strip()[:500])
