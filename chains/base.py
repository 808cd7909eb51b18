"""The adapter boundary: configs in, frozen dataclasses with exact integer amounts out, one error type."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import repeat
from typing import Any, Iterable, Iterator, Mapping, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit


# Asset kinds, shared with portfolio.models.Asset.kind.
NATIVE = "native"
FUNGIBLE = "fungible"
NFT_COLLECTION = "nft_collection"

# --------------------------------------------------------------------------- errors


class ChainError(Exception):
    """Anything that went wrong talking to a chain.

    ``permanent`` errors (bad address, unsupported chain, a secret given as input) will fail the same
    way on retry; transient ones (timeout, 429, 5xx, malformed answer) may succeed later. The message
    names the endpoint (redacted) and the method, never a secret.
    """

    permanent: bool = False
    answered: bool = False  # the endpoint did answer (an error object): no failover

    def __init__(
        self,
        message: str,
        *,
        permanent: bool | None = None,
        endpoint: str | None = None,
        method: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        if permanent is not None:
            self.permanent = permanent
        self.endpoint = redact_url(endpoint) if endpoint else None
        self.method = method
        self.retry_after = retry_after
        self.detail = redact_text(message)
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.method:
            where.append(self.method)
        if self.endpoint:
            where.append(f"at {self.endpoint}")
        return f"{self.detail} ({' '.join(where)})" if where else self.detail


class InvalidAddress(ChainError):
    """The text is not a valid address (or extended public key) for this chain."""

    permanent = True


class SecretRefused(InvalidAddress):
    """The text looks like a private key or seed phrase. The message never contains the text."""


class UnsupportedChain(ChainError):
    permanent = True


class RateLimited(ChainError):
    """The endpoint answered 429 (``retry_after`` seconds from its Retry-After header, if any)."""


class MalformedResponse(ChainError):
    """The endpoint answered something that is not what the protocol promises."""


# --------------------------------------------------------------------------- redaction

_SECRETISH_QUERY = re.compile(r"(?i)(key|token|secret|auth|apikey|api_key|access|password|pass|sig)")
_LONG_TOKEN = re.compile(r"\b[A-Za-z0-9_\-]{24,}\b")


def redact_url(url: str) -> str:
    """Hide credentials in an endpoint URL: userinfo, secret-looking query values, long path tokens.

    ``https://eth-mainnet.g.alchemy.com/v2/AbC...xyz`` -> ``https://eth-mainnet.g.alchemy.com/v2/***``.
    """
    try:
        parts = urlsplit(url)
        port = parts.port  # parsed lazily: "host:8545)" raises here
    except ValueError:
        return "<unparseable url>"
    if not parts.scheme or not parts.netloc:
        return _LONG_TOKEN.sub("***", url)
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    if parts.username or parts.password:
        host = f"***@{host}"
    path = "/".join("***" if _LONG_TOKEN.fullmatch(seg) else seg for seg in parts.path.split("/"))
    query = "&".join(
        (f"{k}=***" if _SECRETISH_QUERY.search(k) or _LONG_TOKEN.fullmatch(v) else f"{k}={v}")
        for k, _, v in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return urlunsplit((parts.scheme, host, path, query, ""))


def redact_text(text: str) -> str:
    """Redact every URL found in free text (error messages from libraries often embed the URL)."""
    # A URL in prose ends before a bracket or quote: "failed (http://127.0.0.1:8545)".
    return re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()\[\]]+", lambda m: redact_url(m.group(0)), str(text))


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class EndpointConfig:
    """One RPC endpoint. ``headers`` are already resolved (e.g. an API key read from the environment)."""

    url: str
    priority: int = 0
    rate_per_s: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0

    @property
    def label(self) -> str:
        """What error messages, logs and the database may show of this endpoint."""
        return redact_url(self.url)


@dataclass(frozen=True)
class ChainConfig:
    """Everything an adapter needs to know about one chain; built by the caller from its storage."""

    slug: str
    family: str
    network: str = "mainnet"  # mainnet | testnet | regtest | devnet
    chain_id: int | None = None  # EVM only
    native_symbol: str = ""
    native_name: str = ""
    native_decimals: int = 18
    multicall_address: str = "0xcA11bde05977b3631167028862bE2a173976CA11"
    log_scan_start: int | None = None  # EVM: first block of the first log scan; None = latest - log_scan_default_depth
    log_scan_default_depth: int = 100_000
    log_range: int = 10_000  # EVM: blocks per eth_getLogs, shrinks on "too many results"
    ipfs_gateway: str = "https://ipfs.io/ipfs/"
    extra: Mapping[str, Any] = field(default_factory=dict)  # family-specific knobs
    ens_registry: str | None = None  # EVM: ENS registry for names as wallet input (chains.evm.ens.registry_for)
    # DeFi protocols to read on this chain: registry name -> contract role -> address (or list of
    # addresses), e.g. {"aave_v3": {"pool": "0x87870Bca..."}}; see chains/evm/protocols/deployments.py.
    protocols: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# --------------------------------------------------------------------------- request


@dataclass(frozen=True)
class AssetRef:
    """Identity and metadata of an asset as the chain knows it.

    ``address`` is the contract (EVM, checksummed) or mint (Solana, base58); ``None`` for the native
    asset. ``standard`` says how it is read: ``native``, ``erc20``, ``erc721``, ``erc1155``, ``spl``,
    ``token2022``. ``oracle`` is an optional price-feed contract to read in the same batch (EVM).
    """

    kind: str
    address: str | None
    symbol: str
    name: str
    decimals: int
    standard: str = "native"
    logo_url: str = ""  # an image, or a metadata document (Metaplex, ERC) whose "image" is the logo
    oracle: str | None = None

    @property
    def key(self) -> str:
        """Stable identity within one chain: the contract/mint, or ``native``."""
        return self.address or NATIVE


@dataclass(frozen=True)
class ParsedAddress:
    """Canonical form of what a user typed, from ``chains.<family>.address.parse_address``.

    ``kind`` is ``address`` or ``extended_key`` (Bitcoin xpub/ypub/zpub...); ``networks`` lists the
    networks it is valid on (empty: every network of the family, e.g. an EVM address);
    ``script_type`` is Bitcoin's p2pkh | p2sh-p2wpkh | p2wpkh | p2wsh | p2tr (detected or implied).
    """

    address: str
    kind: str = "address"
    networks: tuple[str, ...] = ()
    script_type: str | None = None


@dataclass(frozen=True)
class WalletRef:
    """One watched wallet: an address, or (Bitcoin) an extended public key with its script type."""

    address: str
    script_type: str | None = None  # bitcoin: p2pkh | p2sh-p2wpkh | p2wpkh | p2tr
    gap_limit: int = 20


@dataclass(frozen=True)
class FetchRequest:
    """What to read. ``cursors`` maps ``WalletRef.address`` to the state a previous fetch returned
    (last scanned block, derived addresses, ...) and is treated as opaque JSON by the caller.
    ``known_assets``: the token list to read besides what the wallets are found to hold; an adapter
    may return balances in its order, so give the same list in the same order for the same result."""

    wallets: tuple[WalletRef, ...]
    known_assets: tuple[AssetRef, ...] = ()
    cursors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    include_nfts: bool = True
    include_positions: bool = True


# --------------------------------------------------------------------------- results


_FRESH_DICT: Any = object()  # TokenBalance's default ``details``: a new empty dict per balance


@dataclass(frozen=True, slots=True, init=False)
class TokenBalance:
    """A balance of one asset held by one wallet. ``amount`` is confirmed, in base units; ``unconfirmed``
    is the pending change (may be negative, Bitcoin mempool). ``details``: e.g. utxo_count, tx_count."""

    owner: str
    asset: AssetRef
    amount: int
    unconfirmed: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)

    def __init__(self, owner: str, asset: AssetRef, amount: int, unconfirmed: int = 0,
                 details: Mapping[str, Any] = _FRESH_DICT) -> None:
        # An EVM fetch builds tens of thousands: slots (no instance dict for the garbage collector to
        # track) filled through their descriptors, instead of the frozen dataclass's object.__setattr__
        # per field. Assignments still raise FrozenInstanceError.
        _set_owner(self, owner)
        _set_asset(self, asset)
        _set_amount(self, amount)
        _set_unconfirmed(self, unconfirmed)
        _set_details(self, {} if details is _FRESH_DICT else details)


_set_owner, _set_asset, _set_amount, _set_unconfirmed, _set_details = (
    getattr(TokenBalance, name).__set__ for name in ("owner", "asset", "amount", "unconfirmed", "details"))


class _TokenBalanceDraft:
    """A ``TokenBalance`` being made by ``token_balances``: the same slots, filled by plain attribute
    assignments (which a frozen class cannot use), then the object becomes a ``TokenBalance``
    (Python lets ``__class__`` change between classes with the same slots and nothing else)."""

    __slots__ = ("owner", "asset", "amount", "unconfirmed", "details")

    def __init__(self, owner: str, asset: AssetRef, amount: int) -> None:
        self.owner = owner
        self.asset = asset
        self.amount = amount
        self.unconfirmed = 0
        self.details = {}
        self.__class__ = TokenBalance  # type: ignore[assignment]


def token_balances(owner: str, assets: Iterable[AssetRef], amounts: Iterable[int]) -> Iterator[TokenBalance]:
    """``TokenBalance(owner, asset, amount)`` for each asset and amount, in about 60 % of the time
    (an EVM fetch makes tens of thousands): the same objects, equal, frozen and alike in every way."""
    return map(_TokenBalanceDraft, repeat(owner), assets, amounts)  # type: ignore[arg-type]


@dataclass(frozen=True)
class NftHolding:
    """One NFT (or an ERC-1155 amount of one id) held by one wallet. ``token_id`` is a decimal string
    (uint256) on EVM and the mint on Solana."""

    owner: str
    collection: AssetRef
    token_id: str
    amount: int = 1
    name: str = ""
    image_url: str = ""
    metadata_url: str = ""
    description: str = ""


@dataclass(frozen=True)
class PositionLeg:
    """One asset inside a DeFi or staking position. ``role`` (at most 12 characters): supplied | borrowed |
    reward | staked | pending | fees (uncollected trading fees), and for native stake (Solana)
    activating | deactivating | inactive | rent_reserve. ``borrowed`` legs count negative in net worth.
    ``label`` says more where a role has variants (``variable debt`` / ``stable debt``)."""

    asset: AssetRef
    amount: int
    role: str
    label: str = ""


@dataclass(frozen=True)
class Position:
    """A DeFi or staking position: ``protocol`` (e.g. ``solana-stake``, ``aave_v3``), ``kind``
    (staking | lending | liquidity | vault), a stable ``ref`` (account/contract id) and its legs.

    ``accounts_for`` lists the tokens this position stands for, as ``"<contract>"`` (an ERC-20 such as
    an LP token, aToken, debt token, vault share or LST) or ``"<contract>:<token id>"`` (a position
    NFT); on Solana the mint of a liquid-staking token. Every token is counted once, inside its
    position: the EVM adapter leaves those out of ``FetchResult.balances`` and ``nfts``, and the sync
    drops any balance a position of the same wallet accounts for. ``details`` holds what users of the protocol look for (pool
    share, price range, totals); its values are JSON types, decimals as strings."""

    owner: str
    protocol: str
    kind: str
    ref: str
    legs: tuple[PositionLeg, ...]
    label: str = ""
    health_factor: Decimal | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    accounts_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class PriceQuote:
    """A price read on chain (an oracle) while fetching: ``price`` per whole unit in ``currency``."""

    asset: AssetRef
    price: Decimal
    currency: str
    source: str
    at_height: int | None = None


@dataclass(frozen=True)
class Problem:
    """A partial failure that did not stop the fetch (a reverting token, a metadata fetch that failed).
    ``subject`` names the contract/mint/address concerned; ``code`` is a short machine word;
    ``protocol`` names the DeFi protocol whose positions it concerns (empty for holdings)."""

    code: str
    message: str
    subject: str = ""
    protocol: str = ""


@dataclass(frozen=True)
class FetchResult:
    """Everything read in one fetch, all at ``height`` (block number or slot), from ``endpoint``
    (redacted label). ``cursors`` replace the request's cursors for the wallets fetched.
    ``request_count`` counts the backend requests made, for benchmarks and bounds in tests."""

    balances: tuple[TokenBalance, ...]
    height: int | None
    endpoint: str
    nfts: tuple[NftHolding, ...] = ()
    positions: tuple[Position, ...] = ()
    prices: tuple[PriceQuote, ...] = ()
    cursors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    request_count: int = 0
    complete: bool = True  # False when part of what was asked could not be read (see problems)
    # Protocols whose positions could not all be read this time: keep their previous positions
    # rather than replacing them with what (little) came back. ``complete`` is about holdings only.
    incomplete_protocols: tuple[str, ...] = ()


# --------------------------------------------------------------------------- history (backfill)


@dataclass(frozen=True)
class TransferRecord:
    """One movement of one asset into (``in``) or out of (``out``) one watched wallet, from the chain's
    history. ``amount`` is positive, in base units; ``fee`` is in base units of the native asset (on the
    leg that paid it); ``key`` tells apart several movements of one transaction (log index, output or
    account index); ``owner`` is the watched address (for an extended key: the derived address)."""

    owner: str
    asset: AssetRef
    tx: str
    key: str
    direction: str
    amount: int
    at: datetime
    height: int | None = None
    fee: int = 0
    counterparty: str = ""


@dataclass(frozen=True)
class HistoryRequest:
    """What past to read for one wallet: daily balances at the end of each UTC day from ``since`` to
    ``until`` (both dates, inclusive), and the transfers in between. ``cursor`` is what the previous
    page returned (opaque JSON); ``known_assets`` as in ``FetchRequest``."""

    wallet: WalletRef
    since: date
    until: date
    known_assets: tuple[AssetRef, ...] = ()
    cursor: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HistoryPage:
    """One resumable step of a backfill. ``daily`` maps a UTC day to the wallet's balances at that day's
    end (asset key -> base units; a missing or zero key is zero; every asset seen in the range appears
    in ``assets``). The pages of one backfill list each day at most once, in any order, and need not
    list every day of ``since``..``until``: when the last page is in, a day no page listed is zero if it
    comes before the first listed day and on or after ``complete_from`` (nothing held yet), and carries
    the previous listed day's balances if it comes after the first listed day; any other day is a gap.
    So a page may leave out the days before the first transaction, and a page may list no day at all
    (e.g. only the last page lists them). ``complete_from`` (on the last page; None means ``since``) is
    the first day whose balances are known to be complete (later than ``since`` when the endpoint keeps
    no state that old: ``reason`` says why). ``transfers`` may include fee-only ``out`` records (amount
    0, ``fee`` set). On chains whose NFTs are token mints (Solana) an NFT may appear as a 0-decimal
    fungible asset; the caller counts it under its NFT collection. ``done`` is False while more pages
    follow (pass ``cursor`` back)."""

    daily: Mapping[date, Mapping[str, int]]
    assets: tuple[AssetRef, ...] = ()
    transfers: tuple[TransferRecord, ...] = ()
    prices: Mapping[date, Mapping[str, Any]] = field(default_factory=dict)
    complete_from: date | None = None
    reason: str = ""
    cursor: Mapping[str, Any] = field(default_factory=dict)
    done: bool = True
    request_count: int = 0


# --------------------------------------------------------------------------- the interface


@runtime_checkable
class ChainAdapter(Protocol):
    """What every chain family implements. Construct with ``(chain: ChainConfig, endpoints:
    Sequence[EndpointConfig], *, limiter: RateLimiter | None = None)``."""

    family: str

    def normalize_address(self, text: str) -> WalletRef:
        """Validate user input and return its canonical form (checksummed, script type detected).

        Raises ``SecretRefused`` for anything that looks like a private key or seed phrase (the message
        never repeats the input) and ``InvalidAddress`` for anything else invalid.
        """
        ...

    def fetch(self, request: FetchRequest) -> FetchResult:
        """Read balances (and NFTs and positions unless excluded) of the request's wallets.

        Raises ``ChainError``: ``permanent`` for bad input, transient when no endpoint could answer.
        Partial failures (one broken token) are returned as ``problems``, not raised.
        """
        ...


class RateLimiter(Protocol):
    """Shared request budget per endpoint. The Celery side passes a Redis token bucket; see
    ``chains.endpoints.LocalRateLimiter`` for the in-process one."""

    def acquire(self, key: str, rate_per_s: float) -> None:
        """Block until one request to ``key`` may be made at ``rate_per_s``."""
        ...
