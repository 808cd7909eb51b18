"""Sending Celery tasks by name, so that services never import ``portfolio.tasks`` (which imports them).

The names are the tasks' registered names; ``tests/portfolio/test_structure.py`` checks each one is a
task the app knows, so a renamed task fails a test instead of a worker."""

from __future__ import annotations

from typing import Any

from celery import current_app  # the project's app (portfolio/celery.py) once Django has started

SYNC_WALLET_CHAIN = "portfolio.tasks.sync_wallet_chain_task"
SYNC_WALLET_CHAINS = "portfolio.tasks.sync_wallet_chains_task"
FANOUT_DUE = "portfolio.tasks.fanout_due_task"
SNAPSHOT = "portfolio.tasks.snapshot_task"
MATERIALISE_SCOPES = "portfolio.tasks.materialise_scopes_task"
DOWNSAMPLE = "portfolio.tasks.downsample_task"
REFRESH_PRICES = "portfolio.tasks.refresh_prices_task"
EXPAND_RUN = "portfolio.tasks.expand_run_task"
REAP_STALLED = "portfolio.tasks.reap_stalled_task"
FETCH_ICONS = "portfolio.tasks.fetch_icons_task"
BACKFILL_STEP = "portfolio.tasks.backfill_step_task"
PRUNE_RUNS = "portfolio.tasks.prune_runs_task"
HISTORY_QUEUE = "history"  # backfills' own queue (portfolio/celery.py declares it)

ALL = (SYNC_WALLET_CHAIN, SYNC_WALLET_CHAINS, FANOUT_DUE, SNAPSHOT, MATERIALISE_SCOPES, DOWNSAMPLE, REFRESH_PRICES,
       EXPAND_RUN, REAP_STALLED, FETCH_ICONS, BACKFILL_STEP, PRUNE_RUNS)


def enqueue(name: str, *args: Any, queue: str = "default") -> None:
    """Send task ``name`` with ``args`` to ``queue``. Looked up in the app's registry (not sent as a bare
    name) so eager mode, annotations and time limits apply as for a direct ``apply_async``.

    Raises whatever the broker raises when it cannot take the message."""
    if name not in current_app.tasks:  # a web process imports the task modules only when first needed
        current_app.loader.import_default_modules()
    current_app.tasks[name].apply_async(args=args, queue=queue)
