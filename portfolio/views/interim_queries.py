"""Interim reads for the pages until valuation's portfolio/queries.py lands: same function names and
shapes as the contract in TEAM.md (current balances at the latest prices; no value history yet).
Delete this module once portfolio.queries provides these functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from portfolio.models import Asset, Chain, Holding, NftItem, Position, Wallet
from portfolio.valuation import ZERO, allocation, share_of, to_units


@dataclass
class WalletAmount:
    wallet: Wallet
    chain: Chain
    amount: Decimal
    height: int | None
    fetched_at: datetime | None


@dataclass
class HoldingRow:
    asset: Asset
    amount: Decimal
    price: Decimal | None
    price_source: str
    value: Decimal | None
    change_24h: Decimal | None
    share: Decimal | None
    wallets: list[WalletAmount] = field(default_factory=list)

    @property
    def unpriced(self) -> bool:
        return self.price is None


@dataclass
class Summary:
    currency: str
    net_worth: Decimal
    unpriced_count: int
    change: Decimal | None
    pct: Decimal | None
    twr: Decimal | None
    profit: Decimal | None
    net_flows: Decimal | None
    series: list
    allocation: dict


def scope_wallet_ids(user, portfolio_id=None) -> list[int]:
    wallets = Wallet.objects.filter(owner=user)
    if portfolio_id is not None:
        wallets = wallets.filter(portfolios__pk=portfolio_id, portfolios__owner=user)
    return list(wallets.order_by("pk").values_list("pk", flat=True))


def _fx(currency: str) -> Decimal | None:
    if currency == "USD":
        return Decimal(1)
    from portfolio.services.prices import latest_fx_rates

    return latest_fx_rates().get(currency)


def holdings_rows(user, wallet_ids, currency) -> list[HoldingRow]:
    from portfolio.services.prices import latest_prices

    holdings = (
        Holding.objects.filter(wallet_chain__wallet__owner=user, wallet_chain__wallet_id__in=wallet_ids)
        .exclude(asset__kind=Asset.NFT_COLLECTION)
        .select_related("asset", "asset__chain", "wallet_chain__wallet", "wallet_chain__chain")
    )
    by_asset: dict[int, HoldingRow] = {}
    holdings = list(holdings)
    prices = latest_prices({h.asset_id for h in holdings})
    rate = _fx(currency)
    for h in holdings:
        units = to_units(h.amount, h.asset.decimals)
        row = by_asset.get(h.asset_id)
        if row is None:
            p = prices.get(h.asset_id)
            price = p.usd * rate if p is not None and rate is not None else None
            row = by_asset[h.asset_id] = HoldingRow(h.asset, ZERO, price, p.source if p else "", None, None, None)
        row.amount += units
        row.wallets.append(WalletAmount(h.wallet_chain.wallet, h.wallet_chain.chain, units, h.height, h.fetched_at))
    rows = [r for r in by_asset.values() if r.amount != 0]
    for r in rows:
        r.value = r.amount * r.price if r.price is not None else None
    total = sum((r.value for r in rows if r.value is not None), ZERO)
    for r in rows:
        r.share = share_of(r.value, total)
    return rows


def dashboard_summary(user, wallet_ids, currency, range_key) -> Summary:
    rows = holdings_rows(user, wallet_ids, currency)
    net = sum((r.value for r in rows if r.value is not None), ZERO)
    per_wallet = []
    for r in rows:
        if r.price is None:
            continue
        for w in r.wallets:
            per_wallet.append((w, w.amount * r.price, r))
    alloc = {
        "asset": allocation((r.asset.symbol, r.asset.symbol, r.value) for r in rows),
        "chain": allocation((r.asset.chain_id, r.asset.chain.name, r.value) for r in rows),
        "wallet": allocation((w.wallet.pk, str(w.wallet), v) for w, v, _ in per_wallet),
        "kind": allocation((r.asset.kind, r.asset.get_kind_display(), r.value) for r in rows),
    }
    return Summary(currency, net, sum(1 for r in rows if r.price is None), None, None, None, None, None, [], alloc)


def nft_items(user, wallet_ids):
    return (
        NftItem.objects.filter(wallet_chain__wallet__owner=user, wallet_chain__wallet_id__in=wallet_ids)
        .select_related("collection", "wallet_chain__wallet", "wallet_chain__chain")
        .order_by("collection__name", "token_id")
    )


@dataclass
class PositionRow:
    protocol: str
    kind: str
    label: str
    wallet: Wallet
    chain: Chain
    supplied: list
    borrowed: list
    rewards: list
    value: Decimal | None
    health_factor: Decimal | None
    height: int | None
    fetched_at: datetime | None


@dataclass
class Leg:
    asset: Asset
    amount: Decimal


def positions(user, wallet_ids, currency) -> list[PositionRow]:
    out = []
    qs = (
        Position.objects.filter(wallet_chain__wallet__owner=user, wallet_chain__wallet_id__in=wallet_ids)
        .select_related("wallet_chain__wallet", "wallet_chain__chain")
        .prefetch_related("legs__asset")
    )
    for p in qs:
        groups = {"supplied": [], "borrowed": [], "rewards": []}
        for leg in p.legs.all():
            key = "borrowed" if leg.role == "borrowed" else ("rewards" if leg.role in ("reward", "pending") else "supplied")
            groups[key].append(Leg(leg.asset, to_units(leg.amount, leg.asset.decimals)))
        out.append(
            PositionRow(p.protocol, p.kind, p.label, p.wallet_chain.wallet, p.wallet_chain.chain, groups["supplied"],
                        groups["borrowed"], groups["rewards"], None, p.health_factor, p.height, p.fetched_at)
        )
    return out
