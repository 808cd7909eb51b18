"""EvmAdapter: balances, discovered tokens, NFTs and oracle prices of many wallets, pinned to one block."""

from __future__ import annotations

import time
from decimal import Decimal
from itertools import compress, repeat
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import httpx

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
    PriceQuote,
    Problem,
    RateLimiter,
    TokenBalance,
    WalletRef,
    token_balances,
)
from chains.endpoints import EndpointBroken, EndpointHealth, EndpointPool, JsonRpcClient, RpcError
from chains.evm import abi
from chains.evm.address import canonical, canonical_seen, parse_address, to_checksum
from chains.evm.discovery import LogScanner, ScanFindings
from chains.evm.history import read_history
from chains.evm.plan import BalanceRow, Plan as _Plan, WalletState as _WalletState
from chains.evm.multicall import (
    DEFAULT_CHUNK_SIZE, DEFAULT_CHUNKS_PER_REQUEST, DEFAULT_PARALLEL, CallResult, MulticallReader, WordResults, shared_pool,
)
from chains import metadata
from chains.metadata import fetch_many
from chains.evm.nft import MetadataFetcher, default_fetcher, display_url, expand_uri, load_metadata
from chains.evm.protocols import PROTOCOLS
from chains.evm.protocols.base import EvmProtocol, ProtocolContext, ProtocolRun
from chains.gcpause import without_cyclic_gc

NFT_STANDARDS = ("erc721", "erc1155")
# Problems that mean part of the holdings could not be read (FetchResult.complete = False).
INCOMPLETE = {"native_balance_failed", "balance_call_failed", "balance_bad_return", "log_scan_failed", "nft_ownership_failed"}
METADATA_RETRY_S = 6 * 3600
PRICE_CURRENCY = "USD"
_ZERO_WORD = bytes(32)


class EvmAdapter:
    """One adapter for every EVM chain (mainnet, L2s, anvil), configured by ``ChainConfig`` and endpoints.

    Knobs (keyword arguments, or ``ChainConfig.extra``): ``chunk_size`` / ``multicall_chunk_size``
    calls per ``eth_call`` (default 500); ``parallel`` / ``multicall_parallel`` chunks in flight at
    once (default 2); ``multicall_chunks_per_request`` chunks per JSON-RPC batch (default 2; 1 for
    endpoints that dislike batches); ``rpc_batch`` False to never send JSON-RPC batches (batches an
    endpoint refuses with an error object are retried one by one anyway); ``log_address_chunk`` wallets per log filter (100);
    ``nft_metadata_per_fetch`` metadata documents fetched per call (50), ``nft_metadata_concurrency`` at
    once (4) within ``nft_metadata_budget_s`` seconds (20); ``native_oracle`` a price
    feed for the native coin when ``known_assets`` carries no native ``AssetRef`` with an oracle;
    ``history_days_per_page`` days of history per ``history()`` page (30).
    ``metadata_fetcher(uri) -> dict`` is injectable (tests); ``sleep``, ``health`` and ``http`` go to
    the endpoint pool and JSON-RPC client.
    """

    family = "evm"
    label = "EVM"
    parse_address = staticmethod(parse_address)  # user input -> ParsedAddress, no network

    def __init__(
        self,
        chain: ChainConfig,
        endpoints: Sequence[EndpointConfig],
        *,
        limiter: RateLimiter | None = None,
        chunk_size: int | None = None,
        parallel: int | None = None,
        metadata_fetcher: MetadataFetcher | None = None,
        sleep: Callable[[float], None] = time.sleep,
        health: EndpointHealth | None = None,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if chain.chain_id is None:
            # Without it no endpoint can be checked, and another chain's balances would be stored as this one's.
            raise ChainError(f"EVM chain {chain.slug} has no chain id: set it in the admin", permanent=True)
        self.chain = chain
        self.pool = EndpointPool(endpoints, limiter=limiter, health=health, sleep=sleep, verify=self._verify_chain_id)
        self.client = JsonRpcClient(self.pool, http=http)
        extra = chain.extra or {}
        self.chunk_size = int(chunk_size or extra.get("multicall_chunk_size") or DEFAULT_CHUNK_SIZE)
        self.parallel = int(parallel or extra.get("multicall_parallel") or DEFAULT_PARALLEL)
        self.use_batch = bool(extra.get("rpc_batch", True))
        self.chunks_per_request = int(extra.get("multicall_chunks_per_request") or DEFAULT_CHUNKS_PER_REQUEST) if self.use_batch else 1
        self.multicall_address = to_checksum(chain.multicall_address)
        self.address_chunk = int(extra.get("log_address_chunk") or 100)
        self.metadata_per_fetch = int(extra.get("nft_metadata_per_fetch") or 50)
        self.metadata_concurrency = int(extra.get("nft_metadata_concurrency") or metadata.CONCURRENCY)
        self.metadata_budget_s = float(extra.get("nft_metadata_budget_s") or metadata.BUDGET_S)
        self.metadata_fetcher = metadata_fetcher or default_fetcher(chain.ipfs_gateway)
        self._clock = clock
        self.last_scan: ScanFindings | None = None  # for tests and diagnostics
        self.last_eth_calls = 0
        self.last_rounds = 0  # rounds of eth_calls in the last fetch (balances, then protocols' later rounds)

    # ------------------------------------------------------------------ addresses

    def normalize_address(self, text: str) -> WalletRef:
        """Checksummed ``WalletRef``. Raises ``InvalidAddress`` / ``SecretRefused``."""
        return WalletRef(address=parse_address(text).address)

    # ------------------------------------------------------------------ fetch

    def fetch(self, request: FetchRequest) -> FetchResult:
        """Read native and ERC-20 balances, discovered tokens, NFTs and oracle prices at one block.

        Raises ``InvalidAddress`` (permanent) for a bad wallet address, a permanent ``ChainError`` when
        the endpoint serves another chain id or the chain has no Multicall3, and a transient
        ``ChainError`` (including ``MalformedResponse`` / ``RateLimited``) when no endpoint gives a
        usable answer. Broken tokens, failed log ranges and metadata are ``problems``, not errors.
        Balances come per wallet, native first, then the listed tokens in ``known_assets``' order.
        """
        start_requests = self.pool.request_count
        wallets = self._wallet_states(request)
        # The token list (thousands of AssetRefs) is sorted out on another thread while this one waits
        # for the node's head and logs: none of it depends on their answers. (Not started yet, when
        # every thread of the pool is busy: this thread does it, nothing waits on a queue.)
        known = shared_pool().submit(self._known, request.known_assets)
        try:
            height = self._head()
            problems: list[Problem] = []
            self._scan(wallets, height, problems)
        except BaseException:
            known.cancel()
            raise
        native_ref, fungibles, collections, oracle_assets = self._known(request.known_assets) if known.cancel() else known.result()
        protocols = self._protocols(problems) if request.include_positions else {}

        # From here to the prices, tens of thousands of objects are made (calls, results, TokenBalances),
        # none of them in a reference cycle: collections they would set off are wasted work.
        with without_cyclic_gc():
            ctx = ProtocolContext(
                wallets=tuple(w.address for w in wallets), height=height, native=native_ref, assets=dict(fungibles),
                nft_ids={w.address: w.erc721 for w in wallets},  # the wallets' own sets: see ProtocolContext
            )
            run = ProtocolRun(protocols, ctx)

            # Everything that is read at ``height``, in as few eth_calls as possible.
            plan = _Plan()
            native_idx = {w.address: plan.add(self.multicall_address,
                                              abi.call_with_address(abi.GET_ETH_BALANCE, w.address)) for w in wallets}
            protocol_tokens = {t for p in protocols.values() for t in p.balance_tokens()}
            # Every wallet's balanceOf calls: the token list in its own order (so the same list gives the
            # same calls and the same balances, in the same order), then the protocols' tokens that it
            # does not hold, then the wallet's tokens only known from its logs, both sorted. No sort of
            # 20,000 keys, no copy of them: a set minus a keys view would go through every key.
            listed_order = list(fungibles)
            # their AssetRefs taken at once, in order: the reader's threads then look up nothing
            listed_assets: list[AssetRef] | None = list(fungibles.values())
            if extra := sorted(t for t in protocol_tokens if t not in fungibles):
                listed_order, listed_assets = listed_order + extra, None

            def is_listed(token: str) -> bool:
                return token in fungibles or token in protocol_tokens

            balance_rows = [
                plan.add_balances_of(w.address, listed_order + sorted(t for t in w.erc20 if not is_listed(t)))
                if not all(map(is_listed, w.erc20))
                else plan.add_balances_of(w.address, listed_order, listed_assets)
                for w in wallets]
            meta_idx, meta_cache = self._plan_metadata(plan, wallets, fungibles, collections)
            oracle_idx = {feed: (plan.add(feed, abi.DECIMALS), plan.add(feed, abi.LATEST_ROUND_DATA))
                          for feed in sorted(oracle_assets)}
            # Position NFTs (Uniswap V3) are read by their protocol, not as collectibles.
            position_nfts = {c for p in protocols.values() for c in p.nft_contracts()}
            nft_idx = self._plan_nfts(plan, wallets, position_nfts) if request.include_nfts else {}
            protocol_idx = {name: [plan.add(t, d) for t, d in calls] for name, calls in run.pending.items()}

            reader = MulticallReader(self.client, self.multicall_address, self.chunk_size, self.parallel,
                                     self.chunks_per_request)
            # balanceOf answers become TokenBalances chunk by chunk, while the node works on the next chunks
            by_chunk: dict[int, _RowBalances] = {}
            plan.results = reader.run(plan.calls, height, each=lambda first, results: by_chunk.__setitem__(
                first, _row_balances(balance_rows, first, results, fungibles)))
            # Its (target, calldata) pairs, one per token, are not needed any more: freed now, they never
            # meet the collection that follows the pause (the results are what is read from here on).
            plan.calls = []
            self.last_eth_calls = reader.eth_calls
            self.last_rounds = 1

            discovered_meta = self._read_metadata(plan, meta_idx, meta_cache, problems)
            balances = self._balances(plan, wallets, native_ref, native_idx, fungibles, balance_rows, discovered_meta,
                                      problems, protocol_tokens, ctx.failed_balances,
                                      [by_chunk[first] for first in sorted(by_chunk)])
            prices = self._prices(plan, oracle_assets, oracle_idx, height, problems)
        nfts = self._nfts(plan, wallets, nft_idx, collections, discovered_meta, problems) if request.include_nfts else []
        positions: list[Position] = []
        if protocols:
            positions = self._positions(run, ctx, plan, protocol_idx, balance_rows, discovered_meta, height)
            problems.extend(ctx.problems)
            balances, nfts = _without_accounted(positions, balances, nfts)

        cursors = {w.ref_key: self._cursor(w, discovered_meta) for w in wallets}
        return FetchResult(
            balances=tuple(balances),
            height=height,
            endpoint=self.client.endpoint_label,
            nfts=tuple(nfts),
            positions=tuple(positions),
            prices=tuple(prices),
            cursors=cursors,
            problems=tuple(problems),
            request_count=self.pool.request_count - start_requests,
            complete=not any(p.code in INCOMPLETE for p in problems),
            incomplete_protocols=tuple(sorted({p.protocol for p in problems if p.protocol})),
        )

    # ------------------------------------------------------------------ history

    def history(self, request: HistoryRequest) -> HistoryPage:
        """One page of the wallet's daily balances, token transfers and oracle prices of the past
        (``chains.evm.history.read_history``: what it reads, what it cannot, what it raises)."""
        return read_history(self, request)

    # ------------------------------------------------------------------ steps

    def _wallet_states(self, request: FetchRequest) -> list[_WalletState]:
        states: dict[str, _WalletState] = {}
        for ref in request.wallets:
            address = parse_address(ref.address).address
            if address in states:
                continue
            cursor = request.cursors.get(ref.address) or request.cursors.get(address) or {}
            states[address] = _WalletState(ref_key=ref.address, address=address, cursor=cursor if isinstance(cursor, Mapping) else {})
        return list(states.values())

    def _head(self) -> int:
        """The block number every read is pinned to (each endpoint's chain id is checked by the pool
        before its first use: ``_verify_chain_id``)."""
        return _hex_int(self.client.request("eth_blockNumber", []), "eth_blockNumber")

    def _verify_chain_id(self, endpoint: EndpointConfig) -> None:
        """Ask ``endpoint`` itself for its chain id. Raises ``EndpointBroken`` when it serves another chain
        or cannot say (no eth_chainId: that will not change, so it is not retried), ``ChainError``
        (transient) when it does not answer."""
        try:
            raw = self.client.request_at(endpoint, "eth_chainId")
        except RpcError as exc:
            if exc.code == -32601 or "not found" in exc.rpc_message.lower() or "not supported" in exc.rpc_message.lower():
                raise EndpointBroken(f"endpoint cannot tell its chain id ({exc.rpc_message})",
                                     endpoint=endpoint.url, method="eth_chainId") from None
            raise ChainError(f"node refused eth_chainId: {exc.rpc_message}", endpoint=endpoint.url, method="eth_chainId") from None
        try:
            actual = _hex_int(raw, "eth_chainId")
        except MalformedResponse as exc:
            raise EndpointBroken(f"undecodable eth_chainId answer: {exc.detail}", endpoint=endpoint.url, method="eth_chainId") from None
        if actual != self.chain.chain_id:
            raise EndpointBroken(f"endpoint serves chain id {actual}, but {self.chain.slug} is chain id {self.chain.chain_id}",
                                 endpoint=endpoint.url, method="eth_chainId")

    def _known(self, assets: Iterable[AssetRef]) -> tuple[AssetRef, dict[str, AssetRef], dict[str, AssetRef], dict[str, AssetRef]]:
        native_ref: AssetRef | None = None
        fungibles: dict[str, AssetRef] = {}
        collections: dict[str, AssetRef] = {}
        any_oracle = False
        seen = canonical_seen
        for asset in assets:  # thousands of listed tokens: one pass over them
            kind, address = asset.kind, asset.address
            if kind == FUNGIBLE and address is not None and asset.standard not in NFT_STANDARDS:
                fungibles[seen(address) or canonical(address)] = asset
                if asset.oracle:
                    any_oracle = True
            elif kind == NATIVE or address is None:
                native_ref = native_ref or asset
            elif kind == NFT_COLLECTION or asset.standard in NFT_STANDARDS:
                collections[canonical(address)] = asset
        if native_ref is None:
            native_ref = AssetRef(
                kind=NATIVE, address=None, symbol=self.chain.native_symbol,
                name=self.chain.native_name or self.chain.native_symbol, decimals=self.chain.native_decimals,
                standard="native", oracle=(self.chain.extra or {}).get("native_oracle"),
            )
        oracle_assets: dict[str, AssetRef] = {}
        # (the listed tokens with a feed, as the list keeps them: a second pass only when there is one)
        with_oracle = [a for a in fungibles.values() if a.oracle] if any_oracle else []
        for asset in [native_ref, *with_oracle, *collections.values()]:
            if asset.oracle:
                oracle_assets.setdefault(canonical(asset.oracle), asset)
        return native_ref, fungibles, collections, oracle_assets

    def _scan(self, wallets: list[_WalletState], height: int, problems: list[Problem]) -> None:
        """Decide each wallet's first block, scan logs, merge findings into the wallet states."""
        groups: dict[int, list[str]] = {}
        for w in wallets:
            last = w.cursor.get("last_scanned_block")
            if isinstance(last, int) and not isinstance(last, bool) and -1 <= last <= height:
                w.from_block = last + 1
                w.erc20 = {to_checksum(c) for c in w.cursor.get("erc20", []) if _is_address(c)}
                for name in ("erc721", "erc1155"):
                    ids = w.cursor.get("nft_ids", {})
                    getattr(w, name).update({
                        to_checksum(c): {int(i) for i in ids.get(c, [])}
                        for c in w.cursor.get(name, []) if _is_address(c)
                    })
                w.tokens = {to_checksum(c): dict(m) for c, m in w.cursor.get("tokens", {}).items() if _is_address(c)}
                w.nft_meta = {k: dict(v) for k, v in w.cursor.get("nft_meta", {}).items() if isinstance(v, Mapping)}
            else:
                # First scan, or the chain went backwards (devnet reset, deep reorg): start over.
                start = self.chain.log_scan_start
                w.from_block = start if start is not None else max(0, height - self.chain.log_scan_default_depth)
            if w.from_block > height:
                w.scanned_to = height
            else:
                groups.setdefault(w.from_block, []).append(w.address)
        if not groups:
            self.last_scan = ScanFindings()
            return
        scanner = LogScanner(self.client, log_range=self.chain.log_range, address_chunk=self.address_chunk, use_batch=self.use_batch)
        found = scanner.scan(groups, height)
        self.last_scan = found
        problems.extend(found.problems)
        for w in wallets:
            if w.address in found.scanned_to:
                w.scanned_to = found.scanned_to[w.address]
            w.erc20 |= found.erc20.get(w.address, set())
            for contract, ids in found.erc721.get(w.address, {}).items():
                w.erc721.setdefault(contract, set()).update(ids)
            for contract, ids in found.erc1155.get(w.address, {}).items():
                w.erc1155.setdefault(contract, set()).update(ids)

    def _plan_metadata(self, plan: _Plan, wallets: list[_WalletState], fungibles: Mapping[str, AssetRef],
                       collections: Mapping[str, AssetRef]) -> tuple[dict[str, tuple[str, dict[str, int]]], dict[str, dict[str, Any]]]:
        """name/symbol(/decimals) of contracts seen in logs that neither the token list nor a cursor describes."""
        cached: dict[str, dict[str, Any]] = {}
        for w in wallets:
            cached.update(w.tokens)
        wanted: dict[str, str] = {}
        for w in wallets:
            for c in w.erc20:
                wanted.setdefault(c, "erc20")
            for c in w.erc721:
                wanted[c] = "erc721"
            for c in w.erc1155:
                wanted[c] = "erc1155"
        out: dict[str, tuple[str, dict[str, int]]] = {}
        for contract, standard in sorted(wanted.items()):
            if contract in fungibles or contract in collections:
                continue
            if contract in cached and cached[contract].get("standard") == standard:
                out[contract] = (standard, {})
                continue
            idx = {"name": plan.add(contract, abi.NAME), "symbol": plan.add(contract, abi.SYMBOL)}
            if standard == "erc20":
                idx["decimals"] = plan.add(contract, abi.DECIMALS)
            out[contract] = (standard, idx)
        return out, cached

    def _plan_nfts(self, plan: _Plan, wallets: list[_WalletState], skip: set[str]) -> dict[tuple[str, str, int], tuple[str, int, int]]:
        idx: dict[tuple[str, str, int], tuple[str, int, int]] = {}
        for w in wallets:
            for contract, ids in sorted(w.erc721.items()):
                if contract in skip:
                    continue
                for token_id in sorted(ids):
                    idx[(w.address, contract, token_id)] = (
                        "erc721",
                        plan.add(contract, abi.call_with_uint(abi.OWNER_OF, token_id)),
                        plan.add(contract, abi.call_with_uint(abi.TOKEN_URI, token_id)),
                    )
            for contract, ids in sorted(w.erc1155.items()):
                for token_id in sorted(ids):
                    idx[(w.address, contract, token_id)] = (
                        "erc1155",
                        plan.add(contract, abi.BALANCE_OF_1155 + abi.address_word(w.address) + abi.uint_word(token_id)),
                        plan.add(contract, abi.call_with_uint(abi.URI, token_id)),
                    )
        return idx

    def _read_metadata(self, plan: _Plan, meta_idx: Mapping[str, tuple[str, dict[str, int]]],
                       cached: Mapping[str, Mapping[str, Any]], problems: list[Problem]) -> dict[str, AssetRef]:
        out: dict[str, AssetRef] = {}
        for contract, (standard, idx) in meta_idx.items():
            if not idx:
                m = cached[contract]
                name, symbol, decimals = str(m.get("name", "")), str(m.get("symbol", "?")), int(m.get("decimals", 0))
            else:
                name = _text(plan[idx["name"]]) or ""
                symbol = _text(plan[idx["symbol"]]) or "?"
                decimals = 0
                if "decimals" in idx:
                    value = abi.decode_uint(plan[idx["decimals"]].data) if plan[idx["decimals"]].ok else None
                    if value is None or value > 255:
                        problems.append(Problem("token_metadata", "decimals() failed or is out of range; using 0", contract))
                    else:
                        decimals = value
            kind = FUNGIBLE if standard == "erc20" else NFT_COLLECTION
            out[contract] = AssetRef(kind=kind, address=contract, symbol=symbol, name=name, decimals=decimals, standard=standard)
        return out

    def _balances(self, plan: _Plan, wallets: list[_WalletState], native_ref: AssetRef, native_idx: Mapping[str, int],
                  fungibles: Mapping[str, AssetRef], balance_rows: Sequence[BalanceRow],
                  discovered: Mapping[str, AssetRef], problems: list[Problem], protocol_tokens: set[str] = frozenset(),
                  protocol_failed: set[str] | None = None, found: Sequence[_RowBalances] | None = None) -> list[TokenBalance]:
        """The wallets' native and token balances (zero ones left out), in call order. ``found``: what
        ``_row_balances`` made of the plan's results already, chunk after chunk (default: made here)."""
        out: list[TokenBalance] = []
        failed: dict[tuple[str, str], list[str]] = {}
        for w in wallets:
            result = plan[native_idx[w.address]]
            amount = abi.decode_uint(result.data) if result.ok else None
            if amount is None:
                problems.append(Problem("native_balance_failed", f"getEthBalance failed: {result.error or 'bad return data'}", w.address))
            else:
                out.append(TokenBalance(owner=w.address, asset=native_ref, amount=amount))
        for part in (found if found is not None else [_row_balances(balance_rows, 0, plan.results, fungibles)]):
            if part.unlisted:  # tokens only known from the logs: their metadata was read in the same round
                for item in part.balances:
                    if isinstance(item, TokenBalance):
                        out.append(item)
                    elif (asset := discovered.get(item[1])) is not None:
                        out.append(TokenBalance(item[0], asset, item[2]))
            else:
                out.extend(part.balances)
            for code, token, wallet in part.failed:
                if token in protocol_tokens and protocol_failed is not None:
                    protocol_failed.add(token)  # a protocol's contract: its problem, not the holdings'
                    continue
                failed.setdefault((code, token), []).append(wallet)
        by_wallet = {w.address: w for w in wallets}
        for (code, token), owners in failed.items():
            what = "balanceOf reverted" if code == "balance_call_failed" else "balanceOf returned data that is not one uint256"
            problems.append(Problem(code, f"{what} for {len(owners)} wallet(s); token skipped", token))
            if token not in fungibles:
                # A discovered contract that does not behave like an ERC-20: stop reading it.
                for owner in owners:
                    by_wallet[owner].erc20.discard(token)
        return out

    def _prices(self, plan: _Plan, oracle_assets: Mapping[str, AssetRef], oracle_idx: Mapping[str, tuple[int, int]],
                height: int, problems: list[Problem]) -> list[PriceQuote]:
        out: list[PriceQuote] = []
        for feed, (dec_i, round_i) in oracle_idx.items():
            decimals = abi.decode_uint(plan[dec_i].data) if plan[dec_i].ok else None
            round_data = abi.decode_round_data(plan[round_i].data) if plan[round_i].ok else None
            if decimals is None or decimals > 77 or round_data is None or round_data[0] <= 0:
                problems.append(Problem("oracle_failed", "price feed did not return a positive answer", feed))
                continue
            price = Decimal(round_data[0]).scaleb(-decimals)
            out.append(PriceQuote(asset=oracle_assets[feed], price=price, currency=PRICE_CURRENCY,
                                  source=f"chainlink:{feed}", at_height=height))
        return out

    def _nfts(self, plan: _Plan, wallets: list[_WalletState], nft_idx: Mapping[tuple[str, str, int], tuple[str, int, int]],
              collections: Mapping[str, AssetRef], discovered: Mapping[str, AssetRef], problems: list[Problem]) -> list[NftHolding]:
        """The NFTs the wallets still hold (ownership re-checked at the block), with their metadata:
        documents fetched a few at a time, each URL once, within one time budget, so a slow or hostile
        metadata host costs at most its deadline per document and never holds up the balances."""
        held, to_fetch = self._held_nfts(plan, wallets, nft_idx, problems)
        fetched = fetch_many(to_fetch, lambda u: load_metadata(u, self.metadata_fetcher, self.chain.ipfs_gateway),
                             concurrency=self.metadata_concurrency, budget_s=self.metadata_budget_s)
        out: list[NftHolding] = []
        for w, contract, token_id, standard, amount, uri in held:
            meta = self._nft_metadata(w, contract, token_id, uri, fetched, problems)
            collection = collections.get(contract) or discovered.get(contract) or AssetRef(
                kind=NFT_COLLECTION, address=contract, symbol="?", name="", decimals=0, standard=standard)
            out.append(NftHolding(
                owner=w.address, collection=collection, token_id=str(token_id), amount=amount,
                name=str(meta.get("name", "")), image_url=str(meta.get("image", "")),
                metadata_url=display_url(uri or ""), description=str(meta.get("description", "")),
            ))
        for w in wallets:  # keep only metadata of items still held
            still = {f"{n.collection.address}:{n.token_id}" for n in out if n.owner == w.address}
            w.nft_meta = {k: v for k, v in w.nft_meta.items() if k in still}
        return out

    def _held_nfts(self, plan: _Plan, wallets: list[_WalletState], nft_idx: Mapping[tuple[str, str, int], tuple[str, int, int]],
                   problems: list[Problem]) -> tuple[list[tuple], list[str]]:
        """Items whose ownership call says the wallet holds them, as (wallet, contract, id, standard,
        amount, uri), and the metadata URLs worth fetching now (new or changed, or a failure due for a
        retry; at most ``metadata_per_fetch``)."""
        by_wallet = {w.address: w for w in wallets}
        fetches_left = self.metadata_per_fetch
        held: list[tuple[_WalletState, str, int, str, int, str | None]] = []
        to_fetch: list[str] = []
        for (wallet, contract, token_id), (standard, own_i, uri_i) in nft_idx.items():
            w = by_wallet[wallet]
            ids = (w.erc721 if standard == "erc721" else w.erc1155)[contract]
            own = plan[own_i]
            if not own.ok and own.error != "reverted":
                problems.append(Problem("nft_ownership_failed", f"could not check token {token_id}: {own.error}", contract))
                continue
            if standard == "erc721":
                owner = abi.decode_address(own.data) if own.ok else None
                amount = 1 if owner is not None and owner == wallet.lower() else 0
            else:
                amount = (abi.decode_uint(own.data) or 0) if own.ok else 0
            if amount <= 0:
                ids.discard(token_id)  # sold, burned or never ours: a new Transfer log brings it back
                continue
            uri_result = plan[uri_i]
            uri = abi.decode_long_text(uri_result.data) if uri_result.ok else None
            if uri:
                uri = expand_uri(uri, token_id) if standard == "erc1155" else uri
                if self._metadata_stale(w.nft_meta.get(f"{contract}:{token_id}", {}), uri) and uri not in to_fetch and fetches_left > 0:
                    fetches_left -= 1
                    to_fetch.append(uri)
            held.append((w, contract, token_id, standard, amount, uri))
        return held, to_fetch

    def _metadata_stale(self, meta: Mapping[str, Any], uri: str) -> bool:
        """A cached document of another URI, or a failure whose retry time has come."""
        return meta.get("uri") != uri or ("error" in meta and self._clock() >= meta.get("retry_at", 0))

    def _nft_metadata(self, w: _WalletState, contract: str, token_id: int, uri: str | None,
                      fetched: Mapping[str, Any], problems: list[Problem]) -> dict[str, Any]:
        """One item's metadata: the cached document, the one fetched now, or a failure kept for a retry
        later (and reported)."""
        if not uri:
            problems.append(Problem("nft_metadata", f"token {token_id}: tokenURI/uri failed", contract))
            return {}
        key = f"{contract}:{token_id}"
        meta = w.nft_meta.get(key, {})
        if not self._metadata_stale(meta, uri):
            return meta
        if uri not in fetched:
            return {}  # not fetched this time (over the per-fetch count or the time budget)
        answer = fetched[uri]
        if isinstance(answer, Exception):
            detail = getattr(answer, "detail", None) or type(answer).__name__
            problems.append(Problem("nft_metadata", f"token {token_id}: {detail}", contract))
            meta = {"uri": uri, "error": str(detail)[:200], "retry_at": self._clock() + METADATA_RETRY_S}
        else:
            meta = answer.as_cursor()
        w.nft_meta[key] = meta
        return meta

    # ------------------------------------------------------------------ positions

    def _protocols(self, problems: list[Problem]) -> dict[str, EvmProtocol]:
        """The chain's configured protocols; an unknown name or a bad address is a Problem, not an error."""
        out: dict[str, EvmProtocol] = {}
        for name, contracts in sorted((self.chain.protocols or {}).items()):
            cls = PROTOCOLS.get(name)
            if cls is None:
                problems.append(Problem("protocol_unknown", f"no EVM protocol module named {name!r}", name, protocol=name))
                continue
            try:
                out[name] = cls(contracts or {})
            except ValueError as exc:
                problems.append(Problem("protocol_config", str(exc), name, protocol=name))
        return out

    def _positions(self, run: ProtocolRun, ctx: ProtocolContext, plan: _Plan, protocol_idx: Mapping[str, list[int]],
                   balance_rows: Sequence[BalanceRow], discovered: Mapping[str, AssetRef], height: int) -> list[Position]:
        """Finish the protocols' reads: their first round came back with the balances; later rounds
        (ids and addresses only known now) each take one more batched round of eth_calls."""
        ctx.assets.update(discovered)
        for wallet, tokens, start, _assets in balance_rows:
            for token, (ok, data, _) in zip(tokens, plan.results[start:start + len(tokens)]):
                amount = abi.decode_uint(data) if ok else None
                if amount:
                    ctx.balances.setdefault(wallet, {})[token] = amount
        run.resume({name: [plan[i] for i in idx] for name, idx in protocol_idx.items()})

        def execute(calls: list[tuple[str, bytes]]) -> list[CallResult]:
            reader = MulticallReader(self.client, self.multicall_address, self.chunk_size, self.parallel,
                                     self.chunks_per_request)
            results = reader.run(calls, height)
            self.last_eth_calls += reader.eth_calls
            self.last_rounds += 1
            return results

        return run.run(execute)

    def _cursor(self, w: _WalletState, discovered: Mapping[str, AssetRef]) -> dict[str, Any]:
        """The JSON-serialisable cursor the caller stores per wallet and passes back next time."""
        last = w.scanned_to
        if last is None:  # scan failed: keep the old position so nothing is skipped
            old = w.cursor.get("last_scanned_block")
            last = old if isinstance(old, int) else (w.from_block - 1 if w.from_block is not None else None)
        erc721 = {c: ids for c, ids in w.erc721.items() if ids}
        erc1155 = {c: ids for c, ids in w.erc1155.items() if ids}
        contracts = w.erc20 | set(erc721) | set(erc1155)
        tokens = {c: m for c, m in w.tokens.items() if c in contracts}
        for c, asset in discovered.items():
            if c in contracts:
                tokens[c] = {"symbol": asset.symbol, "name": asset.name, "decimals": asset.decimals, "standard": asset.standard}
        return {
            "last_scanned_block": last,
            "erc20": sorted(w.erc20),
            "erc721": sorted(erc721),
            "erc1155": sorted(erc1155),
            "nft_ids": {c: [str(i) for i in sorted(ids)] for c, ids in sorted({**erc721, **erc1155}.items())},
            "tokens": dict(sorted(tokens.items())),
            "nft_meta": dict(sorted(w.nft_meta.items())),
        }


class _RowBalances(NamedTuple):
    """What one run of results says about the ``balanceOf`` calls it answers, in call order: nonzero
    balances of listed tokens, ``(wallet, token, amount)`` of unlisted ones (``unlisted`` tells if any),
    and ``(code, token, wallet)`` of the calls that failed or returned something else than one word."""

    balances: list[TokenBalance | tuple[str, str, int]]
    unlisted: bool
    failed: list[tuple[str, str, str]]


def _row_balances(rows: Sequence[BalanceRow], first: int, results: Sequence[CallResult],
                  listed: Mapping[str, AssetRef]) -> _RowBalances:
    """The balances among ``results``, which answer the plan's calls ``first``, ``first + 1``...
    Safe to run in the reader's threads: it only reads its arguments."""
    balances: list[TokenBalance | tuple[str, str, int]] = []
    failed: list[tuple[str, str, str]] = []
    append = balances.append
    unlisted = False
    end = first + len(results)
    for wallet, tokens, start, assets in rows:
        lo, hi = max(start, first), min(start + len(tokens), end)
        if lo >= hi:
            continue
        row_tokens = tokens[lo - start:hi - start]
        if isinstance(results, WordResults):  # flags and words as they came, no CallResult each
            oks, datas = results.flags[lo - first:hi - first], results.words[lo - first:hi - first]
            if oks.count(1) == len(oks) and (assets is not None or all(map(listed.__contains__, row_tokens))):
                # the usual case, every call answered one word and every token listed: no Python step per token
                nonzero = list(map(_ZERO_WORD.__ne__, datas))
                held = (compress(assets[lo - start:hi - start], nonzero) if assets is not None
                        else map(listed.__getitem__, compress(row_tokens, nonzero)))
                balances += token_balances(wallet, held, map(int.from_bytes, compress(datas, nonzero), repeat("big")))
                continue
        else:
            oks, datas, _ = zip(*results[lo - first:hi - first])
        for token, ok, data in zip(row_tokens, oks, datas):
            if ok and len(data) == 32:
                if data != _ZERO_WORD:
                    asset = listed.get(token)
                    if asset is not None:
                        append(TokenBalance(wallet, asset, int.from_bytes(data, "big")))
                    else:
                        append((wallet, token, int.from_bytes(data, "big")))
                        unlisted = True
            else:
                failed.append(("balance_call_failed" if not ok else "balance_bad_return", token, wallet))
    return _RowBalances(balances, unlisted, failed)


def _without_accounted(positions: list[Position], balances: list[TokenBalance],
                       nfts: list[NftHolding]) -> tuple[list[TokenBalance], list[NftHolding]]:
    """Drop the tokens a position stands for (LP tokens, aTokens, vault shares, position NFTs...):
    each is counted once, inside its position (``Position.accounts_for``)."""
    accounted = {(p.owner, key) for p in positions for key in p.accounts_for}
    if not accounted:
        return balances, nfts
    return ([b for b in balances if (b.owner, b.asset.address) not in accounted],
            [n for n in nfts if (n.owner, f"{n.collection.address}:{n.token_id}") not in accounted])


def _hex_int(value: Any, method: str) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise MalformedResponse(f"expected a hex quantity, got {str(value)[:40]!r}", method=method)
    try:
        return int(value, 16)
    except ValueError:
        raise MalformedResponse(f"expected a hex quantity, got {value[:40]!r}", method=method) from None


def _is_address(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 42 and value.startswith("0x")


def _text(result: CallResult) -> str | None:
    return abi.decode_text(result.data) if result.ok else None
