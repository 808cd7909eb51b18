"""/api/v1/chains: the chains wallets can be tracked on (enabled by an administrator)."""

from __future__ import annotations

from ninja import Router

from portfolio.api_routers.responses import answers
from portfolio.models import Chain
from portfolio.schemas import ChainOut

router = Router(tags=["chains"])


@router.get("", response=answers({200: list[ChainOut]}), summary="Supported chains")
def list_chains(request):
    return list(Chain.objects.filter(enabled=True).order_by("sort_order", "name"))
