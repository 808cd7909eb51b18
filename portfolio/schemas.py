"""Request and response schemas of the REST API v1: explicit fields, exact numbers as strings (never floats)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.conf import settings
from ninja import Field, Schema
from pydantic import BaseModel, BeforeValidator, model_validator
from pydantic_core import PydanticCustomError

from chains.registry import FAMILIES
from chains.secrets import WATCH_ONLY_MESSAGE, secret_kind
from portfolio.services.wallets import BITCOIN_SCRIPT_TYPES, MAX_GAP_LIMIT
from portfolio.valuation import exact_text

# A database id: the range of a 64-bit primary key (PostgreSQL bigint, SQLite INTEGER). Anything outside is
# a 422, never a query that overflows (a 500).
DB_ID_MAX = 2**63 - 1
DbId = Annotated[int, Field(ge=1, le=DB_ID_MAX)]


def _exact_text(value: Any) -> Any:
    """An int or Decimal as plain decimal text (no exponent, trailing zeros dropped); floats are refused,
    so an inexact number can never reach a response by accident."""
    if isinstance(value, (bool, float)):
        raise TypeError("exact numbers only: an int or a Decimal, never a float")
    if isinstance(value, (int, Decimal)):
        return exact_text(value)
    return value


# Exact numbers travel as JSON strings: a uint256 balance or an 18-decimal price does not fit a double.
DecimalStr = Annotated[
    str, BeforeValidator(_exact_text),
    Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="An exact decimal number as a string.", examples=["1234.5"]),
]
IntStr = Annotated[
    str, BeforeValidator(_exact_text),
    Field(pattern=r"^-?[0-9]+$", description="An exact integer (base units) as a string.",
          examples=["1500000000000000000"]),
]

Family = Literal[tuple(FAMILIES)]  # type: ignore[valid-type]
ScriptType = Literal[BITCOIN_SCRIPT_TYPES]  # type: ignore[valid-type]
Currency = Literal[tuple(settings.QUOTE_CURRENCIES)]  # type: ignore[valid-type]
RangeKey = Literal["24h", "7d", "30d", "90d", "1y", "all"]


# --------------------------------------------------------------------------- errors


class ErrorOut(Schema):
    """Every refusal but 422: what went wrong in words (``detail``) and as a stable ``code``.

    400 ``unreadable_body``; 401 ``not_authenticated``, ``invalid_token``, ``token_revoked``,
    ``token_expired``, ``inactive_user``; 403 ``insufficient_scope`` (a read-only token), ``csrf_failed``
    (a session without its CSRF token); 404 ``not_found`` (no such object of yours); 409 ``duplicate``;
    429 ``rate_limited`` or ``limit`` (as many wallets or portfolios as the account may have; see
    Retry-After); 503 ``unavailable`` (the task queue does not answer)."""

    detail: str
    code: str


class ErrorItem(Schema):
    loc: list[str | int] = Field(description='Where: e.g. ["body", "payload", "address"]; ["body"]: the whole request.')
    msg: str
    type: str = Field(description='A machine-readable code, e.g. "secret", "invalid", "missing".')


class ValidationErrorOut(Schema):
    """422: the request was understood but refused, with the location of each problem. Never echoes
    what was sent."""

    detail: list[ErrorItem]
    code: Literal["invalid"]


# Ids sent in a body: beyond a 64-bit column they could never match, so they are refused (422) before
# any query.
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


# --------------------------------------------------------------------------- portfolios


class PortfolioOut(Schema):
    id: int
    name: str
    created_at: datetime
    wallet_ids: list[int]

    @staticmethod
    def resolve_wallet_ids(obj) -> list[int]:
        return sorted(w.pk for w in obj.wallets.all())


class PortfolioIn(BaseModel):
    """A new portfolio: a name (unique among yours) and, optionally, wallets of yours."""

    name: str = Field(min_length=1, max_length=80)
    wallet_ids: list[Id] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="before")
    @classmethod
    def refuse_secrets(cls, data: Any) -> Any:
        return _refuse_secrets(data)


class PortfolioPatch(BaseModel):
    """Rename a portfolio and/or replace its wallets; a field left out stays as it is."""

    name: str | None = Field(None, min_length=1, max_length=80)
    wallet_ids: list[Id] | None = Field(None, max_length=10_000)

    @model_validator(mode="before")
    @classmethod
    def refuse_secrets(cls, data: Any) -> Any:
        return _refuse_secrets(data)


class PortfolioWalletIn(BaseModel):
    wallet_id: Id


# --------------------------------------------------------------------------- wallets


def _refuse_secrets(data: Any) -> Any:
    """Before any other check: a private key or seed phrase in any text field is refused with the
    watch-only message (and the input is never part of the error)."""
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, str) and secret_kind(value):
                raise PydanticCustomError("secret", WATCH_ONLY_MESSAGE)
    return data


class WalletIn(BaseModel):
    """A watch-only address or extended public key (xpub/ypub/zpub) to track. Never a private key.

    A plain pydantic model, not ninja.Schema: Schema wraps the input in a DjangoGetter (for reading ORM
    objects) before any "before" validator, and the secret check must see the raw JSON first."""

    family: Family
    address: str = Field(max_length=200, description="A public address, an ENS name (EVM: resolved now, the address is stored) or an extended public key.")
    label: str = Field("", max_length=80)
    portfolio_ids: list[Id] = Field(default_factory=list, max_length=1000,
                                    description="Portfolios (of yours) to put the wallet in.")
    script_type: ScriptType | None = Field(None, description="Bitcoin extended keys only: how to derive addresses.")
    gap_limit: int = Field(20, ge=1, le=MAX_GAP_LIMIT, description="Bitcoin extended keys: unused addresses to scan.")

    @model_validator(mode="before")
    @classmethod
    def refuse_secrets(cls, data: Any) -> Any:
        return _refuse_secrets(data)


class WalletPatch(BaseModel):
    """Rename a wallet, change its portfolios or (extended keys) its gap limit; a field left out stays."""

    label: str | None = Field(None, max_length=80)
    portfolio_ids: list[Id] | None = Field(None, max_length=1000)
    gap_limit: int | None = Field(None, ge=1, le=MAX_GAP_LIMIT)

    @model_validator(mode="before")
    @classmethod
    def refuse_secrets(cls, data: Any) -> Any:
        return _refuse_secrets(data)


class WalletChainOut(Schema):
    """A wallet on one chain: its sync state and the freshness of its data."""

    chain: str = Field(description="Chain slug.")
    chain_name: str
    status: Literal["idle", "queued", "running", "ok", "failed"]
    last_attempt_at: datetime | None
    last_ok_at: datetime | None
    last_error: str
    height: int | None
    endpoint: str = Field(description="The (redacted) endpoint that answered last.")

    @staticmethod
    def resolve_chain(obj) -> str:
        return obj.chain.slug

    @staticmethod
    def resolve_chain_name(obj) -> str:
        return obj.chain.name


class FreshnessOut(Schema):
    """How fresh a wallet's numbers are, as on the wallets page."""

    oldest_ok_at: datetime | None = Field(description="The oldest last good read of its chains; null when none was read yet.")
    failed: int = Field(description="Chains whose last read failed.")
    never_read: int = Field(description="Chains never read yet.")

    @staticmethod
    def resolve_oldest_ok_at(obj) -> datetime | None:
        return obj.oldest_ok

    @staticmethod
    def resolve_never_read(obj) -> int:
        return obj.never


class WalletOut(Schema):
    id: int
    family: Family
    address: str
    kind: Literal["address", "extended_key"]
    label: str
    script_type: str
    gap_limit: int
    created_at: datetime
    portfolio_ids: list[int]
    ens_name: str = Field(description="EVM: the ENS name the wallet was added by, or empty.")
    primary_name: str = Field(description="EVM: the address's ENS reverse name, verified to resolve back to it, or empty.")
    currency: str = Field(description="Your quote currency, in which value is given.")
    value: DecimalStr = Field(description="Priced holdings plus positions' net value, as on the wallets page.")
    share: DecimalStr | None = Field(description="Fraction of your net worth (0..1); null when the net worth is 0.")
    freshness: FreshnessOut

    @staticmethod
    def resolve_portfolio_ids(obj) -> list[int]:
        return sorted(p.pk for p in obj.portfolios.all())


class WalletDetailOut(WalletOut):
    chains: list[WalletChainOut]

    @staticmethod
    def resolve_chains(obj) -> list:
        return sorted(obj.wallet_chains.all(), key=lambda wc: (wc.chain.sort_order, wc.chain.name))


# --------------------------------------------------------------------------- holdings


class HoldingWalletOut(Schema):
    """One wallet's part of a holding, with the block height and time of the read."""

    wallet_id: int
    wallet: str
    chain: str
    amount_raw: IntStr
    amount: DecimalStr
    unconfirmed_raw: IntStr
    value: DecimalStr | None
    height: int | None
    fetched_at: datetime | None
    also_in: int | None = Field(None, description="The wallet that counts this account (reached through several wallets); this part is in no total.")


class CostBasisOut(Schema):
    """The asset's cost basis in the scope by the average-cost method, from the acquisitions in its
    history (inflows that are not internal transfers, at the price of their day), in ``currency``.
    When the history is incomplete every figure is null and ``incomplete`` says why."""

    complete: bool
    incomplete: str = Field(description='Empty when complete, else e.g. "cost basis incomplete: history not read yet".')
    average_cost: DecimalStr | None = Field(description="Per whole unit.")
    cost: DecimalStr | None = Field(description="Cost of the amount held.")
    unrealised: DecimalStr | None = Field(description="Value now - cost; null without a current price.")
    unrealised_pct: DecimalStr | None = Field(description="unrealised / cost as a fraction; null when the cost is 0.")


class HoldingOut(Schema):
    """One asset across the scope's wallets. ``price``/``value`` are null when no source prices it."""

    asset_id: int
    chain: str
    symbol: str
    name: str
    asset_address: str = Field(description="Contract or mint; empty for the native coin.")
    decimals: int
    amount_raw: IntStr
    amount: DecimalStr
    price: DecimalStr | None
    price_source: str
    price_at: datetime | None
    price_stale: bool
    value: DecimalStr | None
    share: DecimalStr | None = Field(description="Fraction of the scope's net worth (0..1); null when unpriced or spam.")
    change_24h: DecimalStr | None = Field(description="Price change as a fraction (0.05 = +5%).")
    unpriced: bool
    is_spam: bool
    status: str = Field(description="priced, unpriced (no price or a stale one: not in value) or spam (in no total).")
    holders: int = Field(description="Wallet-chains holding it (accounts reached twice counted once).")
    wallets: list[HoldingWalletOut] | None = Field(
        None, description="Per-wallet breakdown, only with ?include=wallets (null otherwise).")
    cost_basis: CostBasisOut | None = Field(None, description="Cost basis and unrealised profit (null for spam).")


class HoldingsOut(Schema):
    """One page of holdings. ``count`` is the number of rows matching the filters (all pages);
    ``next_cursor`` is null on the last page. The totals are the scope's (filters aside):
    ``net_worth = holdings_value + positions_value``."""

    currency: str
    count: int
    items: list[HoldingOut]
    next_cursor: str | None
    holdings_value: DecimalStr
    positions_value: DecimalStr
    net_worth: DecimalStr
    unpriced_count: int
    nfts_not_valued: int
    change_24h_value: DecimalStr | None = Field(
        None, description="24h price move of the holdings held now (amount x (price now - price 24h ago)), over the "
        "assets with a stored price 24 hours ago; null when none has one.")
    change_24h: DecimalStr | None = Field(None, description="The same as a fraction of their value 24 hours ago.")


# --------------------------------------------------------------------------- activity


class ActivityOut(Schema):
    """One transfer of one asset into or out of one of your wallets. ``price``/``value`` are of the time
    of the transfer (the latest price at most a day before it, in ``currency`` at that moment's FX rate),
    null when there was none. ``internal``: the other side is another of your wallets
    (``counterparty_wallet_id``); ``cancels``: that wallet is in the scope too, so the transfer is no flow."""

    id: int
    at: datetime
    wallet_id: int
    wallet: str
    chain: str
    direction: Literal["in", "out"]
    asset_id: int
    symbol: str
    asset_address: str
    decimals: int
    amount_raw: IntStr
    amount: DecimalStr
    fee_raw: IntStr = Field(description="Network fee this leg paid, in base units of the chain's native coin.")
    price: DecimalStr | None
    price_source: str
    price_at: datetime | None
    value: DecimalStr | None
    counterparty: str
    counterparty_url: str
    internal: bool
    counterparty_wallet_id: int | None
    cancels: bool
    tx: str
    tx_url: str
    height: int | None


class ActivityPageOut(Schema):
    """One page of transfers, newest first; ``next_cursor`` is null on the last page. ``flows_in`` /
    ``flows_out``: the priced values of this page's transfers that are flows of the scope."""

    currency: str
    count: int
    items: list[ActivityOut]
    next_cursor: str | None
    flows_in: DecimalStr
    flows_out: DecimalStr


# --------------------------------------------------------------------------- NFTs and positions


class NftOut(Schema):
    """One NFT (or an ERC-1155 amount of one token id) in one of your wallets. Names and URLs come from
    untrusted on-chain metadata."""

    id: int
    wallet_id: int
    chain: str
    collection_id: int
    collection: str
    collection_address: str
    standard: str
    token_id: str = Field(description="The token id as a decimal string (or the mint on Solana).")
    amount_raw: IntStr
    name: str
    description: str
    image_url: str
    metadata_url: str
    is_spam: bool
    height: int | None
    fetched_at: datetime | None


class NftPageOut(Schema):
    count: int
    items: list[NftOut]
    next_cursor: str | None


class PositionLegOut(Schema):
    """One asset of a position. ``amount`` is positive whatever the role; ``value`` is negative when borrowed."""

    asset_id: int
    symbol: str
    role: str = Field(description="supplied, borrowed, staked, reward or pending.")
    decimals: int
    amount: DecimalStr
    price: DecimalStr | None
    value: DecimalStr | None


class PositionOut(Schema):
    """A DeFi or staking position: legs, net value (debt counted negative; null when no leg is priced)
    and the health factor where the protocol has one."""

    id: int
    protocol: str
    kind: str
    label: str
    ref: str
    wallet_id: int
    chain: str
    legs: list[PositionLegOut]
    value: DecimalStr | None
    unpriced_legs: int
    health_factor: DecimalStr | None
    height: int | None
    fetched_at: datetime | None


class PositionsOut(Schema):
    currency: str
    count: int
    items: list[PositionOut]


# --------------------------------------------------------------------------- chains


class ChainOut(Schema):
    """A chain wallets are tracked on (enabled by an administrator)."""

    slug: str
    name: str
    family: Family
    network: str
    chain_id: int | None = Field(description="EVM chain id; null for other families.")
    native_symbol: str
    native_decimals: int
    explorer_address_url: str = Field(description="Template with {address}; empty when not set.")


# --------------------------------------------------------------------------- summary


class SeriesPointOut(Schema):
    at: datetime
    value: DecimalStr


class SliceOut(Schema):
    key: str
    label: str
    value: DecimalStr
    share: DecimalStr | None


class UnpricedAssetOut(Schema):
    asset_id: int
    symbol: str
    chain: str


class PerformanceOut(Schema):
    """Performance of a scope over a range, money in ``currency``: ``change`` = ``net_flows`` + ``market``;
    ``profit`` = change - net flows; ``twr`` the time-weighted return (a fraction, market moves only).
    Null until there is history; unpriced assets are left out of every figure."""

    currency: str
    fx_missing: bool = Field(description="The chosen currency has no FX rate yet: figures are in USD.")
    range: RangeKey
    as_of: datetime | None
    net_worth: DecimalStr
    change: DecimalStr | None
    pct: DecimalStr | None
    twr: DecimalStr | None
    profit: DecimalStr | None
    net_flows: DecimalStr | None
    market: DecimalStr | None
    unpriced_count: int


class SummaryOut(PerformanceOut):
    """Net worth and performance of a scope over a range with its series and allocation; the unpriced
    assets left out of every figure are listed."""

    unpriced: list[UnpricedAssetOut]
    series: list[SeriesPointOut]
    allocation: dict[str, list[SliceOut]] = Field(description='"asset", "chain", "wallet", "kind": largest first.')
    history: Literal["materialised", "pending", "live"]


class HistoryOut(Schema):
    """The net-worth series of a scope over a range, oldest first (hourly for 7 days, daily before),
    each point in ``currency`` at the FX rate of its own moment."""

    currency: str
    fx_missing: bool
    range: RangeKey
    as_of: datetime | None
    series: list[SeriesPointOut]
    history: Literal["materialised", "wallet_totals", "live"]


class AllocationOut(Schema):
    """Net worth split by ``by`` (largest first); ``share`` is a fraction of the priced total."""

    currency: str
    by: Literal["asset", "chain", "wallet", "kind"]
    as_of: datetime | None
    net_worth: DecimalStr
    items: list[SliceOut]


# --------------------------------------------------------------------------- sync


class SyncIn(BaseModel):
    """What to refresh: one of your wallets, one of your portfolios, or (neither) all your wallets."""

    wallet_id: DbId | None = None
    portfolio_id: DbId | None = None

    @model_validator(mode="after")
    def _one_scope(self):
        if self.wallet_id is not None and self.portfolio_id is not None:
            raise PydanticCustomError("invalid", "Give a wallet_id or a portfolio_id, not both.")
        return self


class SyncItemOut(Schema):
    """One (wallet, chain) of a run, as the progress fragment shows it."""

    id: int
    wallet_id: int
    wallet: str
    chain: str
    chain_slug: str
    state: Literal["queued", "running", "done", "failed"]
    status: Literal["queued", "running", "ok", "partial", "failed"]
    error: str
    endpoint: str
    height: int | None
    counts: dict[str, int]
    attempts: int
    last_ok_at: datetime | None
    finished_at: datetime | None


class SyncRunOut(Schema):
    id: int
    status: Literal["queued", "running", "ok", "partial", "failed"]
    finished: bool
    created_at: datetime
    finished_at: datetime | None
    error: str
    total: int
    done: int
    items: list[SyncItemOut]
