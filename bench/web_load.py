"""Pages under gunicorn (as `make run` and production serve them) with 20 and 50 concurrent clients while
syncs write, against Django's runserver interleaved in the same run as the baseline.

A signed-in user with 5 EVM wallets and 200 holdings; every client loops over the dashboard, holdings,
wallets and the holdings API for BENCH_WEB_SECONDS (10; the issue's figure is 60) per case, on loopback
only and bounded (each client stops at the deadline or after 10,000 requests). During every case a
writer process stores syncs of those wallets through the sync's own write path (the same
prepare/replace/mark-ok transaction a worker runs after a fetch, with every amount changed each time),
one after another with BENCH_WRITE_PAUSE (0.2) s between them: the write load of a worker syncing the
demo wallets without the chain round-trips. Cases (SQLite, PostgreSQL) x (20, 50 clients) x (gunicorn,
runserver) are interleaved over BENCH_ROUNDS (2) rounds; both servers of a database share it. gunicorn
runs with gunicorn.conf.py's defaults (2 workers x 4 threads); runserver threaded, --noreload.
PostgreSQL uses its own database chainfolio_bench_web on BENCH_PG_URL's server (default
postgres://postgres@127.0.0.1:5432); skipped when no server answers. The load average is recorded
around each case (other engineers share the machine). Writes bench/results/web_load.json.

Default run: ~4-5 minutes. The issue's full figure: BENCH_WEB_SECONDS=60 BENCH_ROUNDS=3 (~30 minutes).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, add_spread, write_results  # noqa: E402
from devnet.common import free_port  # noqa: E402

SECONDS = float(os.environ.get("BENCH_WEB_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
WRITE_PAUSE = float(os.environ.get("BENCH_WRITE_PAUSE", "0.2"))
CLIENTS = (20, 50)
SERVERS = ("gunicorn", "runserver")
PAGES = ("/", "/holdings/", "/wallets/", "/api/v1/holdings")
PY = ROOT / ".venv" / "bin" / "python"
PG_NAME = os.environ.get("BENCH_PG_DB", "chainfolio_bench_web")

SEED = '''
import django, os
django.setup()
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
# store.prepare, then one transaction of store.replace + mark ok), amounts changed every time.
WRITER = '''
import django, os, signal, sys, time
django.setup()
from chains.base import AssetRef, FetchResult, TokenBalance
from portfolio.models import Asset, WalletChain
from portfolio.sync import run
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
wcs = list(WalletChain.objects.filter(wallet__owner__username="bench", chain__enabled=True).select_related("wallet", "chain"))
refs = [AssetRef(kind=a.kind, address=a.address, symbol=a.symbol, name=a.name, decimals=a.decimals, standard=a.standard)
        for a in Asset.objects.filter(chain=wcs[0].chain, standard="erc20").order_by("id")]
pause, n = float(sys.argv[1]), 0
print("writing", flush=True)
while not stop:
    wc = wcs[n % len(wcs)]
    result = FetchResult(balances=tuple(TokenBalance(owner=wc.wallet.address, asset=r, amount=10**18 * (j + 1) + n)
                                        for j, r in enumerate(refs)), height=100 + n, endpoint="bench")
    run._record_success([wc], {}, result)
    n += 1
    time.sleep(pause)
print(n, flush=True)
'''


def _env(var: Path, database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "BROKER_URL")}
    env.update({"VAR_DIR": str(var), "DATABASE_URL": database_url, "PORT": str(port), "WEB_PORT": str(port),
                "DJANGO_SETTINGS_MODULE": "portfolio.settings", "LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"})
    return env


def _prepare(var: Path, database_url: str, port: int) -> str:
    env = _env(var, database_url, port)
    subprocess.run([str(PY), "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([str(PY), "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([str(PY), "-c", SEED], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def _postgres_url() -> str | None:
    base = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    try:
        import psycopg

        with psycopg.connect(f"{base}/postgres", autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_NAME}")
    except Exception as exc:  # noqa: BLE001 - no server: the PostgreSQL cases are skipped, and said so
        print(f"PostgreSQL cases skipped: {type(exc).__name__}: {exc}")
        return None
    return f"{base}/{PG_NAME}"


def _start(var: Path, database_url: str, port: int, server: str) -> subprocess.Popen:
    """gunicorn (gunicorn.conf.py) or Django's threaded runserver on ``port``, once /healthz answers."""
    cmd = ([str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py"] if server == "gunicorn"
           else [str(PY), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"])
    log = open(var / f"{server}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(var, database_url, port), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{server} did not start:\n{(var / f'{server}.log').read_text()[-2000:]}")


def _start_writer(var: Path, database_url: str) -> subprocess.Popen:
    proc = subprocess.Popen([str(PY), "-c", WRITER, str(WRITE_PAUSE)], cwd=ROOT, env=_env(var, database_url, 0),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing", "the writer did not start"
    return proc


def _stop_writer(proc: subprocess.Popen) -> int:
    """Stop the writer after its current sync; returns how many it stored."""
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return int(out.split()[-1])


async def _load(port: int, session: str, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    end = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", cookies={"sessionid": session}, limits=limits,
                                 timeout=30) as http:
        async def client(n: int) -> None:
            nonlocal errors
            for i in range(10_000):
                if time.monotonic() >= end:
                    return
                started = time.perf_counter()
                try:
                    response = await http.get(PAGES[(n + i) % len(PAGES)])
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok

        started = time.monotonic()
        await asyncio.gather(*(client(n) for n in range(clients)))
        took = time.monotonic() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {"rps": len(latencies) / took, "p50": q[49], "p95": q[94], "p99": q[98], "errors": errors, "requests": len(latencies)}


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _case(var: Path, url: str, port: int, session: str, clients: int) -> dict[str, float]:
    """One case: the writer running, ``clients`` clients for SECONDS, the load average around it."""
    writer = _start_writer(var, url)
    load_before = os.getloadavg()[0]
    try:
        res = asyncio.run(_load(port, session, clients, SECONDS))
    finally:
        written = _stop_writer(writer)
    res.update(syncs_per_s=written / SECONDS, load=(load_before + os.getloadavg()[0]) / 2)
    return res


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    procs: list[subprocess.Popen] = []
    try:
        targets = {"sqlite": f"sqlite:///{tmp / 'sqlite' / 'db.sqlite3'}"}
        pg = _postgres_url()
        if pg:
            targets["postgresql"] = pg
        servers: dict[tuple[str, str], tuple[Path, str, int, str]] = {}
        for name, url in targets.items():
            var = tmp / name
            var.mkdir()
            session = _prepare(var, url, free_port())
            for server in SERVERS:
                port = free_port()
                procs.append(_start(var, url, port, server))
                servers[(name, server)] = (var, url, port, session)
                asyncio.run(_load(port, session, 8, 3.0))  # warm-up: every worker has imported and rendered each page
        runs: dict[tuple[str, int, str], list[dict[str, float]]] = {}
        started = time.monotonic()
        for r in range(ROUNDS):
            for name in targets:
                for clients in CLIENTS:
                    for server in SERVERS:
                        var, url, port, session = servers[(name, server)]
                        res = _case(var, url, port, session, clients)
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
        figures["wall time of the cases"] = (time.monotonic() - started, "s")
        write_results("web_load", figures)
    finally:
        for proc in procs:
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
