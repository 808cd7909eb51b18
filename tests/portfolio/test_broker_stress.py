"""The default broker under load: 5,000 tasks from 4 producer processes through 2 workers with beat ticking."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from tests.fixtures.celery import CELERY_BIN, ROOT, process_env, wait_for

TASKS, PRODUCERS = 5000, 4
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]
BAD_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Unrecoverable|Traceback")


def test_no_task_is_lost_or_run_twice_and_no_worker_crashes(start_worker, celery_broker, tmp_path):
    stress = tmp_path / "stress"
    (stress / "runs").mkdir(parents=True)
    env = {"STRESS_DIR": str(stress)}
    workers = [start_worker(concurrency=4, queues="default", env=env, args=("-I", "tests.fixtures.stress_tasks"), wait=False)
               for _ in range(2)]
    for w in workers:
        w.wait_ready()
    beat_log = tmp_path / "beat.log"
    with open(beat_log, "wb") as out:
        beat = subprocess.Popen(
            [str(CELERY_BIN), "-A", "tests.fixtures.stress_tasks", "beat", "-S", "celery.beat:PersistentScheduler",
             "-s", str(tmp_path / "beat-schedule"), "--loglevel", "INFO"],
            cwd=ROOT, env=process_env(celery_broker, env), stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "Sending due task" in beat_log.read_text(), timeout_s=60, what="beat's first tick")
        per = TASKS // PRODUCERS
        started = time.monotonic()
        producers = [subprocess.Popen([sys.executable, "-m", "tests.fixtures.stress_tasks", str(i * per), str(per)], cwd=ROOT,
                                      env=process_env(celery_broker, env)) for i in range(PRODUCERS)]
        assert [p.wait(timeout=300) for p in producers] == [0] * PRODUCERS

        def effects() -> list[str]:
            path = stress / "effects"
            return path.read_text().split() if path.exists() else []

        wait_for(lambda: len(effects()) >= TASKS, timeout_s=400, what=f"{TASKS} task effects", worker=workers[0])
        elapsed = time.monotonic() - started
        time.sleep(1.5)  # a late duplicate would show up now
        done = effects()
        assert sorted(map(int, done)) == list(range(TASKS)), "every task ran exactly once past its guard"
        deliveries = (stress / "deliveries").read_text().split()
        sent = beat_log.read_text().count("Sending due task stress-tick")
        assert sent >= elapsed * 0.7, f"beat sent {sent} ticks in {elapsed:.0f}s"

        def ticks() -> int:  # ticks queue behind the backlog; every one sent must run
            path = stress / "ticks"
            return len(path.read_text().split()) if path.exists() else 0

        wait_for(lambda: ticks() >= sent, timeout_s=60, what=f"{sent} beat ticks run", worker=workers[0])
        for w in workers:
            assert w.process.poll() is None, f"worker died:\n{w.log()[-3000:]}"
            bad = [line for line in w.log().splitlines() if BAD_LINE.search(line)]
            assert not bad, bad[:5]
        print(f"{TASKS} tasks in {elapsed:.1f}s, {len(deliveries) - TASKS} redeliveries, {sent} beat ticks")
    finally:
        beat.terminate()
        beat.wait(timeout=10)
