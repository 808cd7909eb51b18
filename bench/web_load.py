"""Pages under gunicorn (as `make run` and production serve them) with 20 and 50 concurrent clients.

A signed-in user with 5 EVM wallets and 200 holdings; every client loops over the dashboard, holdings,
wallets and the holdings API for BENCH_WEB_SECONDS (8) per case, on loopback only and bounded (each
client stops at the deadline or after 10,000 requests). Cases (SQLite, PostgreSQL) x (20, 50 clients)
are interleaved over BENCH_ROUNDS (7) rounds against one gunicorn per database (default
gunicorn.conf.py settings: 2 workers x 4 threads). PostgreSQL uses its own database
chainfolio_bench_web on DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432); skipped
when no server answers. Writes bench/results/web_load.json.
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

from bench._common import ROOT, add_spread, write_results  # noqa: E402
from devnet.common import free_port  # noqa: E402

SECONDS = float(os.environ.get("BENCH_WEB_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
CLIENTS = (20, 50)
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


def _start(var: Path, database_url: str, port: int) -> subprocess.Popen:
    log = open(var / "gunicorn.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py"], cwd=ROOT,
                            env=_env(var, database_url, port), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"gunicorn did not start:\n{(var / 'gunicorn.log').read_text()[-2000:]}")


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


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    servers: dict[str, tuple[subprocess.Popen, int, str]] = {}
    try:
        targets = {"sqlite": f"sqlite:///{tmp / 'sqlite' / 'db.sqlite3'}"}
        pg = _postgres_url()
        if pg:
            targets["postgresql"] = pg
        for name, url in targets.items():
            var = tmp / name
            var.mkdir()
            port = free_port()
            session = _prepare(var, url, port)
            servers[name] = (_start(var, url, port), port, session)
            asyncio.run(_load(port, session, 8, 3.0))  # warm-up: every worker has imported and rendered each page
        runs: dict[str, list[dict[str, float]]] = {}
        for r in range(ROUNDS):
            for name, (_, port, session) in servers.items():
                for clients in CLIENTS:
                    res = asyncio.run(_load(port, session, clients, SECONDS))
                    runs.setdefault(f"{name} {clients} clients", []).append(res)
                    print(f"round {r + 1} {name:10s} {clients:2d} clients: {res['rps']:6.1f} req/s p50 {res['p50'] * 1000:6.0f} ms "
                          f"p95 {res['p95'] * 1000:6.0f} ms p99 {res['p99'] * 1000:6.0f} ms errors {res['errors']}")
        figures: dict[str, tuple[float, str]] = {}
        for case, rs in runs.items():
            add_spread(figures, f"{case} req/s", [x["rps"] for x in rs], "req/s")
            for p in ("p50", "p95", "p99"):
                figures[f"{case} {p} median"] = (statistics.median(x[p] for x in rs) * 1000, "ms")
            figures[f"{case} errors"] = (sum(x["errors"] for x in rs), f"of {sum(x['requests'] for x in rs)} requests")
        write_results("web_load", figures)
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
