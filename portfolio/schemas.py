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
    """401 (not signed in), 403 (CSRF check failed), 404 (no such object of yours), 400 (unreadable body)."""

    detail: str


class ErrorItem(Schema):
    loc: list[str | int] = Field(description='Where: e.g. ["body", "payload", "address"]; ["body"]: the whole request.')
    msg: str
    type: str = Field(description='A machine-readable code, e.g. "secret", "invalid", "duplicate", "missing".')


class ValidationErrorOut(Schema):
    """422: the request was understood but refused. Never echoes what was sent."""

    detail: list[ErrorItem]


# --------------------------------------------------------------------------- portfolios


class PortfolioOut(Schema):
    id: int
    name: str
    created_at: datetime
    wallet_ids: list[int]

    @staticmethod
    def resolve_wallet_ids(obj) -> list[int]:
        return sorted(w.pk for w in obj.wallets.all())


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
    address: str = Field(description="A public address, an ENS name (EVM: resolved now, the address is stored) or an extended public key.")
    label: str = Field("", max_length=80)
    portfolio_ids: list[int] = Field(default_factory=list, description="Portfolios (of yours) to put the wallet in.")
    script_type: ScriptType | None = Field(None, description="Bitcoin extended keys only: how to derive addresses.")
    gap_limit: int = Field(20, ge=1, le=MAX_GAP_LIMIT, description="Bitcoin extended keys: unused addresses to scan.")

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
    share: DecimalStr | None = Field(description="Fraction of the priced total (0..1).")
    change_24h: DecimalStr | None = Field(description="Price change as a fraction (0.05 = +5%).")
    unpriced: bool
    wallets: list[HoldingWalletOut]


class HoldingsOut(Schema):
    currency: str
    count: int
    items: list[HoldingOut]


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


class SummaryOut(Schema):
    """Net worth and performance of a scope over a range, money in ``currency``.

    ``change``, ``profit`` (= change - net flows), ``net_flows`` and ``twr`` (time-weighted return, a
    fraction) are null until there is history; unpriced assets are left out of every figure and listed."""

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
    unpriced: list[UnpricedAssetOut]
    series: list[SeriesPointOut]
    allocation: dict[str, list[SliceOut]] = Field(description='"asset", "chain", "wallet", "kind": largest first.')
    history: Literal["materialised", "pending", "live"]


# --------------------------------------------------------------------------- sync


class SyncIn(BaseModel):
    """What to refresh: one of your wallets, one of your portfolios, or (neither) all your wallets."""

    wallet_id: int | None = None
    portfolio_id: int | None = None

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
