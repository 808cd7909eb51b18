"""Starting backfills: a Backfill row per wallet-chain whose chain family can read its history, and
its first step sent to the "history" queue once the row is committed."""

from __future__ import annotations

from typing import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chains.registry import adapter_class
from portfolio import jobs
from portfolio.models import Backfill, WalletChain



def has_history(family: str) -> bool:
    """Does this family's adapter read the past (``history(HistoryRequest) -> HistoryPage``)?"""
    try:
        return callable(getattr(adapter_class(family), "history", None))
    except Exception:  # noqa: BLE001 - an unknown family has no history
        return False


def start_backfills(wallet_chain_ids: Iterable[int], *, restart: bool = False) -> list[int]:
    """Create the Backfill of each wallet-chain that has none (``restart``: reset an existing one to
    run again from the start) and send its first step after commit. Wallet-chains of a family without
    history get none. Returns the Backfill ids sent."""
    if not settings.BACKFILL_ENABLED:
        return []
    wcs = WalletChain.objects.filter(pk__in=list(wallet_chain_ids)).select_related("chain")
    ids: list[int] = []
    with transaction.atomic():
        for wc in wcs:
            if not has_history(wc.chain.family):
                continue
            backfill, created = Backfill.objects.get_or_create(wallet_chain=wc, defaults={"depth_days": settings.BACKFILL_DEPTH_DAYS})
            if not created and not restart:
                continue
            if restart:
                Backfill.objects.filter(pk=backfill.pk).update(
                    status=Backfill.QUEUED, cursor={}, days_done=0, days_total=0, complete_from=None, reason="",
                    requests=0, started_at=None, finished_at=None, updated_at=timezone.now())
            ids.append(backfill.pk)
        for pk in ids:
            transaction.on_commit(lambda pk=pk: send_step(pk))
    return ids


def send_step(backfill_id: int) -> None:
    """Send one step of a backfill to the "history" queue."""
    jobs.enqueue(jobs.BACKFILL_STEP, backfill_id, queue=jobs.HISTORY_QUEUE)
