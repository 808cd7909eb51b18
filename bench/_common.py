"""Helpers every benchmark uses: a timer, the machine description, and the results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


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


def write_results(name: str, figures: dict[str, tuple[float, str]]) -> Path:
    """Print and save ``figures`` (name -> (value, unit)) to bench/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {
        "name": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "figures": {k: {"value": v, "unit": u} for k, (v, u) in figures.items()},
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    width = max(len(k) for k in figures)
    print(f"== {name} ({data['machine']['cpu']}, {data['machine']['cores']} cores)")
    for k, (v, u) in figures.items():
        print(f"  {k:<{width}}  {v:>14,.4g} {u}")
    return path


def add_spread(figures: dict[str, tuple[float, str]], name: str, values: list[float], unit: str) -> None:
    """``<name> min``, ``<name> median`` and ``<name> max`` of ``values`` (one per round) into ``figures``."""
    ordered = sorted(values)
    figures[f"{name} min"] = (ordered[0], unit)
    figures[f"{name} median"] = (statistics.median(ordered), unit)
    figures[f"{name} max"] = (ordered[-1], unit)
