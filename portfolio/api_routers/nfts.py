"""/api/v1/nfts: the NFTs in a scope's wallets, in cursor pages (collection name, collection, token id)."""

from __future__ import annotations

from django.db.models import Q
from ninja import Query, Router

from portfolio import queries
from portfolio.api_routers.holdings import narrow_to_wallet
from portfolio.api_routers.responses import MAX_PAGE, answers, decode_cursor, encode_cursor
from portfolio.models import NftItem
from portfolio.schemas import NftPageOut

router = Router(tags=["nfts"])

ORDER = ("collection__name", "collection_id", "token_id", "pk")


def _after(key: list) -> Q:
    """Rows strictly after ``key`` in ORDER (keyset paging)."""
    q = Q()
    for i in reversed(range(len(ORDER))):
        ties = {ORDER[j]: key[j] for j in range(i)}
        step = Q(**ties, **{f"{ORDER[i]}__gt": key[i]})
        q = step if i == len(ORDER) - 1 else step | q
    return q


def nft_out(item: NftItem) -> dict:
    c = item.collection
    return {
        "id": item.pk, "wallet_id": item.wallet_chain.wallet_id, "chain": item.wallet_chain.chain.slug,
        "collection_id": c.pk, "collection": c.name or c.symbol, "collection_address": c.address,
        "standard": c.standard, "token_id": item.token_id, "amount_raw": item.amount, "name": item.name,
        "description": item.description, "image_url": item.image_url, "metadata_url": item.metadata_url,
        "is_spam": c.is_spam, "height": item.height, "fetched_at": item.fetched_at,
    }


@router.get("", response=answers({200: NftPageOut}, lookup=True), summary="Your NFTs (all wallets, a portfolio, a wallet)")
def list_nfts(request, portfolio_id: int | None = None, wallet_id: int | None = None,
              chain: str | None = Query(None, max_length=40, description="A chain slug (see /chains)."),
              include_spam: bool = Query(False, description="Include collections marked as spam."),
              limit: int = Query(100, ge=1, le=MAX_PAGE),
              cursor: str | None = Query(None, max_length=2000, description="next_cursor of the previous page.")):
    wallet_ids = narrow_to_wallet(queries.scope_wallet_ids(request.auth, portfolio_id), wallet_id)
    qs = queries.nft_items(request.auth, wallet_ids).order_by(*ORDER)
    if chain:
        qs = qs.filter(wallet_chain__chain__slug=chain)
    if not include_spam:
        qs = qs.filter(collection__is_spam=False)
    count = qs.count()
    if cursor:
        qs = qs.filter(_after(decode_cursor(cursor, (str, int, str, int))))
    items = list(qs[: limit + 1])
    page = items[:limit]
    last = page[-1] if page else None
    next_cursor = (encode_cursor([last.collection.name, last.collection_id, last.token_id, last.pk])
                   if len(items) > limit and last else None)
    return {"count": count, "items": [nft_out(i) for i in page], "next_cursor": next_cursor}
