"""Progress of a sync run, for the status fragment, the JSON view and the API: one entry per (wallet, chain)."""

from __future__ import annotations

from typing import Any

from portfolio.models import SyncRun, SyncRunItem
from portfolio.sync.run import FINISHED

ITEM_STATE = {SyncRun.QUEUED: "queued", SyncRun.RUNNING: "running", SyncRun.OK: "done", SyncRun.PARTIAL: "done", SyncRun.FAILED: "failed"}


def sync_status(run: SyncRun) -> dict[str, Any]:
    """Progress of a run for the status fragment and JSON: one entry per (wallet, chain)."""
    items = (
        SyncRunItem.objects.filter(run=run)
        .select_related("wallet_chain__wallet", "wallet_chain__chain")
        .order_by("wallet_chain__chain__sort_order", "wallet_chain__wallet__label", "id")
    )
    rows = []
    for i in items:
        wc = i.wallet_chain
        rows.append({
            "id": i.id,
            "wallet_id": wc.wallet_id,
            "wallet": str(wc.wallet),
            "chain": wc.chain.name,
            "chain_slug": wc.chain.slug,
            "state": ITEM_STATE.get(i.status, i.status),
            "status": i.status,
            "error": i.error,
            "endpoint": i.endpoint,
            "height": i.height,
            "counts": i.counts,
            "attempts": i.attempts,
            "last_ok_at": wc.last_ok_at.isoformat() if wc.last_ok_at else None,
            "finished_at": i.finished_at.isoformat() if i.finished_at else None,
        })
    done = sum(r["state"] in ("done", "failed") for r in rows)
    return {
        "id": run.id,
        "status": run.status,
        "finished": run.status in FINISHED,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "error": run.error,
        "total": max(len(rows), run.planned or 0),  # a scheduled run's items appear as its syncs end
        "done": done,
        "items": rows,
    }
