"""Embedded broker candidates under concurrent producers and consumers: throughput, lost and doubled messages.

Each round: 4 producer processes publish BENCH_BROKER_MESSAGES (300) in total to one queue while 2
consumer processes take and acknowledge them; a consumer that raises counts as a crash. Transports,
interleaved per round, the order rotated, over BENCH_ROUNDS (7) rounds:
- ``ours``: portfolio.broker (file-system transport with atomic writes and in-flight claims), the default;
- ``kombu-fs``: kombu's stock file-system transport (what the project used before issue 15);
- ``sqlalchemy``: kombu's SQLAlchemy transport on a SQLite file (SQLAlchemy is already installed, for
  bitcoinlib), polled every 0.05 s like the other two.
Writes bench/results/broker_transports.json.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kombu.transport import sqlalchemy as kombu_sqlalchemy  # noqa: E402

from bench._common import add_spread, sample_load, write_results  # noqa: E402

MESSAGES = int(os.environ.get("BENCH_BROKER_MESSAGES", "300"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
PRODUCERS, CONSUMERS = 4, 2


class PolledSqlAlchemy(kombu_sqlalchemy.Transport):
    """kombu's SQLAlchemy transport polled as often as the file-system ones here (its default is every
    second, which caps its throughput at the poll rather than at the database)."""

    polling_interval = 0.05


def connection_args(kind: str, folder: str) -> dict:
    if kind == "sqlalchemy":
        return {"hostname": f"sqlite:///{folder}/broker.sqlite3", "transport": PolledSqlAlchemy}
    opts = {"data_folder_in": f"{folder}/queue", "data_folder_out": f"{folder}/queue",
            "processed_folder": f"{folder}/processed", "control_folder": f"{folder}/control",
            "store_processed": False, "polling_interval": 0.05}
    for sub in ("queue", "processed", "control"):
        os.makedirs(f"{folder}/{sub}", exist_ok=True)
    transport = "portfolio.broker:Transport" if kind == "ours" else "filesystem"
    return {"hostname": "filesystem://", "transport": transport, "transport_options": opts}


def produce(kind: str, folder: str, first: int, count: int) -> None:
    from kombu import Connection

    with Connection(**connection_args(kind, folder)) as conn:
        q = conn.SimpleQueue("bench")
        for i in range(first, first + count):
            q.put({"n": i})
        q.close()


def consume(kind: str, folder: str, out: mp.Queue, deadline: float) -> None:
    from kombu import Connection

    seen: list[int] = []
    error = ""
    try:
        with Connection(**connection_args(kind, folder)) as conn:
            q = conn.SimpleQueue("bench")
            while time.time() < deadline:
                try:
                    msg = q.get(timeout=0.2)
                except queue_mod.Empty:
                    if os.path.exists(f"{folder}/done") and q.qsize() == 0:
                        break
                    continue
                seen.append(msg.payload["n"])
                msg.ack()
    except Exception as exc:  # noqa: BLE001 - a crash is what this bench counts
        error = f"{type(exc).__name__}: {exc}"[:200]
    out.put((seen, error))


def one_round(kind: str) -> dict:
    folder = tempfile.mkdtemp(prefix=f"broker-{kind}-")
    try:
        if kind == "sqlalchemy":
            produce(kind, folder, -1, 0)  # create the tables once, before the racing starts
        out: mp.Queue = mp.Queue()
        start = time.perf_counter()
        deadline = time.time() + 120
        consumers = [mp.Process(target=consume, args=(kind, folder, out, deadline)) for _ in range(CONSUMERS)]
        per = MESSAGES // PRODUCERS
        producers = [mp.Process(target=produce, args=(kind, folder, i * per, per)) for i in range(PRODUCERS)]
        for p in consumers + producers:
            p.start()
        for p in producers:
            p.join()
        Path(folder, "done").touch()
        results = [out.get(timeout=180) for _ in consumers]
        for p in consumers:
            p.join()
        elapsed = time.perf_counter() - start
        seen = [n for s, _ in results for n in s]
        errors = [e for _, e in results if e]
        return {"seconds": elapsed, "msgs_per_s": len(set(seen)) / elapsed, "lost": MESSAGES - len(set(seen)),
                "doubled": len(seen) - len(set(seen)), "crashes": len(errors), "errors": errors[:2]}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    import kombu.transport.filesystem  # noqa: F401 - imported once before the forks, not timed per process

    import portfolio.broker  # noqa: F401
    kinds = ["ours", "kombu-fs", "sqlalchemy"]
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    loads = [sample_load()]
    for r in range(ROUNDS):
        for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:  # interleaved, the order rotated: load hits all alike
            res = one_round(kind)
            runs[kind].append(res)
            print(f"round {r + 1} {kind:10s} {res['msgs_per_s']:8.0f} msg/s lost={res['lost']} doubled={res['doubled']} crashes={res['crashes']} {res['errors'][:1]}")
        loads.append(sample_load())
    figures: dict[str, tuple[float, str]] = {"rounds": (ROUNDS, "rounds"), "messages_per_round": (MESSAGES, "messages")}
    add_spread(figures, "load_average_1m", loads, "load")
    for kind, rs in runs.items():
        add_spread(figures, kind, [x["msgs_per_s"] for x in rs], "msg/s")
        for what in ("lost", "doubled", "crashes"):
            figures[f"{kind} {what}"] = (sum(x[what] for x in rs), f"of {MESSAGES * ROUNDS} messages" if what != "crashes" else "consumers")
    write_results("broker_transports", figures, sizes={"rounds": ROUNDS, "messages_per_round": MESSAGES,
                                                       "producers": PRODUCERS, "consumers": CONSUMERS})

if __name__ == "__main__":
    main()
