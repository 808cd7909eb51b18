"""The data model: chains and endpoints (admin), assets, wallets and portfolios (users), synced state,
prices and value history. Amounts are exact integers in base units (see fields.py)."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from chains.base import AssetRef, ChainConfig, EndpointConfig, WalletRef
from chains.registry import FAMILY_CHOICES, PROTOCOL_CHOICES, PROTOCOLS
from portfolio.fields import AmountField, ExactDecimalField, TotalAmountField

# Values and their sums: a uint256 amount (78 digits) of a 0-decimal token at a price up to $10**4 with
# 18 places, so no stored amount makes a snapshot overflow its column on PostgreSQL.
VALUE_DIGITS = 100
NETWORK_CHOICES = [("mainnet", "Mainnet"), ("testnet", "Testnet"), ("regtest", "Regtest"), ("devnet", "Devnet")]


class Chain(models.Model):
    """A network the app can read. A new EVM chain is one of these rows plus an RpcEndpoint."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    family = models.CharField(max_length=10, choices=FAMILY_CHOICES)
    chain_id = models.BigIntegerField(null=True, blank=True, help_text="EVM chain id (eth_chainId).")
    network = models.CharField(max_length=10, choices=NETWORK_CHOICES, default="mainnet")
    native_symbol = models.CharField(max_length=16)
    native_name = models.CharField(max_length=60, blank=True)
    native_decimals = models.PositiveSmallIntegerField(default=18)
    native_coingecko_id = models.CharField(max_length=100, blank=True)
    coingecko_platform = models.CharField(max_length=100, blank=True, help_text="CoinGecko asset platform id for contract lookups.")
    explorer_address_url = models.CharField(max_length=200, blank=True, help_text="e.g. https://etherscan.io/address/{address}")
    explorer_tx_url = models.CharField(max_length=200, blank=True, help_text="e.g. https://etherscan.io/tx/{tx}")
    explorer_token_url = models.CharField(max_length=200, blank=True, help_text="e.g. https://etherscan.io/token/{token}")
    enabled = models.BooleanField(default=True)
    sync_interval = models.DurationField(default=timedelta(minutes=10))
    multicall_address = models.CharField(max_length=42, blank=True, default="0xcA11bde05977b3631167028862bE2a173976CA11")
    log_scan_start = models.BigIntegerField(
        null=True, blank=True, help_text="EVM: first block of a wallet's first log scan. Empty: the latest 100,000 blocks."
    )
    log_range = models.PositiveIntegerField(default=10_000, help_text="EVM: blocks per eth_getLogs request (shrinks on errors).")
    genesis_hash = models.CharField(
        max_length=100, blank=True,
        help_text="Solana: the cluster's genesis hash; every endpoint is checked against it, so another cluster's "
                  "answers are never stored. Empty: the first answer's is pinned per wallet.")
    sort_order = models.PositiveSmallIntegerField(default=100)
    ens_registry = models.CharField(
        max_length=42, blank=True,
        help_text="EVM: ENS registry for names typed as wallets (the first enabled chain with one resolves them). "
                  "Ethereum: 0x00000000000C2E074eC69A0dFb2997BA6C7d2e1e.",
    )

    class Meta:
        ordering = ["sort_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["chain_id"], condition=Q(family="evm"), name="unique_evm_chain_id"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.family == "evm" and self.chain_id is None:
            # Without it no endpoint's eth_chainId can be checked, and another chain's balances could be stored.
            raise ValidationError({"chain_id": "An EVM chain needs its chain id (what eth_chainId answers)."})
        if self.ens_registry:
            from chains.base import InvalidAddress
            from chains.evm.address import parse_address

            try:
                self.ens_registry = parse_address(self.ens_registry).address
            except InvalidAddress as exc:
                raise ValidationError({"ens_registry": f"Not a contract address: {exc.detail}."}) from None

    def to_config(self) -> ChainConfig:
        return ChainConfig(
            slug=self.slug,
            family=self.family,
            network=self.network,
            chain_id=self.chain_id,
            native_symbol=self.native_symbol,
            native_name=self.native_name or self.native_symbol,
            native_decimals=self.native_decimals,
            multicall_address=self.multicall_address or ChainConfig.multicall_address,
            log_scan_start=self.log_scan_start,
            log_range=self.log_range,
            ipfs_gateway=settings.IPFS_GATEWAY,
            ens_registry=self.ens_registry or None,
            # An unsaved chain (the admin's endpoint check while adding it) has no protocol rows yet.
            protocols={d.protocol: d.contracts for d in self.protocol_deployments.filter(enabled=True)} if self.pk else {},
            extra={"genesis_hash": self.genesis_hash} if self.genesis_hash else {},
        )

    def endpoint_configs(self) -> list[EndpointConfig]:
        return [e.to_config() for e in self.endpoints.filter(enabled=True).order_by("priority", "id")]

    def explorer_link(self, kind: str, value: str) -> str:
        template = {"address": self.explorer_address_url, "tx": self.explorer_tx_url, "token": self.explorer_token_url}[kind]
        return template.replace("{" + kind + "}", value) if template else ""


class ProtocolDeployment(models.Model):
    """A DeFi protocol's contracts on one chain (admin-managed; seeded for the mainnets and set by the
    demo for the devnet): what the chain's adapter reads positions from. ``contracts`` maps the
    protocol's roles to addresses, e.g. ``{"pool": "0x8787...", "addresses_provider": "0x2f39..."}``
    (see chains/evm/protocols/deployments.py for each protocol's roles)."""

    chain = models.ForeignKey("Chain", on_delete=models.CASCADE, related_name="protocol_deployments")
    protocol = models.CharField(max_length=40, choices=PROTOCOL_CHOICES)
    contracts = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "protocol"], name="unique_protocol_deployment")]
        ordering = ["chain", "protocol"]

    def __str__(self) -> str:
        return f"{self.get_protocol_display()} on {self.chain}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.chain_id and self.protocol not in PROTOCOLS.get(self.chain.family, {}):
            raise ValidationError({"protocol": f"{self.protocol} is not a protocol of the {self.chain.family} family."})
        if not isinstance(self.contracts, dict):
            raise ValidationError({"contracts": "A JSON object of role -> address."})


class RpcEndpoint(models.Model):
    """One RPC URL of a chain. API keys never live here: name the environment variable that holds one."""

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="endpoints")
    url = models.URLField(max_length=300)
    priority = models.PositiveSmallIntegerField(default=10, help_text="Lower is tried first.")
    enabled = models.BooleanField(default=True)
    rate_per_s = ExactDecimalField(max_digits=10, decimal_places=3, null=True, blank=True, help_text="Requests per second, shared by all workers.")
    auth_header_name = models.CharField(max_length=60, blank=True, help_text="e.g. Authorization or x-api-key")
    auth_header_env = models.CharField(max_length=80, blank=True, help_text="Environment variable holding the header value.")
    timeout_s = models.PositiveSmallIntegerField(default=10)
    # Health, written by the workers (portfolio/endpoint_health.py) at most every 30 s per process:
    # request and error counts decayed by half at each write, so they describe the last minutes.
    recent_requests = models.FloatField(default=0, editable=False)
    recent_errors = models.FloatField(default=0, editable=False)
    latency_ms = models.FloatField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=300, blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    health_updated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["chain", "priority", "id"]
        constraints = [models.UniqueConstraint(fields=["chain", "url"], name="unique_chain_endpoint")]

    def __str__(self) -> str:
        return f"{self.chain.slug}: {self.label}"

    @property
    def label(self) -> str:
        from chains.base import redact_url

        return redact_url(self.url)

    def to_config(self) -> EndpointConfig:
        headers = {}
        if self.auth_header_name and self.auth_header_env and os.environ.get(self.auth_header_env):
            headers[self.auth_header_name] = os.environ[self.auth_header_env]
        return EndpointConfig(
            url=self.url,
            priority=self.priority,
            rate_per_s=float(self.rate_per_s) if self.rate_per_s else None,
            headers=headers,
            timeout_s=float(self.timeout_s),
        )


class Asset(models.Model):
    """A native coin, fungible token or NFT collection on one chain."""

    NATIVE, FUNGIBLE, NFT_COLLECTION = "native", "fungible", "nft_collection"
    KIND_CHOICES = [(NATIVE, "Native"), (FUNGIBLE, "Token"), (NFT_COLLECTION, "NFT collection")]

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="assets")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    address = models.CharField(max_length=100, blank=True, help_text="Contract or mint; empty for the native asset.")
    standard = models.CharField(max_length=16, default="native", help_text="native, erc20, erc721, erc1155, spl, token2022")
    symbol = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    decimals = models.PositiveSmallIntegerField(default=0)
    logo_url = models.URLField(max_length=500, blank=True)
    listed = models.BooleanField(default=False, help_text="In the chain's token list: balances are read even without a transfer seen.")
    is_spam = models.BooleanField(default=False)
    spam_reason = models.CharField(max_length=200, blank=True)
    coingecko_id = models.CharField(max_length=100, blank=True)
    oracle_address = models.CharField(max_length=100, blank=True, help_text="Chainlink-style price feed (USD) on the same chain.")
    price_sources = models.JSONField(default=list, blank=True, help_text='Order to try, e.g. ["oracle", "coingecko", "manual"]. Empty: the default order.')
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["chain", "symbol"]
        constraints = [models.UniqueConstraint(fields=["chain", "address"], name="unique_chain_asset")]
        indexes = [models.Index(fields=["chain", "kind", "listed"])]

    def __str__(self) -> str:
        return f"{self.symbol} ({self.chain.slug})"

    # The columns an AssetRef is made of, in ``ref_from``'s order: ``values_list(*REF_COLUMNS)`` rows
    # become AssetRefs without a model instance each (a sync reads its chain's whole list).
    REF_COLUMNS = ("kind", "address", "symbol", "name", "decimals", "standard", "logo_url", "oracle_address")

    def to_ref(self) -> AssetRef:
        return Asset.ref_from(self.kind, self.address, self.symbol, self.name, self.decimals, self.standard, self.logo_url,
                              self.oracle_address)

    @staticmethod
    def ref_from(kind: str, address: str, symbol: str, name: str, decimals: int, standard: str, logo_url: str,
                 oracle_address: str) -> AssetRef:
        """The AssetRef of an asset given its ``REF_COLUMNS``."""
        return AssetRef(kind=kind, address=address or None, symbol=symbol, name=name, decimals=decimals, standard=standard,
                        logo_url=logo_url, oracle=oracle_address or None)


class AssetIcon(models.Model):
    """An asset's logo, fetched once by a worker from its ``logo_url`` (token lists, Metaplex/ERC
    metadata) through the safe fetcher: raster only (the type sniffed from the bytes), size-capped, and
    served from our own origin so pages never load third-party images for assets. A failed fetch keeps
    its reason (``error``) and is not tried again until the asset's ``logo_url`` changes."""

    asset = models.OneToOneField(Asset, on_delete=models.CASCADE, related_name="icon")
    source_url = models.CharField(max_length=500)
    content_type = models.CharField(max_length=20, blank=True, help_text="Empty: the fetch failed (see error).")
    data = models.BinaryField(default=b"", blank=True)
    digest = models.CharField(max_length=64, blank=True, help_text="SHA-256 of data, hex: the served URL's version.")
    error = models.CharField(max_length=200, blank=True)
    fetched_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"icon of {self.asset_id}"


class Profile(models.Model):
    """Per-user preferences."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    quote_currency = models.CharField(max_length=3, default="USD")
    dust_threshold = ExactDecimalField(max_digits=20, decimal_places=2, default=Decimal("1.00"))
    health_alert_below = ExactDecimalField(
        max_digits=10, decimal_places=2, default=Decimal("1.20"),
        help_text="A lending position whose health factor falls below this raises an alert (liquidation is at 1).")
    # Per-user limits raised by staff in the admin; empty: the site's default (settings, portfolio/limits.py).
    max_wallets = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the site default (MAX_WALLETS_PER_USER).")
    max_portfolios = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the site default (MAX_PORTFOLIOS_PER_USER).")

    def __str__(self) -> str:
        return f"profile of {self.user}"


class Wallet(models.Model):
    """A watch-only address or extended public key. An EVM address is tracked on every enabled EVM chain."""

    ADDRESS, EXTENDED_KEY = "address", "extended_key"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallets")
    family = models.CharField(max_length=10, choices=FAMILY_CHOICES)
    address = models.CharField(max_length=200, help_text="Canonical address or extended public key.")
    kind = models.CharField(max_length=16, default=ADDRESS, choices=[(ADDRESS, "Address"), (EXTENDED_KEY, "Extended public key")])
    script_type = models.CharField(max_length=16, blank=True)
    gap_limit = models.PositiveSmallIntegerField(default=20)
    label = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ens_name = models.CharField(max_length=255, blank=True, help_text="EVM: the ENS name this wallet was added by (resolved then).")
    primary_name = models.CharField(
        max_length=255, blank=True, help_text="EVM: its ENS reverse name, only when that name resolves back to it (kept fresh by the sync)."
    )

    class Meta:
        ordering = ["family", "label", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "family", "address"], name="unique_owner_wallet")]

    def __str__(self) -> str:
        return self.label or self.primary_name or self.ens_name or self.short_address

    @property
    def short_address(self) -> str:
        a = self.address
        return a if len(a) <= 16 else f"{a[:8]}…{a[-6:]}"

    def to_ref(self) -> WalletRef:
        return WalletRef(address=self.address, script_type=self.script_type or None, gap_limit=self.gap_limit)


class Portfolio(models.Model):
    """A named bundle of a user's wallets. "All wallets" is virtual (no row)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portfolios")
    name = models.CharField(max_length=80)
    wallets = models.ManyToManyField(Wallet, related_name="portfolios", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_owner_portfolio")]

    def __str__(self) -> str:
        return self.name


class WalletChain(models.Model):
    """One wallet on one chain: the unit of sync and of data freshness."""

    IDLE, QUEUED, RUNNING, OK, FAILED = "idle", "queued", "running", "ok", "failed"
    STATUS_CHOICES = [(IDLE, "Never synced"), (QUEUED, "Queued"), (RUNNING, "Running"), (OK, "OK"), (FAILED, "Failed")]

    # No index of its own: the unique constraint's index starts with this column.
    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="wallet_chains", db_index=False)
    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="wallet_chains")
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=IDLE)
    # Not indexed: every claim rewrites it for each due row, and with an index each of those writes
    # adds index entries on every index of the table (no HOT update); the beat's due query reads the
    # table once a minute instead (4,000 rows: the claim 101-132 -> 42-48 ms on PostgreSQL).
    next_due_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    first_ok_at = models.DateTimeField(
        null=True, blank=True,
        help_text="The first good read: what this wallet held on this chain then is its opening balance, not a flow.")
    last_error = models.TextField(blank=True)
    height = models.BigIntegerField(null=True, blank=True)
    endpoint = models.CharField(max_length=300, blank=True, help_text="Redacted label of the endpoint that answered.")
    cursors = models.JSONField(default=dict, blank=True)
    problems = models.JSONField(default=list, blank=True, help_text="Partial failures of the last good sync.")
    # What the last good sync stored, as a fingerprint of its fetch (sync/fingerprint.py): a fetch with the
    # same one changes no holding, NFT or position, so they are neither read nor written. Empty: unknown.
    stored_fingerprint = models.CharField(max_length=40, blank=True, default="", editable=False)

    class Meta:
        ordering = ["wallet", "chain"]
        constraints = [models.UniqueConstraint(fields=["wallet", "chain"], name="unique_wallet_chain")]

    def __str__(self) -> str:
        return f"{self.wallet} on {self.chain.slug}"


class FreshnessCache(models.Model):
    """The owner's per-chain freshness over all wallets (``queries.chain_freshness`` of "All wallets"),
    kept so the dashboard reads one row instead of counting every WalletChain. Computed on a read and
    valid while ``computed_version == version``: every write that changes an owner's WalletChains bumps
    ``version`` (``portfolio.freshness.changed``), and rows older than FRESHNESS_CACHE_SECONDS are
    recomputed anyway (a write made around the code, in a shell or the admin). Also "All wallets"' series key."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    version = models.BigIntegerField(default=0)
    computed_version = models.BigIntegerField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    rows = models.JSONField(default=list, blank=True)
    # The scope_key of all the owner's wallets, and the set it was read from (count, highest id): ids are
    # never reused, so the same count and highest id mean the same set (``freshness.all_wallets_key``).
    scope_key = models.CharField(max_length=40, blank=True)
    key_wallets = models.IntegerField(null=True, blank=True)
    key_top = models.BigIntegerField(null=True, blank=True)


class PortfolioFreshnessCache(models.Model):
    """A portfolio's per-chain freshness (``queries.chain_freshness`` of its wallets), kept so its
    dashboard and the list of portfolios read one row instead of counting its WalletChains. Valid while
    the owner's FreshnessCache.version is still ``owner_version`` (every write to the owner's
    WalletChains bumps it: ``freshness.changed``), ``computed_version == version`` (a membership change
    bumps the portfolio's) and younger than the owner's row's max age."""

    portfolio = models.OneToOneField("Portfolio", on_delete=models.CASCADE, primary_key=True, related_name="+")
    version = models.BigIntegerField(default=0)
    computed_version = models.BigIntegerField(null=True, blank=True)
    owner_version = models.BigIntegerField(null=True, blank=True)  # the owner's FreshnessCache.version it was computed at
    computed_at = models.DateTimeField(null=True, blank=True)
    rows = models.JSONField(default=list, blank=True)


class PairValueCache(models.Model):
    """The current value of the priced holdings of each (wallet, chain) pair of an owner in one quote
    currency (``pairs``: "wallet:chain" -> exact decimal text), so the lists of wallets and portfolios
    do not read every holding on each view (portfolio/pair_values.py). Valid while the prices are the
    ones it was computed with (``token``, ``valid_until``) and no younger than its max age; pairs whose
    holdings changed since are listed in PairValueChange and recomputed alone."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    currency = models.CharField(max_length=8)
    version = models.BigIntegerField(default=0)
    computed_version = models.BigIntegerField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    token = models.CharField(max_length=64, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    viewed_at = models.DateTimeField(null=True, blank=True)  # the last view that computed it (not the price task)
    pairs = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "currency"], name="unique_pair_value_cache")]


class HoldingsVersion(models.Model):
    """A counter that grows with every write to what a scope's valued asset list is computed from
    (portfolio/holdings_cache.py): one per owner ("owner:<id>", its AssetTotals) and one for every owner
    ("assets": an asset's spam flag, decimals or price sources edited)."""

    name = models.CharField(max_length=40, primary_key=True)
    version = models.BigIntegerField(default=0)


class PairValueChange(models.Model):
    """A (wallet, chain) pair whose holdings changed after its owner's PairValueCache was computed
    (written by the holdings' writers in their transaction, deleted once the pair is recomputed)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    wallet_id = models.BigIntegerField()
    chain_id = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["owner", "id"], name="pair_value_change_owner")]


class ReadAt:
    """When a synced row was read. Its own ``height``/``fetched_at`` are set only on a row carried over
    stale (its read failed since); NULL means "as of the WalletChain's last good sync", so a sync that
    finds nothing new rewrites no row just because the block moved (sync/store.py)."""

    @property
    def read_height(self) -> int | None:
        return self.height if self.height is not None else self.wallet_chain.height

    @property
    def read_at(self):
        return self.fetched_at if self.fetched_at is not None else self.wallet_chain.last_ok_at

    @staticmethod
    def read_columns() -> tuple[Coalesce, Coalesce]:
        """The same two values as query expressions (for ``values_list``/``annotate``)."""
        return Coalesce("height", "wallet_chain__height"), Coalesce("fetched_at", "wallet_chain__last_ok_at")


class Holding(ReadAt, models.Model):
    """A balance of one asset in one WalletChain, written by key on each successful sync."""

    # No index of its own: the unique constraint's index starts with this column.
    wallet_chain = models.ForeignKey(WalletChain, on_delete=models.CASCADE, related_name="holdings", db_index=False)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="holdings")
    amount = AmountField(help_text="Confirmed amount in base units.")
    unconfirmed = AmountField(default=0, help_text="Pending change in base units (Bitcoin mempool).")
    height = models.BigIntegerField(null=True, blank=True, help_text="Empty: the WalletChain's (see ReadAt).")
    fetched_at = models.DateTimeField(null=True, blank=True, help_text="Empty: the WalletChain's last good sync.")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["wallet_chain", "asset"], name="unique_holding")]


class AssetTotal(models.Model):
    """The sum of one asset's non-zero holdings in a scope, and how many holdings that is: an owner's
    "All wallets" (``portfolio`` NULL) or one portfolio. Kept exact by the sync's diff writer and by
    membership changes (portfolio/totals.py), so the holdings page reads one row per asset instead of
    one per holding. Accounts reached through two wallets are in it twice: readers take the covered
    pairs' holdings out (portfolio/overlaps.py)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="+")
    amount = TotalAmountField(default=0)
    holders = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "asset"], condition=Q(portfolio__isnull=True), name="unique_owner_asset_total"),
            models.UniqueConstraint(fields=["portfolio", "asset"], condition=Q(portfolio__isnull=False), name="unique_portfolio_asset_total"),
        ]


class NftItem(ReadAt, models.Model):
    """One NFT (or an ERC-1155 amount of one id) held in one WalletChain."""

    # No index of its own: the unique constraint's index starts with this column.
    wallet_chain = models.ForeignKey(WalletChain, on_delete=models.CASCADE, related_name="nfts", db_index=False)
    collection = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="nft_items")
    token_id = models.CharField(max_length=100)
    amount = AmountField(default=1)
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    image_url = models.TextField(blank=True)
    metadata_url = models.TextField(blank=True)
    height = models.BigIntegerField(null=True, blank=True, help_text="Empty: the WalletChain's (see ReadAt).")
    fetched_at = models.DateTimeField(null=True, blank=True, help_text="Empty: the WalletChain's last good sync.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["wallet_chain", "collection", "token_id"], name="unique_nft_item")]


class Position(ReadAt, models.Model):
    """A DeFi or staking position in one WalletChain (legs in PositionLeg)."""

    # No index of its own: the unique constraint's index starts with this column.
    wallet_chain = models.ForeignKey(WalletChain, on_delete=models.CASCADE, related_name="positions", db_index=False)
    protocol = models.CharField(max_length=60)
    kind = models.CharField(max_length=20, help_text="staking, lending, liquidity, vault")
    ref = models.CharField(max_length=120, help_text="Stable id: account or contract.")
    label = models.CharField(max_length=200, blank=True)
    health_factor = ExactDecimalField(max_digits=40, decimal_places=18, null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    height = models.BigIntegerField(null=True, blank=True, help_text="Empty: the WalletChain's (see ReadAt).")
    fetched_at = models.DateTimeField(null=True, blank=True, help_text="Empty: the WalletChain's last good sync.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["wallet_chain", "protocol", "ref"], name="unique_position")]


class HealthAlert(models.Model):
    """A lending position of a user below their health-factor threshold: opened when a sync first sees
    it below, cleared when a later sync sees it recover (or the position close). The open ones are the
    dashboard's banner; each opening and clearing is also logged as an event."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="health_alerts")
    wallet_chain = models.ForeignKey(WalletChain, on_delete=models.CASCADE, related_name="health_alerts")
    protocol = models.CharField(max_length=60)
    ref = models.CharField(max_length=120)
    label = models.CharField(max_length=200, blank=True)
    health_factor = ExactDecimalField(max_digits=40, decimal_places=18)
    threshold = ExactDecimalField(max_digits=10, decimal_places=2)
    opened_at = models.DateTimeField(default=timezone.now)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["wallet_chain", "protocol", "ref"], condition=Q(cleared_at__isnull=True),
                                               name="one_open_health_alert")]


class PositionLeg(models.Model):
    SUPPLIED, BORROWED, REWARD, STAKED, PENDING = "supplied", "borrowed", "reward", "staked", "pending"

    position = models.ForeignKey(Position, on_delete=models.CASCADE, related_name="legs")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="position_legs")
    amount = AmountField()
    role = models.CharField(max_length=12)

    @property
    def sign(self) -> int:
        return -1 if self.role == self.BORROWED else 1


class SyncRun(models.Model):
    """One requested sync (a wallet, a portfolio, or a scheduled batch) and its outcome."""

    QUEUED, RUNNING, OK, PARTIAL, FAILED = "queued", "running", "ok", "partial", "failed"
    STATUS_CHOICES = [(QUEUED, "Queued"), (RUNNING, "Running"), (OK, "OK"), (PARTIAL, "Partial"), (FAILED, "Failed")]
    MANUAL, SCHEDULE = "manual", "schedule"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sync_runs", null=True, blank=True)
    portfolio = models.ForeignKey(Portfolio, on_delete=models.SET_NULL, null=True, blank=True, related_name="sync_runs")
    wallet = models.ForeignKey(Wallet, on_delete=models.SET_NULL, null=True, blank=True, related_name="sync_runs")
    trigger = models.CharField(max_length=10, default=MANUAL, choices=[(MANUAL, "Manual"), (SCHEDULE, "Schedule")])
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=QUEUED)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    planned = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="A scheduled run's number of chain syncs: its items are written as they finish (by the worker, in the "
                  "transaction that stores the sync), and the run is not finished before this many are. Empty: every "
                  "item existed before any was sent (a Refresh).")
    claimed_at = models.DateTimeField(
        null=True, blank=True,
        help_text="A scheduled run's claim: the WalletChains it claimed carry this claimed_at (until claimed again), "
                  "so the reaper can tell which of them never reached a worker.")

    class Meta:
        ordering = ["-created_at"]


class SyncRunItem(models.Model):
    """The outcome of one WalletChain inside a SyncRun. A Refresh writes its items queued, before they
    are sent; a scheduled run's item is written once, when its sync ends (ok, failed, or queued for a
    retry), or by the reaper for a claimed WalletChain no worker took."""

    # No index of its own: the unique constraint's index starts with this column.
    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="items", db_index=False)
    wallet_chain = models.ForeignKey(WalletChain, on_delete=models.CASCADE, related_name="run_items")
    status = models.CharField(max_length=10, choices=SyncRun.STATUS_CHOICES, default=SyncRun.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    requeues = models.PositiveSmallIntegerField(default=0, help_text="Times the reaper sent this stalled item again.")
    requeued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    endpoint = models.CharField(max_length=300, blank=True)
    height = models.BigIntegerField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "wallet_chain"], name="unique_run_item")]


class Transfer(models.Model):
    """One movement of one asset into (``in``) or out of (``out``) one wallet on one chain, read from
    the chain's own history (Bitcoin transactions, EVM native and token ``Transfer`` logs, Solana
    transactions' pre/post balances). ``amount`` is positive, in base units; ``fee`` (base units of the
    chain's native asset) is set on the outgoing leg that paid it. Whether a transfer is internal (its
    counterparty is another wallet of the same owner) depends on the owner's wallets and is decided
    when read, not stored. ``key`` tells apart several movements of one transaction (log index,
    output index, account index)."""

    IN, OUT = "in", "out"
    DIRECTION_CHOICES = [(IN, "In"), (OUT, "Out")]

    wallet_chain = models.ForeignKey(WalletChain, on_delete=models.CASCADE, related_name="transfers")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="transfers")
    tx = models.CharField(max_length=100, help_text="Transaction hash, txid or signature.")
    key = models.CharField(max_length=40, default="", blank=True, help_text="Log index, output or account index within the transaction.")
    direction = models.CharField(max_length=3, choices=DIRECTION_CHOICES)
    amount = AmountField(help_text="Positive, in base units.")
    fee = AmountField(default=0, help_text="Network fee paid by this wallet, in base units of the chain's native asset.")
    counterparty = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField()
    height = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["wallet_chain", "asset", "tx", "key", "direction"], name="unique_transfer")
        ]
        indexes = [
            models.Index(fields=["wallet_chain", "-at"], name="transfer_wc_at"),
            models.Index(fields=["at"], name="transfer_at"),
        ]


class Backfill(models.Model):
    """The reconstruction of one wallet-chain's past: daily points back to ``depth_days`` (or the first
    transaction), done on its own queue, resumable (``cursor``) and idempotent. ``complete_from`` is the
    oldest moment from which the history is complete (an endpoint without archive state stops it
    earlier: ``reason`` says why)."""

    QUEUED, RUNNING, DONE, PARTIAL, FAILED = "queued", "running", "done", "partial", "failed"
    STATUS_CHOICES = [(s, s) for s in (QUEUED, RUNNING, DONE, PARTIAL, FAILED)]

    wallet_chain = models.OneToOneField(WalletChain, on_delete=models.CASCADE, related_name="backfill")
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=QUEUED)
    depth_days = models.PositiveIntegerField(default=365)
    days_total = models.PositiveIntegerField(default=0)
    days_done = models.PositiveIntegerField(default=0)
    complete_from = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    cursor = models.JSONField(default=dict, blank=True)
    requests = models.PositiveIntegerField(default=0, help_text="RPC requests spent so far.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)


# Which registered price source (portfolio/pricing/registry.py) a stored ``PricePoint.source`` belongs to,
# by its prefixes, in the registry's order: a new source's prefixes go here too (and a migration).
PRICE_KINDS = {"oracle": ("oracle:", "chainlink:"), "coingecko": ("coingecko",), "manual": ("manual",)}


class PricePoint(models.Model):
    """The price of one whole unit of an asset in a currency at a time, with its source. ``kind`` is the
    source's registered name, computed by the database from ``source`` (``PRICE_KINDS``): the latest
    price of each kind of an asset is one probe of ``price_latest_by_kind`` however long its history
    (a prefix match on ``source`` scanned every point of the asset)."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="prices")
    at = models.DateTimeField(default=timezone.now)
    currency = models.CharField(max_length=3, default="USD")
    price = ExactDecimalField(max_digits=50, decimal_places=18)
    source = models.CharField(max_length=120, help_text="oracle:<feed>, coingecko, manual")
    kind = models.GeneratedField(
        expression=models.Case(*[models.When(source__startswith=prefix, then=models.Value(name))
                                 for name, prefixes in PRICE_KINDS.items() for prefix in prefixes],
                               default=models.Value(""), output_field=models.CharField(max_length=20)),
        output_field=models.CharField(max_length=20), db_persist=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["asset", "currency", "-at"], name="price_latest"),
                   models.Index(fields=["asset", "kind", "-at", "-id"], name="price_latest_by_kind")]


class FxRate(models.Model):
    """Units of ``currency`` per 1 USD at a time."""

    at = models.DateTimeField(default=timezone.now)
    currency = models.CharField(max_length=3)
    rate = ExactDecimalField(max_digits=30, decimal_places=12)
    source = models.CharField(max_length=60)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["currency", "-at"], name="fx_latest")]


class ValuePoint(models.Model):
    """A snapshot of one asset in one wallet on one chain at a time: amount, price, value (in USD, with
    the FX rate of the moment kept so history is never re-priced), and the flow/market split of the
    change since the previous point of the same series (``opening_value``: the value of an account seen
    for the first time, a wallet just added or a chain just enabled for it, which is neither a flow nor
    growth). Points of the last 48 hours are kept as taken (``raw``: one per completed sync and per
    hourly snapshot); older ones are folded to one per hour, then after 7 days to one per day."""

    RAW, HOURLY, DAILY = "raw", "hourly", "daily"

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="value_points")
    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="value_points")
    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="value_points")
    at = models.DateTimeField()
    resolution = models.CharField(max_length=6, default=RAW)
    amount = AmountField()
    price = ExactDecimalField(max_digits=50, decimal_places=18, null=True, blank=True)
    value = ExactDecimalField(max_digits=VALUE_DIGITS, decimal_places=18, null=True, blank=True)
    flow_value = ExactDecimalField(max_digits=VALUE_DIGITS, decimal_places=18, null=True, blank=True)
    market_value = ExactDecimalField(max_digits=VALUE_DIGITS, decimal_places=18, null=True, blank=True)
    opening_value = ExactDecimalField(max_digits=VALUE_DIGITS, decimal_places=18, default=Decimal(0))
    currency = models.CharField(max_length=3, default="USD")
    price_source = models.CharField(max_length=120, blank=True)
    backfilled = models.BooleanField(default=False, help_text="Reconstructed from the chain's history, not a live snapshot.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["wallet", "chain", "asset", "at"], name="unique_value_point")]
        indexes = [models.Index(fields=["wallet", "at"], name="value_wallet_at"), models.Index(fields=["at"], name="value_at")]


class WalletValue(models.Model):
    """A wallet's total at one snapshot time (the sum of its ValuePoints, in USD): the series summed
    for a portfolio without a materialised ScopeValue. ``fx_rates`` keeps the rate of every quote
    currency at that moment ({"EUR": "0.92"}, units per USD) so history is never re-priced."""

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="value_totals")
    at = models.DateTimeField()
    resolution = models.CharField(max_length=6, default=ValuePoint.RAW)
    value = ExactDecimalField(max_digits=VALUE_DIGITS, decimal_places=18, default=Decimal(0))
    flow_value = ExactDecimalField(max_digits=VALUE_DIGITS, decimal_places=18, default=Decimal(0))
    market_value = ExactDecimalField(max_digits=VALUE_DIGITS, decimal_places=18, default=Decimal(0))
    opening_value = ExactDecimalField(max_digits=VALUE_DIGITS, decimal_places=18, default=Decimal(0))
    unpriced = models.PositiveIntegerField(default=0, help_text="Assets held but without a price at this time.")
    fx_rates = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["wallet", "at"], name="unique_wallet_value")]


class ScopeValue(models.Model):
    """A materialised total of one set of an owner's wallets ("All wallets" or a portfolio) at one
    snapshot time, so a dashboard series is one short query however many wallets and holdings there
    are. ``scope_key`` is a digest of the sorted wallet ids; ``breakdown`` holds the allocation (by
    asset, chain, wallet, kind) and the unpriced list of the latest point only."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scope_values")
    scope_key = models.CharField(max_length=40)
    at = models.DateTimeField()
    resolution = models.CharField(max_length=6, default=ValuePoint.RAW)
    value = ExactDecimalField(max_digits=VALUE_DIGITS, decimal_places=18, default=Decimal(0))
    flow_value = ExactDecimalField(max_digits=VALUE_DIGITS, decimal_places=18, default=Decimal(0))
    market_value = ExactDecimalField(max_digits=VALUE_DIGITS, decimal_places=18, default=Decimal(0))
    opening_value = ExactDecimalField(max_digits=VALUE_DIGITS, decimal_places=18, default=Decimal(0))
    unpriced = models.PositiveIntegerField(default=0)
    fx_rates = models.JSONField(default=dict, blank=True)
    breakdown = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "scope_key", "at"], name="unique_scope_value")]


class ApiToken(models.Model):
    """A personal API token (``Authorization: Bearer cf_…``). Only the SHA-256 of the token is stored;
    ``prefix`` (its first characters) lets the user tell tokens apart. A revoked or expired token is
    refused at once; ``last_used_at`` is updated at most once a minute (not a write per request)."""

    READ, WRITE = "read", "write"
    SCOPE_CHOICES = [(READ, "Read only"), (WRITE, "Read and write")]

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, help_text="The token's first characters, shown to tell tokens apart.")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token, hex.")
    scope = models.CharField(max_length=5, choices=SCOPE_CHOICES, default=READ)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "revoked_at"], name="api_token_owner")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def active(self) -> bool:
        return self.revoked_at is None and not self.is_expired()
