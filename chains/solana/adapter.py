"""SolanaAdapter: SOL, SPL Token / Token-2022 balances, Metaplex NFTs and native stake, read over JSON-RPC.

Requests per fetch of W wallets (asserted in tests/chains/test_solana_adapter.py):
    W * (1 getBalance + 2 getTokenAccountsByOwner [+ 2 getProgramAccounts when positions are asked])
    + ceil(2 * M / 100) getMultipleAccounts   (M distinct mints with a non-zero balance: mint + metadata PDA)
    + ceil(C / 100) getMultipleAccounts       (C verified NFT collections whose metadata was not read yet)
No getSlot: the height is the lowest context slot among the answers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from solana.rpc.models import MemcmpOpts, TokenAccountOpts
from solders.account_decoder import ParsedAccount
from solders.pubkey import Pubkey

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
    MalformedResponse,
    NftHolding,
    Position,
    PositionLeg,
    Problem,
    RateLimiter,
    TokenBalance,
    WalletRef,
)
from chains.endpoints import EndpointHealth, EndpointPool
from chains.metadata import fetch_json as default_fetch_json
from chains.metadata import image_url
from chains.solana.address import parse_address
from chains.solana.metaplex import METADATA_PROGRAM_ID, MetaplexError, MetaplexMetadata, metadata_address, parse_metadata
from chains.solana.rpc import SolanaRpc, thread_loop
from chains.solana.stake import STAKE_PROGRAM_ID, STAKER_OFFSET, WITHDRAWER_OFFSET, StakeError, parse_stake
from chains.solana.token2022 import MintError, MintInfo, parse_mint

TOKEN_PROGRAM_ID = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022_PROGRAM_ID = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
TOKEN_PROGRAMS = {TOKEN_PROGRAM_ID: "spl", TOKEN_2022_PROGRAM_ID: "token2022"}
MAX_ACCOUNTS_PER_CALL = 100
SOL_DECIMALS = 9
MAX_METADATA_URL = 2048
INCOMPLETE_CODES = frozenset({"mint_missing", "mint_unparseable", "stake_unparseable", "token_account_unparseable"})


def fallback_symbol(mint: str) -> str:
    """Symbol shown for a mint without any metadata: its first six characters."""
    return mint[:6]


@dataclass
class _WalletRead:
    address: str
    lamports: int = 0
    tokens: dict[str, list[int]] = field(default_factory=dict)  # mint -> [amount, decimals, accounts]
    programs: dict[str, str] = field(default_factory=dict)  # mint -> spl | token2022
    stake: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # stake account -> (lamports, data)


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
    stub so they never touch the network. ``chain.extra`` knobs: ``commitment`` (default
    ``confirmed``), ``max_concurrency`` (wallets read at once, default 8), ``max_connections`` (HTTP
    connections per endpoint, default 16).
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
        self.commitment = str(chain.extra.get("commitment", "confirmed"))
        self.max_concurrency = int(chain.extra.get("max_concurrency", 8))
        self.max_connections = int(chain.extra.get("max_connections", 16))
        self.native = AssetRef(kind=NATIVE, address=None, symbol=chain.native_symbol or "SOL",
                               name=chain.native_name or "Solana", decimals=SOL_DECIMALS, standard="native")

    # ------------------------------------------------------------------ interface

    def normalize_address(self, text: str) -> WalletRef:
        """Raises ``SecretRefused`` for a keypair, ``InvalidAddress`` for anything not a 32-byte key."""
        return WalletRef(address=parse_address(text).address)

    def fetch(self, request: FetchRequest) -> FetchResult:
        """Read SOL, token balances, NFTs and stake positions of the request's wallets (sync).

        Runs the async client in this thread's private event loop, reused across fetches with its
        per-endpoint AsyncClients (in a throw-away loop in a helper thread when the caller already has
        a running loop). Raises ``InvalidAddress`` (permanent) before any request for a bad address,
        ``ChainError`` (transient) when no endpoint answers or answers are malformed, ``RpcError``
        when the endpoint answers an error object. Broken metadata is returned as ``problems``.
        """
        wallets = [parse_address(w.address).address for w in request.wallets]
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # This thread's own loop, kept between fetches with its AsyncClients (see rpc.thread_loop).
            return thread_loop().run_until_complete(self._fetch(request, wallets, shared=True))
        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            return executor.submit(asyncio.run, self._fetch(request, wallets, shared=False)).result()

    # ------------------------------------------------------------------ reading

    async def _fetch(self, request: FetchRequest, wallets: list[str], *, shared: bool) -> FetchResult:
        pool = EndpointPool(self.endpoints, limiter=self.limiter, health=self.health)
        rpc = SolanaRpc(pool, commitment=self.commitment, max_connections=self.max_connections, shared=shared)
        problems: list[Problem] = []
        try:
            sem = asyncio.Semaphore(max(1, self.max_concurrency))
            reads = await _gather_or_raise([self._read_wallet(rpc, sem, w, request.include_positions, problems) for w in wallets])
            mints = await self._read_mints(rpc, reads, problems)
            nfts = await self._nfts(rpc, reads, mints, problems) if request.include_nfts else []
        finally:
            await rpc.close()
        balances: list[TokenBalance] = []
        positions: list[Position] = []
        for read in reads:
            balances.append(TokenBalance(owner=read.address, asset=self.native, amount=read.lamports))
            for mint in sorted(read.tokens):
                amount, _, accounts = read.tokens[mint]
                m = mints.get(mint)
                if amount == 0 or m is None or self._is_nft(m, amount):
                    continue
                balances.append(TokenBalance(owner=read.address, asset=self._fungible_asset(m), amount=amount,
                                             details={"token_accounts": accounts}))
            if request.include_positions:
                positions.extend(self._stake_positions(read, problems))
        endpoint = (pool.last_endpoint or pool.endpoints[0]).label
        return FetchResult(
            balances=tuple(balances), height=min(rpc.slots) if rpc.slots else None, endpoint=endpoint,
            nfts=tuple(nfts), positions=tuple(positions), problems=tuple(problems),
            request_count=pool.request_count, complete=not any(p.code in INCOMPLETE_CODES for p in problems),
        )

    async def _read_wallet(self, rpc: SolanaRpc, sem: asyncio.Semaphore, address: str, with_stake: bool,
                           problems: list[Problem]) -> _WalletRead:
        owner = Pubkey.from_string(address)
        read = _WalletRead(address)
        async with sem:
            calls = [rpc.call("getBalance", lambda c: c.get_balance(owner))]
            for program in TOKEN_PROGRAMS:
                opts = TokenAccountOpts(program_id=Pubkey.from_string(program), encoding="jsonParsed")
                calls.append(rpc.call("getTokenAccountsByOwner", lambda c, o=opts: c.get_token_accounts_by_owner_json_parsed(owner, o)))
            if with_stake:
                stake_program = Pubkey.from_string(STAKE_PROGRAM_ID)
                for offset in (STAKER_OFFSET, WITHDRAWER_OFFSET):
                    flt = [MemcmpOpts(offset=offset, bytes=address)]
                    calls.append(rpc.call("getProgramAccounts", lambda c, f=flt: c.get_program_accounts(stake_program, encoding="base64", filters=f)))
            answers = await _gather_or_raise(calls)
        balance = answers[0].value
        if not isinstance(balance, int) or balance < 0:
            raise MalformedResponse("getBalance value is not a lamport amount", method="getBalance")
        read.lamports = balance
        for program, answer in zip(TOKEN_PROGRAMS.values(), answers[1:3]):
            for item in answer.value:
                self._add_token_account(read, program, str(item.pubkey), item.account, problems)
        for answer in answers[3:]:
            for item in answer.value:
                read.stake.setdefault(str(item.pubkey), (int(item.account.lamports), bytes(item.account.data)))
        return read

    def _add_token_account(self, read: _WalletRead, standard: str, pubkey: str, account: Any, problems: list[Problem]) -> None:
        data = account.data
        if not isinstance(data, ParsedAccount):
            problems.append(Problem("token_account_unparseable", "token account was not returned as jsonParsed", pubkey))
            return
        try:
            parsed = data.parsed
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

    async def _get_accounts(self, rpc: SolanaRpc, keys: list[str]) -> dict[str, Any]:
        """getMultipleAccounts (base64) in chunks of 100, concurrently; returns key -> account or None."""
        chunks = [keys[i : i + MAX_ACCOUNTS_PER_CALL] for i in range(0, len(keys), MAX_ACCOUNTS_PER_CALL)]

        async def one(chunk: list[str]) -> list[Any]:
            pubkeys = [Pubkey.from_string(k) for k in chunk]
            answer = await rpc.call("getMultipleAccounts", lambda c: c.get_multiple_accounts(pubkeys, encoding="base64"))
            if len(answer.value) != len(chunk):
                raise MalformedResponse("getMultipleAccounts answered a different number of accounts", method="getMultipleAccounts")
            return list(answer.value)

        results = await _gather_or_raise([one(c) for c in chunks])
        return {k: acc for chunk, values in zip(chunks, results) for k, acc in zip(chunk, values)}

    async def _read_mints(self, rpc: SolanaRpc, reads: list[_WalletRead], problems: list[Problem]) -> dict[str, _MintRead]:
        mints: dict[str, _MintRead] = {}
        for read in reads:
            for mint, (amount, decimals, _) in read.tokens.items():
                if amount > 0 and mint not in mints:
                    mints[mint] = _MintRead(mint, read.programs[mint], decimals)
        pdas = {mint: metadata_address(mint) for mint in mints}
        accounts = await self._get_accounts(rpc, [k for mint in sorted(mints) for k in (mint, pdas[mint])])
        for mint, m in mints.items():
            acc = accounts.get(mint)
            if acc is None:
                problems.append(Problem("mint_missing", "mint account not found", mint))
            else:
                try:
                    m.info = parse_mint(bytes(acc.data))
                    m.decimals = m.info.decimals
                    if m.standard == "token2022" and m.info.metadata_pointer in (None, mint):
                        ext = m.info.token_metadata()
                        if ext is not None:
                            m.name, m.symbol, m.uri = ext.name, ext.symbol, ext.uri
                except MintError as exc:
                    problems.append(Problem("mint_unparseable", str(exc), mint))
            meta_acc = accounts.get(pdas[mint])
            if meta_acc is not None and str(meta_acc.owner) == METADATA_PROGRAM_ID:
                try:
                    m.metaplex = parse_metadata(bytes(meta_acc.data))
                except MetaplexError as exc:
                    problems.append(Problem("metadata_unparseable", str(exc), mint))
                else:
                    if not (m.name or m.symbol):
                        m.name, m.symbol, m.uri = m.metaplex.name, m.metaplex.symbol, m.metaplex.uri
        return mints

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
        return AssetRef(kind=FUNGIBLE, address=m.mint, symbol=(m.symbol or fallback_symbol(m.mint))[:32],
                        name=m.name[:200], decimals=m.decimals, standard=m.standard)

    def _stake_positions(self, read: _WalletRead, problems: list[Problem]) -> list[Position]:
        out = []
        for ref in sorted(read.stake):
            lamports, data = read.stake[ref]
            try:
                stake = parse_stake(data)
            except StakeError as exc:
                problems.append(Problem("stake_unparseable", str(exc), ref))
                continue
            if stake is None:
                continue
            delegated = min(stake.delegated, lamports)
            legs = []
            if delegated:
                legs.append(PositionLeg(self.native, delegated, "staked"))
            if lamports - delegated:
                legs.append(PositionLeg(self.native, lamports - delegated, "pending"))
            out.append(Position(
                owner=read.address, protocol="solana-stake", kind="staking", ref=ref, legs=tuple(legs),
                label=f"Stake account {ref[:4]}…{ref[-4:]}",
                details={"vote_account": stake.vote_account, "state": stake.state, "staker": stake.staker,
                         "withdrawer": stake.withdrawer, "rent_exempt_reserve": stake.rent_exempt_reserve,
                         "activation_epoch": stake.activation_epoch, "deactivation_epoch": stake.deactivation_epoch},
            ))
        return out


async def _gather_or_raise(aws: list[Any]) -> list[Any]:
    """Gather, letting every call finish, then raise the first error (a permanent one first)."""
    results = await asyncio.gather(*aws, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        permanent = [e for e in errors if isinstance(e, ChainError) and e.permanent]
        raise (permanent or errors)[0]
    return results
