"""Bounded work and graceful stop with a real worker: time limits per queue, SIGTERM mid-task loses nothing."""

from __future__ import annotations

import re
import signal
import time

import pytest

from tests.fixtures.celery import wait_for
from tests.fixtures.stress_tasks import slow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]
BAD_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback")


def _events(stress) -> list[str]:
    path = stress / "slow"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def stress(tmp_path):
    (tmp_path / "stress" / "runs").mkdir(parents=True)
    return tmp_path / "stress"


def test_a_stop_during_a_task_hands_it_back_in_bounded_time_and_loses_nothing(start_worker, stress):
    env = {"STRESS_DIR": str(stress), "WORKER_STOP_TIMEOUT_SECONDS": "2", "REMAP_SIGTERM": "SIGQUIT"}
    worker = start_worker(concurrency=1, queues="default", env=env, args=("-I", "tests.fixtures.stress_tasks"))
    slow.apply_async((1, 120))
    wait_for(lambda: "started 1" in _events(stress), timeout_s=30, what="the task to start", worker=worker)

    stopped_at = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    try:
        worker.process.wait(timeout=30)
    except Exception:
        raise AssertionError(worker.log()[-4000:]) from None
    took = time.monotonic() - stopped_at
    # the 2 s of grace, then ~6 s of Celery's cold shutdown (its loop's 2 s poll, the pool's join)
    assert took < 2 + 10, f"the worker took {took:.1f}s to stop\n{worker.log()[-3000:]}"
    assert "finished 1" not in _events(stress)
    bad = [line for line in worker.log().splitlines() if BAD_LINE.search(line)]
    assert not bad, bad[:5]

    # The task was handed back: the next worker runs it to the end.
    second = start_worker(concurrency=1, queues="default", env=env, args=("-I", "tests.fixtures.stress_tasks"))
    wait_for(lambda: "finished 1" in _events(stress), timeout_s=60, what="the handed-back task to finish", worker=second)


def test_a_task_past_its_queues_soft_limit_is_stopped(start_worker, stress, settings):
    settings.CELERY_QUEUE_TIME_LIMITS = {**settings.CELERY_QUEUE_TIME_LIMITS, "default": (1, 30)}
    env = {"STRESS_DIR": str(stress)}
    worker = start_worker(concurrency=1, queues="default", env=env, args=("-I", "tests.fixtures.stress_tasks"))
    started = time.monotonic()
    slow.apply_async((2, 120))
    wait_for(lambda: "soft-limited 2" in _events(stress), timeout_s=30, what="the soft time limit", worker=worker)
    assert time.monotonic() - started < 20
    assert "finished 2" not in _events(stress)
