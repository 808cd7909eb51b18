"""Helpers every benchmark uses: a timer, interleaved rounds, the load average, and the results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# 1-minute load averages sampled during this run (``sample_load``; ``interleaved`` takes one per round);
# write_results stores their spread, so every results file says how busy the machine was.
LOADS: list[float] = []


def sample_load() -> float:
    LOADS.append(os.getloadavg()[0])
    return LOADS[-1]


def interleaved(cases: Mapping[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Wall seconds of every case in each of ``rounds`` rounds: each round runs every case once, the
    order rotated by one per round, so the machine's load falls on baseline and subject alike."""
    names = list(cases)
    times: dict[str, list[float]] = {name: [] for name in names}
    sample_load()
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            cases[name]()
            times[name].append(time.perf_counter() - start)
        sample_load()
    return times


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "os": platform.platform()}


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """``with timer() as t: ...`` then ``t["s"]`` is the wall time in seconds."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["s"] = time.perf_counter() - start


def write_results(name: str, figures: dict[str, tuple[float, str]], sizes: Mapping[str, Any] | None = None) -> Path:
    """Print and save ``figures`` (name -> (value, unit)) to bench/results/<name>.json, with ``sizes``
    (what was measured: wallets, rows, rounds...) and the load average: now, and the spread of the
    samples taken during the run (``sample_load``)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    now = os.getloadavg()
    samples = sorted(LOADS) or [now[0]]
    data = {
        "name": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "load_average": {"at_end": {"1m": now[0], "5m": now[1], "15m": now[2]},
                         "1m_during_run": {"min": samples[0], "median": statistics.median(samples), "max": samples[-1],
                                           "samples": len(LOADS)}},
        "sizes": dict(sizes or {}),
        "figures": {k: {"value": v, "unit": u} for k, (v, u) in figures.items()},
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    width = max(len(k) for k in figures)
    print(f"== {name} ({data['machine']['cpu']}, {data['machine']['cores']} cores)")
    for k, (v, u) in figures.items():
        print(f"  {k:<{width}}  {v:>14,.4g} {u}")
    print(f"  sizes: {data['sizes']}")
    print(f"  load average (1 min) during the run: {samples[0]:.2f} / {statistics.median(samples):.2f} / {samples[-1]:.2f}"
          f" (min / median / max of {len(LOADS)} samples); at the end {now[0]:.2f} {now[1]:.2f} {now[2]:.2f}")
    return path


def add_spread(figures: dict[str, tuple[float, str]], name: str, values: list[float], unit: str) -> None:
    """``<name> min``, ``<name> median`` and ``<name> max`` of ``values`` (one per round) into ``figures``."""
    ordered = sorted(values)
    figures[f"{name} min"] = (ordered[0], unit)
    figures[f"{name} median"] = (statistics.median(ordered), unit)
    figures[f"{name} max"] = (ordered[-1], unit)


# --------------------------------------------------------------------------- whole pages through the test client


def configure_database(name: str, rebuild: bool) -> str:
    """Point DATABASE_URL at a bench's own database before Django starts (BENCH_DATABASE_URL's, else
    var/bench/<name>-sqlite.sqlite3, deleted first with ``rebuild``); returns the vendor name."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        os.environ["DATABASE_URL"] = url
        return "postgresql"
    path = ROOT / "var" / "bench" / f"{name}-sqlite.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    if rebuild:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    return "sqlite"


def client_environment() -> None:
    """After django.setup(): the test client's environment (ALLOWED_HOSTS=testserver), and static URLs
    without a collectstatic manifest (the page's cost, not the static pipeline's)."""
    from django.conf import settings
    from django.test.utils import override_settings, setup_test_environment

    setup_test_environment()
    override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()


def time_pages(todo: list[tuple[str, str, str, str]], rounds: int) -> tuple[dict[tuple[str, str], dict], dict, float]:
    """(table, case, user name, url) cases through a signed-in test client per user: a first view (it
    may build a cache row), the queries and bytes of a second (the steady state), then ``rounds`` rounds
    each requesting every case once in a rotated order (the machine's load hits all cases alike).
    Returns the cases' figures, the clients and the load average before the rounds."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    clients: dict[str, Client] = {}
    info: dict[tuple[str, str], dict] = {}
    for table, label, username, url in todo:
        if username not in clients:
            clients[username] = Client()
            clients[username].force_login(get_user_model().objects.get(username=username))
        clients[username].get(url)
        with CaptureQueriesContext(connection) as ctx:
            response = clients[username].get(url)
        assert response.status_code == 200, (url, response.status_code)
        info[(table, label)] = {"queries": len(ctx.captured_queries), "bytes": len(response.content), "times": [], "cpu": []}
    load_before = os.getloadavg()[0]
    for r in range(rounds):
        sample_load()
        for table, label, username, url in todo[r % len(todo):] + todo[:r % len(todo)]:
            start, cpu = time.perf_counter(), time.process_time()
            clients[username].get(url)
            info[(table, label)]["times"].append(time.perf_counter() - start)
            info[(table, label)]["cpu"].append(time.process_time() - cpu)
    return info, clients, load_before


def page_header(vendor: str, rounds: int, load_before: float) -> dict[str, tuple[float, str]]:
    """The first figures of a pages bench: the database, the rounds, the load average before and now."""
    return {"database": (1.0 if vendor == "postgresql" else 0.0, "1 = PostgreSQL, 0 = SQLite"),
            "rounds": (rounds, "rounds"), "load_average_before": (load_before, "load"),
            "load_average_after": (os.getloadavg()[0], "load")}


def page_figures(info: dict[tuple[str, str], dict], figures: dict[str, tuple[float, str]]) -> None:
    """Per case of ``time_pages``: min/median/max ms, the median CPU ms of this process (the SQL too on
    SQLite; what the load inflates least), queries, bytes, and the median of the per-round ratios to
    its table's first case (the same moment's load on both)."""
    baselines: dict[str, tuple[str, list[float]]] = {}
    for (table, label), d in info.items():
        ms = sorted(t * 1000 for t in d["times"])
        base_label, base_times = baselines.setdefault(table, (label, d["times"]))
        figures[f"{table}_{label}_min_ms"] = (ms[0], "ms")
        figures[f"{table}_{label}_median_ms"] = (statistics.median(ms), "ms")
        figures[f"{table}_{label}_max_ms"] = (ms[-1], "ms")
        figures[f"{table}_{label}_cpu_median_ms"] = (statistics.median(t * 1000 for t in d["cpu"]), "ms")
        figures[f"{table}_{label}_queries"] = (d["queries"], "queries")
        figures[f"{table}_{label}_bytes"] = (d["bytes"], "bytes")
        if label != base_label:
            figures[f"{table}_{label}_vs_{base_label}_median"] = (statistics.median(t / b for t, b in zip(d["times"], base_times)), "x")
