"""Benchmark: EVM wallets x 100 tokens through the whole sync pipeline (fan-out, 2 Celery worker
processes, database writes) against the adapter alone (no Celery, no database) on the same work,
interleaved round by round: the first sync (nothing stored) and the steady-state sync (nothing changed
since the last one) separately, at 1,000 and 4,000 wallets.

Setup is cheap: one 13-byte token contract (``balanceOf(owner)`` returns ``owner XOR token``) is put at
100 addresses with ``anvil_setCode``; the wallets are derived addresses nobody holds a key for. Each
size runs in its own process with a throw-away database: a SQLite file and the file-system broker, or
with DATABASE_URL on PostgreSQL a database ``<name>_bench`` and with CELERY_BROKER_URL on Redis its
database 14 under the key prefix ``bench-sync-pipeline-<pid>-``. The file's figures of other backends and
sizes are kept, so one run per backend (or size) fills the table. Env: BENCH_SIZES (default 250,1000; the
growth table of bench/RESULTS.md is BENCH_SIZES=250,1000,4000, about 4x the time of 1,000 for 4,000),
BENCH_ROUNDS (default 15: the steady-state sync, the figure of issue #14; a single median of 7 rounds
moved by +-0.1 between runs on this shared 2-core machine), BENCH_FIRST_ROUNDS (default 3:
the first sync, measured in the first rounds only; it stores every holding and costs 2-3x a steady
round), BENCH_TOKENS, BENCH_WORKERS. The script's own time per size (setup, warm-up, rounds) is printed
and kept as figures.

Besides wall seconds, each side's CPU seconds are summed from /proc (Linux): the pipeline's worker
processes (and the Celery consumer), the fan-out in this process and anvil, against the adapter's pool
processes and anvil. On a machine other jobs share, the CPU ratio is the steadier figure: wall time
under contention is roughly CPU time divided by the share the scheduler gives.

After the rounds, one group's steady-state sync is run in this process with every statement counted:
``steady_group_*`` as a worker runs a group the fan-out claimed (WalletChains queued, a queued
scheduled run whose item the sync writes and whose end it records), ``steady_direct_group_*`` as a
direct sync of idle WalletChains without a run (marked running first, no run to start or finish).
"""


from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import RESULTS, ROOT, timer, write_results  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "250,1000").split(",")]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 15))
FIRST_ROUNDS = min(ROUNDS, int(os.environ.get("BENCH_FIRST_ROUNDS", 3)))
TOKENS = int(os.environ.get("BENCH_TOKENS", 100))
WORKERS = int(os.environ.get("BENCH_WORKERS", 2))
GROUP = 250  # wallets per fetch: the fan-out's EVM group size (SYNC_EVM_GROUP_SIZE)
# PUSH1 4 CALLDATALOAD ADDRESS XOR PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN: every call returns arg0 ^ self.
TOKEN_RUNTIME = "0x600435301860005260206000f3"


def _address(tag: str) -> str:
    from eth_utils import keccak, to_checksum_address

    return to_checksum_address(keccak(tag.encode())[-20:])


def _prepare_environment(tmp: Path) -> dict[str, str]:
    """Point this process (and the workers) at a throw-away database and broker."""
    env = {"VAR_DIR": str(tmp), "DJANGO_SETTINGS_MODULE": "portfolio.settings", "CELERY_SKIP_CHECKS": "1",
           "LOG_LEVEL": os.environ.get("LOG_LEVEL", "warning")}
    db = os.environ.get("DATABASE_URL", "")
    if db.startswith(("postgres://", "postgresql://")):
        import psycopg

        parts = urlsplit(db)
        name = parts.path.lstrip("/") + "_bench"
        admin = urlunsplit((parts.scheme.replace("postgresql", "postgres"), parts.netloc, "/postgres", "", ""))
        with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))
    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if broker.startswith("redis://"):
        parts = urlsplit(broker)
        env["CELERY_BROKER_URL"] = urlunsplit((parts.scheme, parts.netloc, "/14", "", ""))
        env["CELERY_REDIS_KEY_PREFIX"] = f"bench-sync-pipeline-{os.getpid()}-"  # apart from any other user of this Redis
    else:
        env["CELERY_BROKER_URL"] = "filesystem://"
    os.environ.update(env)
    return env


def _set_up_chain(url: str, tokens: list[str]) -> None:
    """The token code at every token address and a block on top, in one JSON-RPC batch."""
    from devnet.common import rpc_batch

    rpc_batch(url, [("anvil_setCode", [token, TOKEN_RUNTIME]) for token in tokens] + [("evm_mine", [])])


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` and all their descendants so far (0 off Linux)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, todo, seen = 0.0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in os.listdir(f"/proc/{pid}/task"):
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def _own_cpu_seconds() -> float:
    """This process's CPU seconds (all its threads), without its children."""
    times = os.times()
    return times.user + times.system


def _adapter_fetch(args):
    url, group, tokens, cursors = args
    from chains.base import NATIVE, AssetRef, ChainConfig, EndpointConfig, FetchRequest, WalletRef
    from chains.registry import adapter_for

    config = ChainConfig(slug="bench-anvil", family="evm", network="devnet", chain_id=31337, native_symbol="ETH", log_scan_start=0)
    assets = [AssetRef(kind=NATIVE, address=None, symbol="ETH", name="Ether", decimals=18)]
    assets += [AssetRef(kind="fungible", address=t, symbol=f"T{i}", name=f"Token {i}", decimals=18, standard="erc20") for i, t in enumerate(tokens)]
    adapter = adapter_for(config, [EndpointConfig(url=url, timeout_s=60)])
    result = adapter.fetch(FetchRequest(wallets=tuple(WalletRef(w) for w in group), known_assets=tuple(assets), cursors=cursors))
    return result.request_count, len(result.balances)


def _adapter_alone(pool, url: str, wallets: list[str], tokens: list[str], cursors: dict) -> dict[str, float]:
    """The baseline: the same fetches (same groups, same log-scan cursors as the pipeline's next sync)
    in a pool of as many long-lived processes as the pipeline has workers."""
    groups = [(url, wallets[i:i + GROUP], tokens, {w: cursors[w] for w in wallets[i:i + GROUP] if w in cursors})
              for i in range(0, len(wallets), GROUP)]
    with timer() as t:
        results = pool.map(_adapter_fetch, groups, chunksize=1)
    return {"s": t["s"], "requests": sum(r for r, _ in results), "balances": sum(b for _, b in results)}


def _seed(url: str, wallets: list[str], tokens: list[str]):
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from portfolio.models import Asset, Chain, RpcEndpoint, Wallet, WalletChain

    Chain.objects.filter(network="mainnet").update(enabled=False)
    Chain.objects.filter(family="evm", chain_id=31337).delete()  # the seeded devnet row holds anvil's chain id
    chain = Chain.objects.create(slug="bench-anvil", name="Bench anvil", family="evm", chain_id=31337, network="devnet",
                                 native_symbol="ETH", native_name="Ether", enabled=True,
                                 sync_interval=timedelta(hours=1), log_scan_start=0)
    RpcEndpoint.objects.create(chain=chain, url=url, priority=0, timeout_s=60)
    Asset.objects.create(chain=chain, kind="native", address="", standard="native", symbol="ETH", name="Ether", decimals=18, listed=True)
    Asset.objects.bulk_create([Asset(chain=chain, kind="fungible", address=t, standard="erc20", symbol=f"T{i}", name=f"Token {i}",
                                     decimals=18, listed=True) for i, t in enumerate(tokens)])
    user = get_user_model().objects.create_user("bench", "bench@example.com", "bench-password-123")
    Wallet.objects.bulk_create([Wallet(owner=user, family="evm", address=w, label=f"w{i}") for i, w in enumerate(wallets)])
    due = timezone.now() - timedelta(seconds=1)
    WalletChain.objects.bulk_create([WalletChain(wallet=w, chain=chain, next_due_at=due) for w in Wallet.objects.filter(owner=user)])
    return chain


def _start_workers(env: dict[str, str], tmp: Path) -> subprocess.Popen:
    log = open(tmp / "worker.log", "wb")
    cmd = [str(Path(sys.executable).parent / "celery"), "-A", "portfolio", "worker", "-Q", "default,evm,bitcoin,solana",
           "--pool", "prefork", "--concurrency", str(WORKERS), "--without-gossip", "--without-mingle", "--without-heartbeat",
           "-n", f"bench-{os.getpid()}@%h", "--loglevel", os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING")]
    process = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return process


def _wait_workers_ready(process: subprocess.Popen, timeout_s: float = 90) -> None:
    from portfolio.celery import app

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the Celery worker exited; see worker.log")
        try:
            if app.control.ping(timeout=1.0):
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    # The file-system broker has no reply channel for ping: give the worker a fixed head start.
    time.sleep(5)


def _atomic_file_broker_writes() -> None:
    """kombu's file-system transport writes a message file in place, so a worker listing the folder at
    that moment can read it empty and die (JSONDecodeError; seen here under load). This process is the
    only producer: it writes each message under a name the workers do not list, then renames it."""
    import uuid

    from kombu.transport import filesystem
    from kombu.utils.encoding import str_to_bytes
    from kombu.utils.json import dumps

    def put(self, queue, payload, **kwargs):
        name = os.path.join(self.data_folder_out, f"{int(round(time.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg")
        with open(name + ".part", "wb") as f:
            f.write(str_to_bytes(dumps(payload)))
        os.replace(name + ".part", name)

    filesystem.Channel._put = put


def _due_now() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from portfolio.models import WalletChain

    WalletChain.objects.update(next_due_at=timezone.now() - timedelta(seconds=1), claimed_at=None)


def _forget_state() -> None:
    """Back to a first sync: no holdings, no log-scan cursors, never synced."""
    from portfolio.models import Holding, WalletChain

    Holding.objects.all().delete()
    WalletChain.objects.update(cursors={}, last_ok_at=None, height=None, status=WalletChain.IDLE, stored_fingerprint="")


def _cursors() -> dict:
    from portfolio.models import WalletChain

    return {address: cursors for address, cursors in WalletChain.objects.values_list("wallet__address", "cursors") if cursors}


def _pipeline(wallets: int, worker: subprocess.Popen) -> float:
    """One scheduled sync of every wallet, from the fan-out (run here, as the beat's task would in a
    worker) to the moment the last worker closed the run (its ``finished_at``): wall seconds. The end is
    read from the run, so this process polls only every 0.25 s and takes little CPU from the workers."""
    from django.utils import timezone

    from portfolio.models import SyncRun, SyncRunItem
    from portfolio.tasks import fanout_due_task

    _due_now()
    last = SyncRun.objects.order_by("-id").values_list("id", flat=True).first() or 0
    started = timezone.now()
    fanout_due_task()
    deadline = time.monotonic() + 1800
    while True:
        finished = SyncRun.objects.filter(id__gt=last, trigger=SyncRun.SCHEDULE, finished_at__isnull=False).values_list("finished_at", flat=True).first()
        if finished is not None:
            break
        if time.monotonic() > deadline:
            raise TimeoutError("the pipeline did not finish in 30 minutes")
        if worker.poll() is not None:
            raise RuntimeError("the Celery worker exited; see worker.log")
        time.sleep(0.25)
    ok = SyncRunItem.objects.filter(run__id__gt=last, status=SyncRun.OK).count()
    if ok != wallets:
        raise RuntimeError(f"{wallets - ok} of {wallets} wallet syncs did not finish ok")
    return (finished - started).total_seconds()


def _steady_writes(scheduled: bool) -> dict[str, float]:
    """One group's steady-state sync in this process: every statement, the writes, and those on
    holdings. ``scheduled``: as a worker runs a group the fan-out claimed (its WalletChains queued, a
    queued scheduled run); otherwise a direct sync of WalletChains shown idle (marked running first)."""
    from django.db import connection

    from portfolio.models import SyncRun, WalletChain
    from portfolio.sync import run as sync_run

    seen: list[str] = []

    def count(execute, sql, params, many, context):
        seen.append(sql.lstrip().upper())
        return execute(sql, params, many, context)

    ids = list(WalletChain.objects.order_by("id").values_list("id", flat=True)[:GROUP])
    run_id = None
    if scheduled:
        run_id = SyncRun.objects.create(trigger=SyncRun.SCHEDULE, status=SyncRun.QUEUED, planned=len(ids)).id
        WalletChain.objects.filter(id__in=ids).update(status=WalletChain.QUEUED)
    with connection.execute_wrapper(count):
        outcomes = sync_run.do_sync_wallet_chains(ids, run_id)
    if any(o.status != SyncRun.OK for o in outcomes):
        raise RuntimeError(f"the counted sync did not end ok: {outcomes[:3]}")
    writes = [sql for sql in seen if sql.startswith(("INSERT", "UPDATE", "DELETE", "COPY"))]
    return {"statements": len(seen), "writes": len(writes), "holding_writes": sum("PORTFOLIO_HOLDING" in sql for sql in writes),
            "wallet_chain_writes": sum("PORTFOLIO_WALLETCHAIN" in sql for sql in writes)}


def measure(wallets_n: int) -> dict:
    """Rounds of (baseline, subject) for the first and the steady-state sync at one size, in order
    alternating per round so a drift of the shared machine's load hits both sides alike."""
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    env = _prepare_environment(tmp)
    # The baseline's processes fork now, before Django opens a connection: forking later, with the
    # PostgreSQL pool's threads running, can leave a child holding a lock that is never released.
    pool = multiprocessing.get_context("fork").Pool(WORKERS)
    import django

    django.setup()
    from django.core.management import call_command

    from devnet.evm.node import start_anvil
    from portfolio.models import Holding

    call_command("migrate", verbosity=0)
    if env["CELERY_BROKER_URL"].startswith("filesystem://"):
        _atomic_file_broker_writes()
    wallets = [_address(f"chainfolio:bench-wallet:{i}") for i in range(wallets_n)]
    tokens = [_address(f"chainfolio:bench-token:{i}") for i in range(TOKENS)]
    node = start_anvil(extra_args=("--gas-limit", "1000000000"))
    worker = None
    rounds: list[dict] = []
    try:
        worker = _start_workers(env, tmp)  # they start up (imports, Django) while the chain and the books are set up
        _set_up_chain(node.url, tokens)
        _seed(node.url, wallets, tokens)
        _wait_workers_ready(worker)
        set_up = time.perf_counter()
        _adapter_alone(pool, node.url, wallets[:GROUP * WORKERS], tokens, {})  # warm: imports, first connections
        _pipeline(wallets_n, worker)  # warm the workers the same way (not timed)
        warmed = time.perf_counter()
        pool_pids = [p.pid for p in pool._pool]

        def side(name: str, cursors: dict) -> tuple[float, float]:
            """Wall seconds and CPU seconds of one side (pipeline: workers, this process, anvil;
            adapter: the pool's processes and anvil)."""
            pids = [node.process.pid] + ([worker.pid] if name == "pipeline" else pool_pids)
            cpu, own = _cpu_seconds(pids), _own_cpu_seconds()
            if name == "adapter":
                wall = _adapter_alone(pool, node.url, wallets, tokens, cursors)["s"]
            else:
                wall = _pipeline(wallets_n, worker)
            return wall, _cpu_seconds(pids) - cpu + (_own_cpu_seconds() - own if name == "pipeline" else 0.0)

        for r in range(ROUNDS):
            load = os.getloadavg()[0]
            first, first_cpu = {}, {}
            if r < FIRST_ROUNDS:
                _forget_state()
                for name in (("adapter", "pipeline") if r % 2 == 0 else ("pipeline", "adapter")):
                    first[name], first_cpu[name] = side(name, {})
            cursors = _cursors()
            steady, steady_cpu = {}, {}
            for name in (("pipeline", "adapter") if r % 2 == 0 else ("adapter", "pipeline")):
                steady[name], steady_cpu[name] = side(name, cursors)
            rounds.append({"first": first, "steady": steady, "first_cpu": first_cpu, "steady_cpu": steady_cpu, "load": load})
            first_text = f"first {first['pipeline']:.2f}s / {first['adapter']:.2f}s, " if first else ""
            print(f"  {wallets_n} wallets, round {r + 1}: {first_text}"
                  f"steady {steady['pipeline']:.2f}s / {steady['adapter']:.2f}s, steady CPU {steady_cpu['pipeline']:.2f}s / "
                  f"{steady_cpu['adapter']:.2f}s (load {load:.1f})", flush=True)
        holdings = Holding.objects.count()
        sample = Holding.objects.filter(asset__kind="fungible").select_related("asset", "wallet_chain__wallet")[:200]
        wrong = sum(int(h.amount) != int(h.wallet_chain.wallet.address, 16) ^ int(h.asset.address, 16) for h in sample)
        writes = {"direct": _steady_writes(scheduled=False), "scheduled": _steady_writes(scheduled=True)}
    finally:
        pool.terminate()
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        node.stop()
    ended = time.perf_counter()
    print(f"  {wallets_n} wallets: script {ended - began:.0f}s (set-up {set_up - began:.0f}s, warm-up {warmed - set_up:.0f}s, "
          f"rounds {ended - warmed:.0f}s)", flush=True)
    return {"rounds": rounds, "holdings": holdings, "wrong": wrong, "writes": writes, "load_after": os.getloadavg()[0],
            "script_s": {"total": ended - began, "setup": set_up - began, "warm_up": warmed - set_up, "rounds": ended - warmed}}


def _spread(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def _figures(backend: str, n: int, m: dict) -> dict[str, tuple[float, str]]:
    out: dict[str, tuple[float, str]] = {}
    p = f"{backend}_{n}w"
    for phase in ("first", "steady"):
        for suffix in ("", "_cpu"):
            rows = [r[phase + suffix] for r in m["rounds"] if r[phase + suffix]]
            ratios = [r["pipeline"] / r["adapter"] for r in rows]
            for name, values, unit in (("adapter", [r["adapter"] for r in rows], "s"), ("pipeline", [r["pipeline"] for r in rows], "s"),
                                       ("ratio", ratios, "x")):
                for stat, v in zip(("min", "median", "max"), _spread(values)):
                    out[f"{p}_{phase}{suffix}_{name}_{stat}"] = (v, "cpu s" if suffix and unit == "s" else unit)
    loads = [r["load"] for r in m["rounds"]] + [m["load_after"]]
    for stat, v in zip(("min", "median", "max"), _spread(loads)):
        out[f"{p}_load_average_{stat}"] = (v, "runnable")
    out[f"{p}_wallets"] = (n, "wallets")
    out[f"{p}_rounds"] = (len(m["rounds"]), "rounds")
    out[f"{p}_first_sync_rounds"] = (sum(1 for r in m["rounds"] if r["first"]), "rounds")
    for part, seconds in m["script_s"].items():
        out[f"{p}_script_{part}_s"] = (seconds, "s")
    out[f"{p}_holdings_stored"] = (m["holdings"], "rows")
    out[f"{p}_wrong_amounts_in_sample"] = (m["wrong"], "rows")
    for path, prefix in (("scheduled", "steady_group"), ("direct", "steady_direct_group")):
        counted = m["writes"][path]
        out[f"{p}_{prefix}_statements"] = (counted["statements"], "statements")
        out[f"{p}_{prefix}_write_statements"] = (counted["writes"], "statements")
        out[f"{p}_{prefix}_holding_writes"] = (counted["holding_writes"], "statements")
        out[f"{p}_{prefix}_wallet_chain_writes"] = (counted["wallet_chain_writes"], "statements")
    return out


def main() -> int:
    child = os.environ.get("BENCH_CHILD_SIZE")
    if child:  # one size in a fresh process: settings are read once per process
        Path(os.environ["BENCH_CHILD_OUT"]).write_text(json.dumps(measure(int(child))))
        return 0
    db, broker = os.environ.get("DATABASE_URL", ""), os.environ.get("CELERY_BROKER_URL", "")
    backend = ("postgres" if db.startswith(("postgres://", "postgresql://")) else "sqlite") + ("_redis" if broker.startswith("redis://") else "_fs")
    figures = {"tokens_per_wallet": (TOKENS, "tokens"), "worker_processes": (WORKERS, "processes"), "wallets_per_task": (GROUP, "wallets")}
    ok = True
    for n in SIZES:
        out = Path(tempfile.mkstemp(prefix="bench-sync-", suffix=".json")[1])
        print(f"{backend}: {n} wallets x {TOKENS} tokens, {ROUNDS} rounds", flush=True)
        subprocess.run([sys.executable, __file__], env={**os.environ, "BENCH_CHILD_SIZE": str(n), "BENCH_CHILD_OUT": str(out)}, check=True)
        m = json.loads(out.read_text())
        out.unlink()
        figures.update(_figures(backend, n, m))
        ok = ok and m["wrong"] == 0
    kept = {}  # read last: a run of the other backend may have finished meanwhile
    if (RESULTS / "sync_pipeline.json").exists():  # the other backend's figures stay
        old = json.loads((RESULTS / "sync_pipeline.json").read_text()).get("figures", {})
        rerun = tuple(f"{backend}_{n}w_" for n in SIZES)
        kept = {k: (v["value"], v["unit"]) for k, v in old.items() if k.startswith(("sqlite_", "postgres_")) and not k.startswith(rerun)}
    write_results("sync_pipeline", {**kept, **figures})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
