"""Benchmark: 1,000 EVM wallets x 100 tokens through the whole sync pipeline (fan-out, 2 Celery worker
processes, database writes) against the adapter alone (no Celery, no database) on the same work.

Setup is cheap: one 13-byte token contract (``balanceOf(owner)`` returns ``owner XOR token``) is put at
100 addresses with ``anvil_setCode``; the 1,000 wallets are derived addresses nobody holds a key for.
The database is a throw-away SQLite file (or ``<name>_bench`` on PostgreSQL when DATABASE_URL is
PostgreSQL); the broker is the file-system one in a temporary folder (or Redis database 14 when
CELERY_BROKER_URL is Redis; the file-system broker polls its folder every 0.05 s, as settings.py
configures it for any deployment). Env: BENCH_WALLETS, BENCH_TOKENS, BENCH_WORKERS to scale it.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, timer, write_results  # noqa: E402

WALLETS = int(os.environ.get("BENCH_WALLETS", 1000))
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
    else:
        env["CELERY_BROKER_URL"] = "filesystem://"
    os.environ.update(env)
    return env


def _set_up_chain(url: str, tokens: list[str]) -> None:
    from devnet.common import rpc

    for token in tokens:
        rpc(url, "anvil_setCode", [token, TOKEN_RUNTIME])
    rpc(url, "evm_mine", [])


def _adapter_fetch(args):
    url, group, tokens = args
    from chains.base import NATIVE, AssetRef, ChainConfig, EndpointConfig, FetchRequest, WalletRef
    from chains.registry import adapter_for

    config = ChainConfig(slug="bench-anvil", family="evm", network="devnet", chain_id=31337, native_symbol="ETH", log_scan_start=0)
    assets = [AssetRef(kind=NATIVE, address=None, symbol="ETH", name="Ether", decimals=18)]
    assets += [AssetRef(kind="fungible", address=t, symbol=f"T{i}", name=f"Token {i}", decimals=18, standard="erc20") for i, t in enumerate(tokens)]
    adapter = adapter_for(config, [EndpointConfig(url=url, timeout_s=60)])
    result = adapter.fetch(FetchRequest(wallets=tuple(WalletRef(w) for w in group), known_assets=tuple(assets)))
    return result.request_count, len(result.balances)


def _adapter_alone(url: str, wallets: list[str], tokens: list[str]) -> dict[str, float]:
    groups = [(url, wallets[i:i + GROUP], tokens) for i in range(0, len(wallets), GROUP)]
    with timer() as t:
        with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
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
    time.sleep(1)
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


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    env = _prepare_environment(tmp)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from devnet.evm.node import start_anvil
    from portfolio.models import Holding, SyncRun, SyncRunItem, WalletChain
    from portfolio.sync import run as sync_run
    from portfolio.tasks import fanout_due_task

    call_command("migrate", verbosity=0)
    wallets = [_address(f"chainfolio:bench-wallet:{i}") for i in range(WALLETS)]
    tokens = [_address(f"chainfolio:bench-token:{i}") for i in range(TOKENS)]
    node = start_anvil(extra_args=("--gas-limit", "1000000000"))
    worker = None
    try:
        _set_up_chain(node.url, tokens)
        alone = _adapter_alone(node.url, wallets, tokens)
        print(f"adapter alone: {alone['s']:.1f}s, {alone['requests']} requests, {alone['balances']} balances", flush=True)

        load_before = os.getloadavg()[0]
        _seed(node.url, wallets, tokens)
        worker = _start_workers(env, tmp)
        _wait_workers_ready(worker)
        with timer() as t:
            with timer() as fanout:
                fanout_due_task()
            print(f"fan-out (claim + {WALLETS // GROUP} tasks enqueued): {fanout['s']:.2f}s", flush=True)
            deadline = time.monotonic() + 1800
            while not SyncRun.objects.filter(trigger=SyncRun.SCHEDULE, finished_at__isnull=False).exists():
                if time.monotonic() > deadline:
                    raise TimeoutError("the pipeline did not finish in 30 minutes")
                time.sleep(0.05)  # the finish is seen within 50 ms
        run = SyncRun.objects.get(trigger=SyncRun.SCHEDULE)
        items = list(SyncRunItem.objects.filter(run=run).values_list("status", "counts"))
        pipeline_requests = round(sum(c.get("requests", 0) / max(1, c.get("wallets_in_fetch", 1)) for _, c in items))
        ok = sum(s == SyncRun.OK for s, _ in items)
        holdings = Holding.objects.count()
        print(f"pipeline: {t['s']:.1f}s, {ok}/{len(items)} ok, {holdings} holdings", flush=True)

        # Spot-check exactness: balanceOf(owner) is owner XOR token.
        sample = Holding.objects.filter(asset__kind="fungible").select_related("asset", "wallet_chain__wallet")[:200]
        wrong = sum(int(h.amount) != int(h.wallet_chain.wallet.address, 16) ^ int(h.asset.address, 16) for h in sample)

        # SQL per wallet: the same service in this process for one group of GROUP wallets (an executemany
        # INSERT of all the group's holdings counts as one statement, as COPY does on PostgreSQL).
        ids = list(WalletChain.objects.order_by("id").values_list("id", flat=True)[:GROUP])
        with CaptureQueriesContext(connection) as queries:
            sync_run.do_sync_wallet_chains(ids)
        sql_per_wallet = len(queries.captured_queries) / len(ids)
        load_after = os.getloadavg()[0]
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        node.stop()

    write_results("sync_pipeline", {
        "wallets": (WALLETS, "wallets"),
        "tokens_per_wallet": (TOKENS, "tokens"),
        "worker_processes": (WORKERS, "processes"),
        "adapter_alone_wall": (alone["s"], "s"),
        "pipeline_wall": (t["s"], "s"),
        "fanout_claim_and_enqueue": (fanout["s"], "s"),
        "pipeline_over_adapter": (t["s"] / alone["s"], "x"),
        "adapter_rpc_requests": (alone["requests"], "requests"),
        "pipeline_rpc_requests": (pipeline_requests, "requests"),
        "sql_queries_per_wallet": (sql_per_wallet, "queries"),
        "holdings_stored": (holdings, "rows"),
        "items_ok": (ok, "wallet syncs"),
        "wrong_amounts_in_sample": (wrong, "rows"),
        "pipeline_throughput": (WALLETS / t["s"], "wallets/s"),
        # The machine is shared: the 1-minute load average before the pipeline and after it.
        "load_average_before": (load_before, "runnable"),
        "load_average_after": (load_after, "runnable"),
    })
    return 0 if ok == len(items) == WALLETS and wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
