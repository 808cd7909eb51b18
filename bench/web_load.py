"""Pages under gunicorn (as `make run` and production serve them) with 20 and 50 concurrent clients while
syncs write, against Django's runserver interleaved in the same run as the baseline.

A signed-in user with 5 EVM wallets and 200 holdings; every client loops over the dashboard, holdings,
wallets and the holdings API for BENCH_WEB_SECONDS (2; the issue's figure is 60) per case, on loopback
only and bounded (each client stops at the deadline or after 10,000 requests; requests in flight at the
deadline finish and count). Latency percentiles leave out each client's first request of a case (all
clients start at once: those wait in the opening queue, not in the steady state the figure is about).
During every case a writer process (one per database, started once) stores syncs of those wallets
through the sync's own write path (the same prepare/replace/mark-ok transaction a worker runs after a
fetch, with every amount changed each time), one after another with BENCH_WRITE_PAUSE (0.2) s between
them: the write load of a worker syncing the demo wallets without the chain round-trips. Cases
(SQLite, PostgreSQL) x (20, 50 clients) x (gunicorn, runserver) are interleaved over BENCH_ROUNDS (7)
rounds, the order of the two servers flipping every round; both servers of a database share it.
gunicorn runs with gunicorn.conf.py's defaults (2 workers x 4 threads); runserver threaded, --noreload.
PostgreSQL uses its own database BENCH_PG_DB (chainfolio_bench_web) on BENCH_PG_URL's server (default
postgres://postgres@127.0.0.1:5432), dropped at the end; skipped when no server answers. The load
average is recorded around each case (other engineers share the machine). Writes
bench/results/web_load.json.

Default run: ~3 minutes on an idle machine (setup ~25 s, 56 cases of 2 s plus the requests in flight).
The issue's full figure: BENCH_WEB_SECONDS=60 BENCH_ROUNDS=3 (~30 minutes).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, add_spread, sample_load, write_results  # noqa: E402
from devnet.common import free_port  # noqa: E402

SECONDS = float(os.environ.get("BENCH_WEB_SECONDS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
WRITE_PAUSE = float(os.environ.get("BENCH_WRITE_PAUSE", "0.2"))
CLIENTS = (20, 50)
SERVERS = ("gunicorn", "runserver")
PAGES = ("/", "/holdings/", "/wallets/", "/api/v1/holdings")
PY = ROOT / ".venv" / "bin" / "python"
PG_NAME = os.environ.get("BENCH_PG_DB", "chainfolio_bench_web")

SEED = '''
import django, os
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("collectstatic", interactive=False, verbosity=0)
from django.conf import settings
from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from portfolio.models import Asset, Chain, Holding, WalletChain
from portfolio import totals
from portfolio.services.wallets import do_add_wallet
user = get_user_model().objects.create_user("bench", password="bench-password-123")
chain = Chain.objects.filter(family="evm").order_by("id").first()
Chain.objects.filter(family="evm").exclude(pk=chain.pk).update(enabled=False)
for i in range(5):
    do_add_wallet(user, "evm", "0x" + f"{i + 1:040x}")
assets = [Asset.objects.create(chain=chain, address="0x" + f"{1000 + j:040x}", kind="fungible", standard="erc20",
                               symbol=f"T{j}", name=f"Token {j}", decimals=18, listed=True) for j in range(40)]
for wc in WalletChain.objects.filter(chain=chain):
    Holding.objects.bulk_create([Holding(wallet_chain=wc, asset=a, amount=10**18 * (j + 1), height=100) for j, a in enumerate(assets)])
totals.rebuild(user.pk)  # holdings loaded around the sync: their per-asset totals
s = SessionStore()
s[SESSION_KEY] = str(user.pk)
s[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
s[HASH_SESSION_KEY] = user.get_session_auth_hash()
s.create()
print(s.session_key)
'''

# The write load: syncs of the bench user's wallets through the sync's write path (run._record_success:
# store.prepare, then one transaction of store.replace + mark ok), amounts changed every time. One
# process per database for the whole run: each line on stdin is a case's seconds; it writes for that
# long, then answers how many syncs it stored.
WRITER = '''
import django, os, sys, time
django.setup()
from chains.base import AssetRef, FetchResult, TokenBalance
from portfolio.models import Asset, WalletChain
from portfolio.sync import run
wcs = list(WalletChain.objects.filter(wallet__owner__username="bench", chain__enabled=True).select_related("wallet", "chain"))
refs = [AssetRef(kind=a.kind, address=a.address, symbol=a.symbol, name=a.name, decimals=a.decimals, standard=a.standard)
        for a in Asset.objects.filter(chain=wcs[0].chain, standard="erc20").order_by("id")]
pause, n = float(sys.argv[1]), 0
print("ready", flush=True)
for line in sys.stdin:
    end, first = time.monotonic() + float(line), n
    while time.monotonic() < end:
        wc = wcs[n % len(wcs)]
        result = FetchResult(balances=tuple(TokenBalance(owner=wc.wallet.address, asset=r, amount=10**18 * (j + 1) + n)
                                            for j, r in enumerate(refs)), height=100 + n, endpoint="bench")
        run._record_success([wc], {}, result)
        n += 1
        time.sleep(pause)
    print("written", n - first, flush=True)
'''


def _env(var: Path, database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "BROKER_URL")}
    env.update({"VAR_DIR": str(var), "DATABASE_URL": database_url, "PORT": str(port), "WEB_PORT": str(port),
                "DJANGO_SETTINGS_MODULE": "portfolio.settings", "LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"})
    return env


def _prepare(targets: dict[str, str], tmp: Path) -> dict[str, str]:
    """Migrate, collect the static files and seed every database, the databases side by side (one
    process each); returns each one's session key."""
    procs = {}
    for name, url in targets.items():
        (tmp / name).mkdir()
        procs[name] = subprocess.Popen([str(PY), "-c", SEED], cwd=ROOT, env=_env(tmp / name, url, 0),
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sessions = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        if proc.returncode:
            raise RuntimeError(f"seeding {name} failed:\n{err[-2000:]}")
        sessions[name] = out.strip().splitlines()[-1]
    return sessions


def _postgres_url(create: bool = True) -> str | None:
    """The bench database's URL, made afresh; None when no server answers. ``create=False`` drops it."""
    base = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    try:
        import psycopg

        with psycopg.connect(f"{base}/postgres", autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
            if create:
                conn.execute(f"CREATE DATABASE {PG_NAME}")
    except Exception as exc:  # noqa: BLE001 - no server: the PostgreSQL cases are skipped, and said so
        print(f"PostgreSQL cases skipped: {type(exc).__name__}: {exc}")
        return None
    return f"{base}/{PG_NAME}"


def _start(var: Path, database_url: str, port: int, server: str) -> subprocess.Popen:
    """gunicorn (gunicorn.conf.py) or Django's threaded runserver on ``port`` (``_ready`` waits for it)."""
    cmd = ([str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py"] if server == "gunicorn"
           else [str(PY), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"])
    log = open(var / f"{server}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(var, database_url, port), stdout=log, stderr=subprocess.STDOUT)


def _ready(proc: subprocess.Popen, var: Path, port: int, server: str) -> None:
    """Returns once /healthz answers on ``port``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{server} did not start:\n{(var / f'{server}.log').read_text()[-2000:]}")


def _start_writer(var: Path, database_url: str) -> subprocess.Popen:
    return subprocess.Popen([str(PY), "-c", WRITER, str(WRITE_PAUSE)], cwd=ROOT, env=_env(var, database_url, 0),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _writer_says(proc: subprocess.Popen, word: str) -> str:
    """The rest of the writer's next line that starts with ``word`` (its log lines are skipped)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(word):
            return line[len(word):].strip()
    raise RuntimeError(f"the writer ended before saying {word!r}")


async def _load(port: int, session: str, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []  # every request after each client's first
    requests = errors = 0
    end = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", cookies={"sessionid": session}, limits=limits,
                                 timeout=30) as http:
        async def client(n: int) -> None:
            nonlocal errors, requests
            for i in range(10_000):
                if time.monotonic() >= end:
                    return
                started = time.perf_counter()
                try:
                    response = await http.get(PAGES[(n + i) % len(PAGES)])
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if i:
                    latencies.append(time.perf_counter() - started)
                requests += 1
                errors += not ok

        started = time.monotonic()
        await asyncio.gather(*(client(n) for n in range(clients)))
        took = time.monotonic() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0] if latencies else float("nan")] * 99
    return {"rps": requests / took, "p50": q[49], "p95": q[94], "p99": q[98], "errors": errors, "requests": requests,
            "took": took}


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _case(writer: subprocess.Popen, port: int, session: str, clients: int) -> dict[str, float]:
    """One case: the writer writing, ``clients`` clients for SECONDS, the load average around it."""
    assert writer.stdin is not None
    load_before = os.getloadavg()[0]
    writer.stdin.write(f"{SECONDS}\n")
    writer.stdin.flush()
    res = asyncio.run(_load(port, session, clients, SECONDS))
    written = int(_writer_says(writer, "written"))
    res.update(syncs_per_s=written / SECONDS, load=(load_before + sample_load()) / 2)
    return res


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    procs: list[subprocess.Popen] = []
    pg = None
    try:
        targets = {"sqlite": f"sqlite:///{tmp / 'sqlite' / 'db.sqlite3'}"}
        pg = _postgres_url()
        if pg:
            targets["postgresql"] = pg
        setup_started = time.monotonic()
        sessions = _prepare(targets, tmp)
        servers: dict[tuple[str, str], int] = {}
        writers: dict[str, subprocess.Popen] = {}
        started_servers: dict[tuple[str, str], subprocess.Popen] = {}
        for name, url in targets.items():  # every server and writer starts at once; then each is waited for
            for server in SERVERS:
                servers[(name, server)] = free_port()
                started_servers[(name, server)] = _start(tmp / name, url, servers[(name, server)], server)
                procs.append(started_servers[(name, server)])
            writers[name] = _start_writer(tmp / name, url)
            procs.append(writers[name])
        for (name, server), proc in started_servers.items():
            _ready(proc, tmp / name, servers[(name, server)], server)
            # warm-up: every worker has imported and rendered each page
            asyncio.run(_load(servers[(name, server)], sessions[name], 8, 1.5))
        for writer in writers.values():
            _writer_says(writer, "ready")
        setup_s = time.monotonic() - setup_started
        runs: dict[tuple[str, int, str], list[dict[str, float]]] = {}
        started = time.monotonic()
        for r in range(ROUNDS):
            for name in targets:
                for clients in CLIENTS:
                    for server in SERVERS if r % 2 == 0 else SERVERS[::-1]:
                        res = _case(writers[name], servers[(name, server)], sessions[name], clients)
                        runs.setdefault((name, clients, server), []).append(res)
                        print(f"round {r + 1} {name:10s} {clients:2d} clients {server:9s}: {res['rps']:6.1f} req/s "
                              f"p50 {res['p50'] * 1000:6.0f} ms p95 {res['p95'] * 1000:6.0f} ms p99 {res['p99'] * 1000:6.0f} ms "
                              f"errors {res['errors']:.0f}  syncs written {res['syncs_per_s']:.1f}/s  load {res['load']:.1f}",
                              flush=True)
        figures: dict[str, tuple[float, str]] = {}
        for (name, clients, server), rs in runs.items():
            case = f"{name} {clients} clients {server}"
            add_spread(figures, f"{case} req/s", [x["rps"] for x in rs], "req/s")
            for p in ("p50", "p95", "p99"):
                figures[f"{case} {p} median"] = (statistics.median(x[p] for x in rs) * 1000, "ms")
            figures[f"{case} errors"] = (sum(x["errors"] for x in rs), f"of {sum(x['requests'] for x in rs):.0f} requests")
            figures[f"{case} syncs written median"] = (statistics.median(x["syncs_per_s"] for x in rs), "syncs/s")
        for name in targets:
            for clients in CLIENTS:
                g = statistics.median(x["rps"] for x in runs[(name, clients, "gunicorn")])
                d = statistics.median(x["rps"] for x in runs[(name, clients, "runserver")])
                figures[f"{name} {clients} clients gunicorn / runserver req/s"] = (g / d if d else float("nan"), "x")
        loads = [x["load"] for rs in runs.values() for x in rs]
        figures["load average (1 min) during the cases min"] = (min(loads), "")
        figures["load average (1 min) during the cases median"] = (statistics.median(loads), "")
        figures["load average (1 min) during the cases max"] = (max(loads), "")
        figures["seconds per case"] = (SECONDS, "s")
        figures["rounds"] = (ROUNDS, "")
        figures["wall time of the setup (databases, servers, warm-up)"] = (setup_s, "s")
        figures["wall time of the cases"] = (time.monotonic() - started, "s")
        write_results("web_load", figures, sizes={"wallets": 5, "holdings": 200, "clients": list(CLIENTS),
                                                  "databases": list(targets), "rounds": ROUNDS, "seconds_per_case": SECONDS})
    finally:
        for proc in procs:
            if proc.stdin:  # a writer: stdin closed, it ends after its current case
                proc.stdin.close()
            _stop(proc)
        if pg:
            _postgres_url(create=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
