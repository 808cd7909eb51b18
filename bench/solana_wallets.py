"""Benchmark: one Solana fetch of 200 wallets (SolanaAdapter) vs the same calls made one by one with httpx.

Both sides run on the same LiteSVM devnet server (in a subprocess, like a node) in the same run,
alternately (the order flips every round), over ROUNDS rounds after a warm-up, so both see the same
machine load:
- baseline: the JSON-RPC calls the adapter makes for these wallets (the same methods and parameters,
  from the adapter's own plan), sent sequentially with a plain ``httpx.Client``, each answer decoded
  as JSON and nothing else;
- subject: ``SolanaAdapter.fetch`` of all wallets: batched JSON-RPC (plus one genesis check per
  batch), parsing, mint and metadata reads, positions (native stake, stake pools);
- for information, with BENCH_SOLANA_UNBATCHED=1, once after the rounds, the adapter against an
  endpoint without batches (``batch_size`` 0: the same calls one per request, up to 16 connections at
  once; ~40 s on a loaded machine, so not in ``make bench`` by default).
Run: .venv/bin/python bench/solana_wallets.py  (about a minute on 2 cores). Env: BENCH_ROUNDS (7).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench._common import sample_load, timer, write_results  # noqa: E402
from chains.base import ChainConfig, EndpointConfig, FetchRequest, WalletRef  # noqa: E402
from chains.endpoints import EndpointHealth  # noqa: E402
from chains.solana.adapter import SolanaAdapter  # noqa: E402
from devnet.solana.node import start_solana  # noqa: E402
from devnet.solana.scenario import fund_wallets, keypair, run_scenario  # noqa: E402

WALLETS = 200
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 7))
UNBATCHED = os.environ.get("BENCH_SOLANA_UNBATCHED", "") == "1"


class RecordingTransport(httpx.AsyncHTTPTransport):
    """Passes requests on and keeps every JSON-RPC call it saw (to replay them as the baseline)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        self.calls += [(c["method"], c["params"]) for c in (payload if isinstance(payload, list) else [payload])]
        return await super().handle_async_request(request)


def sequential(url: str, calls: list[tuple[str, list]]) -> None:
    """The baseline: every call on its own request, one after another, answers decoded as JSON."""
    with httpx.Client(timeout=30) as http:
        for i, (method, params) in enumerate(calls):
            reply = http.post(url, json={"jsonrpc": "2.0", "id": i, "method": method, "params": params})
            reply.raise_for_status()
            if "result" not in reply.json():
                raise RuntimeError(f"{method} failed")


def main() -> None:
    with start_solana() as node:
        scenario = run_scenario(node.url)
        dusd = next(a["address"] for a in scenario["assets"] if a["symbol"] == "DUSD")
        with timer() as t_setup:
            wallets = fund_wallets(node.url, WALLETS, mint=keypair("mint:dusd").pubkey())
        chain = ChainConfig(slug="solana-local", family="solana", network="devnet", native_symbol="SOL", native_decimals=9,
                            extra={"genesis_hash": scenario["chain"]["genesis_hash"]})
        endpoints = [EndpointConfig(node.url, timeout_s=30)]
        adapter = SolanaAdapter(chain, endpoints, health=EndpointHealth())
        unbatched = SolanaAdapter(ChainConfig(**{**chain.__dict__, "extra": {**chain.extra, "batch_size": 0}}),
                                  endpoints, health=EndpointHealth())
        request = FetchRequest(wallets=tuple(WalletRef(w) for w in wallets))

        # The baseline's calls: exactly what the adapter asks for these wallets, minus the genesis checks
        # (an addition of the subject), recorded from one fetch through a recording transport.
        from chains.solana import rpc as solana_rpc

        recorder = RecordingTransport()
        original = solana_rpc._new_client
        solana_rpc._new_client = lambda n: httpx.AsyncClient(transport=recorder)
        try:
            SolanaAdapter(chain, endpoints, health=EndpointHealth()).fetch(request)
        finally:
            solana_rpc._new_client = original
            solana_rpc._LOCAL.clients.clear()  # the subject gets a plain client of its own
        calls = [c for c in recorder.calls if c[0] != "getGenesisHash"]

        results: list = []

        def subject() -> None:
            results.append(adapter.fetch(request))

        def baseline() -> None:
            sequential(node.url, calls)

        def without_batches() -> None:
            results.append(unbatched.fetch(request))

        subject(), baseline()  # warm-up: imports, connections, caches
        t_sub: list[float] = []
        t_base: list[float] = []
        load = [sample_load()]
        for r in range(ROUNDS):
            for fn, out in ((baseline, t_base), (subject, t_sub))[::1 if r % 2 == 0 else -1]:
                with timer() as t:
                    fn()
                out.append(t["s"])
            load.append(sample_load())
        result = results[-1]
        if UNBATCHED:
            with timer() as t_unb:
                without_batches()
            unbatched_requests = results[-1].request_count
        balances = [b for b in result.balances if b.asset.key == dusd and b.owner in set(wallets)]
        assert len(balances) == WALLETS and all(b.amount == 1_000_000 + wallets.index(b.owner) for b in balances)

    ratios = sorted(b / s for b, s in zip(t_base, t_sub))
    write_results("solana_wallets", {
        "wallets": (WALLETS, "wallets"),
        "rounds": (ROUNDS, "rounds"),
        "setup_fund_wallets_s": (t_setup["s"], "s"),
        "json_rpc_calls": (len(calls), "calls"),
        "baseline_sequential_httpx_min_s": (min(t_base), "s"),
        "baseline_sequential_httpx_median_s": (statistics.median(t_base), "s"),
        "baseline_sequential_httpx_max_s": (max(t_base), "s"),
        "baseline_http_requests": (len(calls), "requests"),
        "adapter_fetch_min_s": (min(t_sub), "s"),
        "adapter_fetch_median_s": (statistics.median(t_sub), "s"),
        "adapter_fetch_max_s": (max(t_sub), "s"),
        "adapter_http_requests": (result.request_count, "requests"),
        **({"adapter_without_batches_one_run_s": (t_unb["s"], "s"),
            "adapter_without_batches_http_requests": (unbatched_requests, "requests")} if UNBATCHED else {}),
        "speedup_min": (ratios[0], "x"),
        "speedup_median": (statistics.median(ratios), "x"),
        "speedup_max": (ratios[-1], "x"),
        "load_average_1m_min": (min(load), "load"),
        "load_average_1m_median": (statistics.median(load), "load"),
        "load_average_1m_max": (max(load), "load"),
    }, sizes={"wallets": WALLETS, "rounds": ROUNDS, "json_rpc_calls": len(calls)})


if __name__ == "__main__":
    main()
