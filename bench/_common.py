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
