"""Read model of one wallet's page: its value and 24h change, per chain its holdings (valued as on
Holdings), positions, freshness and explorer link, the used addresses of an extended key, and its
NFTs. A fixed number of queries whatever the number of chains, holdings or derived addresses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from portfolio import queries
from portfolio.holdings import HoldingRow, Holdings, TotalChange, add_price_changes, scope_holdings, total_change_24h
from portfolio.icons import with_icons
from portfolio.models import Chain, Holding, NftItem, Wallet, WalletChain
from portfolio.queries import PositionRow, _quote
from portfolio.services.prices import latest_fx_rates
from portfolio.valuation import exact, to_units

NFTS_SHOWN = 12


@dataclass
class DerivedAddress:
    """One used address of an extended key (from the last sync's scan): its derivation path, confirmed
    and pending balance in whole units, the confirmed balance's value (None when unpriced; pending
    amounts are in no value, as on the wallet's total) and explorer link."""

    address: str
    path: str
    amount: Decimal
    unconfirmed: Decimal
    value: Decimal | None
    utxo_count: int
    explorer_url: str


@dataclass
class AssetLine:
    """A holding of this wallet on one chain: the Holdings row (amount, price, value, 24h change), the
    pending amount, when and at which block it was read, and the token's explorer link."""

    row: HoldingRow
    unconfirmed: Decimal | None
    height: int | None
    fetched_at: datetime | None
    token_url: str


@dataclass
class ChainSection:
    """The wallet on one chain: its sync state, lines (largest value first, spam apart), positions,
    the address's explorer link, the derived addresses of an extended key, and the chain's value."""

    wallet_chain: WalletChain
    chain: Chain
    explorer_url: str
    lines: list[AssetLine] = field(default_factory=list)
    spam: list[AssetLine] = field(default_factory=list)
    positions: list[PositionRow] = field(default_factory=list)
    derived: list[DerivedAddress] = field(default_factory=list)
    value: Decimal = Decimal(0)
    also_in: list[Wallet] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing held here and nothing to say (read fine, or never read): listed compactly."""
        return not (self.lines or self.spam or self.positions or self.also_in) and self.wallet_chain.status != WalletChain.FAILED


@dataclass
class WalletPage:
    wallet: Wallet
    holdings: Holdings
    change: TotalChange
    sections: list[ChainSection]
    explorer_links: list[tuple[Chain, str]]
    nfts: list[NftItem]
    nft_count: int

    @property
    def currency(self) -> str:
        return self.holdings.currency

    @property
    def held(self) -> list[ChainSection]:
        return [s for s in self.sections if not s.empty]

    @property
    def empty(self) -> list[ChainSection]:
        return [s for s in self.sections if s.empty]


def _derived(holding: Holding, chain: Chain, price: Decimal | None) -> list[DerivedAddress]:
    """The used addresses a Bitcoin extended-key scan stored on its holding (``details["addresses"]``)."""
    found = (holding.details or {}).get("addresses") or {}
    decimals = holding.asset.decimals
    out = []
    with exact():
        for address, info in found.items():
            amount = to_units(int(info.get("confirmed") or 0), decimals)
            pending = to_units(int(info.get("unconfirmed") or 0), decimals)
            out.append(DerivedAddress(address, str(info.get("path", "")), amount, pending,
                                      amount * price if price is not None else None,  # confirmed, as the total
                                      int(info.get("utxo_count") or 0), chain.explorer_link("address", address)))
    return out


def wallet_page(user, wallet: Wallet, currency: str, *, now: datetime | None = None) -> WalletPage:
    """Everything the wallet page shows, for the wallet's owner ``user``, money in ``currency``."""
    now = now or timezone.now()
    result = scope_holdings(user, [wallet.pk], currency)
    rate = _quote(result.currency, latest_fx_rates())[1]
    add_price_changes(result.rows, result.currency, rate, now)
    change = total_change_24h(result.rows, result.currency, rate, now)
    with_icons([r.asset for r in result.rows])
    wallet_chains = list(wallet.wallet_chains.select_related("chain", "backfill").order_by("chain__sort_order", "chain__name"))
    holdings = {h.asset_id: h for h in Holding.objects.filter(wallet_chain__wallet=wallet).select_related("asset", "wallet_chain")}
    sections = {}
    for wc in wallet_chains:
        link = wc.chain.explorer_link("address", wallet.address) if wallet.kind == Wallet.ADDRESS else ""
        sections[wc.chain_id] = ChainSection(wc, wc.chain, link)
    with exact():
        for row in result.rows:
            section, h = sections.get(row.asset.chain_id), holdings.get(row.asset.pk)
            if section is None or h is None:
                continue
            token_url = row.asset.chain.explorer_link("token", row.asset.address) if row.asset.address else ""
            line = AssetLine(row, to_units(h.unconfirmed, row.asset.decimals) if h.unconfirmed else None,
                             h.read_height, h.read_at, token_url)
            (section.spam if row.asset.is_spam else section.lines).append(line)
            section.value += row.value or 0
            if wallet.kind == Wallet.EXTENDED_KEY:
                section.derived += _derived(h, section.chain, row.price if row.value is not None else None)
        for p in result.positions:
            if p.chain.pk in sections:
                sections[p.chain.pk].positions.append(p)
                sections[p.chain.pk].value += p.value or 0
    nfts = queries.nft_items(user, [wallet.pk]).filter(collection__is_spam=False)
    return WalletPage(
        wallet=wallet, holdings=result, change=change, sections=list(sections.values()),
        explorer_links=[(s.chain, s.explorer_url) for s in sections.values() if s.explorer_url],
        nfts=list(nfts[:NFTS_SHOWN]), nft_count=nfts.count(),
    )
