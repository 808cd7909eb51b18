"""/api/v1/positions: DeFi and staking positions of a scope with their legs, net value and health factor."""

from __future__ import annotations

from ninja import Query, Router

from portfolio import queries
from portfolio.api_routers.holdings import narrow_to_wallet, scope_and_currency
from portfolio.api_routers.responses import answers
from portfolio.queries import Leg, PositionRow
from portfolio.schemas import Currency, PositionsOut

router = Router(tags=["positions"])


def _leg(leg: Leg) -> dict:
    a = leg.asset
    return {"asset_id": a.pk, "symbol": a.symbol, "role": leg.role, "decimals": a.decimals, "amount": leg.amount,
            "price": leg.price, "value": leg.value}


def position_out(p: PositionRow) -> dict:
    return {
        "id": p.id, "protocol": p.protocol, "kind": p.kind, "label": p.label, "ref": p.ref, "wallet_id": p.wallet.pk,
        "chain": p.chain.slug, "legs": [_leg(x) for x in (*p.supplied, *p.borrowed, *p.rewards)], "value": p.value,
        "unpriced_legs": p.unpriced_legs, "health_factor": p.health_factor, "height": p.height,
        "fetched_at": p.fetched_at,
    }


@router.get("", response=answers({200: PositionsOut}, lookup=True),
            summary="Your DeFi and staking positions (all wallets, a portfolio, a wallet)")
def list_positions(request, portfolio_id: int | None = None, wallet_id: int | None = None,
                   chain: str | None = Query(None, max_length=40, description="A chain slug (see /chains)."),
                   protocol: str | None = Query(None, max_length=60),
                   currency: Currency | None = Query(None, description="Default: yours.")):
    """By protocol, then wallet. Legs are valued at current prices; borrowed legs count negative."""
    wallet_ids, currency = scope_and_currency(request, portfolio_id, currency)
    wallet_ids = narrow_to_wallet(wallet_ids, wallet_id)
    rows = queries.positions(request.auth, wallet_ids, currency) if wallet_ids else []
    used = rows[0].currency if rows else currency
    rows = [r for r in rows if (not chain or r.chain.slug == chain) and (not protocol or r.protocol == protocol)]
    return {"currency": used, "count": len(rows), "items": [position_out(r) for r in rows]}
