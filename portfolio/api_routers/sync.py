"""/api/v1/sync: enqueue a refresh (a wallet, a portfolio or all wallets) and follow its progress."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from ninja import Body, Router, Status

from portfolio.api_routers.responses import ApiError, answers
from portfolio.models import Portfolio, SyncRun, Wallet
from portfolio.schemas import SyncIn, SyncRunOut
from portfolio.sync.progress import sync_status
from portfolio.sync.run import QueueUnavailable, do_request_sync

router = Router(tags=["sync"])


@router.post("", response=answers({202: SyncRunOut}, write=True, lookup=True, unavailable=True),
             summary="Refresh a wallet, a portfolio, or (empty body) all your wallets")
def request_sync(request, payload: SyncIn | None = Body(None)):
    """Records the refresh and answers at once (202) with the run to poll; a worker fans it out into one
    sync per (wallet, chain). A second request for the same scope while its run is moving returns that
    run. 503 when the task queue is unavailable (nothing is left half-made)."""
    payload = payload or SyncIn()
    wallet = portfolio = None
    if payload.wallet_id is not None:
        wallet = get_object_or_404(Wallet, pk=payload.wallet_id, owner=request.auth)
    elif payload.portfolio_id is not None:
        portfolio = get_object_or_404(Portfolio, pk=payload.portfolio_id, owner=request.auth)
    try:
        run = do_request_sync(request.auth, portfolio=portfolio, wallet=wallet)
    except QueueUnavailable as exc:  # the run is closed as failed: nothing is left waiting
        raise ApiError(503, str(exc), "unavailable", {"Retry-After": "60"}) from None
    return Status(202, sync_status(run))


@router.get("/{run_id}", response=answers({200: SyncRunOut}, lookup=True),
            summary="Progress of one of your sync runs")
def get_sync_run(request, run_id: int):
    return sync_status(get_object_or_404(SyncRun, pk=run_id, owner=request.auth))
