"""Benchmark: Solana sync of 200 wallets on the LiteSVM devnet, concurrent vs sequential vs raw RPC."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench._common import timer, write_results  # noqa: E402
from chains.base import ChainConfig, EndpointConfig, FetchRequest, WalletRef  # noqa: E402
from chains.endpoints import EndpointHealth  # noqa: E402
from chains.solana.adapter import SolanaAdapter  # noqa: E402
from chains.solana.metaplex import metadata_address  # noqa: E402
from devnet.solana.node import start_solana  # noqa: E402
from devnet.solana.scenario import fund_wallets, keypair, run_scenario  # noqa: E402

WALLETS = 200
TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
STAKE = "Stake11111111111111111111111111111111111111"


def raw_calls(url: str, wallets: list[str], mints: list[str]) -> int:
    """The same requests the adapter makes, sent one by one with httpx, answers not parsed."""
    n = 0
    with httpx.Client(timeout=30) as http:
        def post(method, params):
            nonlocal n
            n += 1
            http.post(url, json={"jsonrpc": "2.0", "id": n, "method": method, "params": params}).raise_for_status()

        for w in wallets:
            post("getBalance", [w, {"commitment": "confirmed"}])
            for program in (TOKEN, TOKEN_2022):
                post("getTokenAccountsByOwner", [w, {"programId": program}, {"encoding": "jsonParsed", "commitment": "confirmed"}])
            for offset in (12, 44):
                post("getProgramAccounts", [STAKE, {"encoding": "base64", "filters": [{"memcmp": {"offset": offset, "bytes": w}}]}])
        for i in range(0, len(mints), 100):
            post("getMultipleAccounts", [mints[i : i + 100], {"encoding": "base64"}])
    return n


def main() -> None:
    with start_solana() as node:
        scenario = run_scenario(node.url)
        dusd = next(a["address"] for a in scenario["assets"] if a["symbol"] == "DUSD")
        with timer() as t_setup:
            wallets = fund_wallets(node.url, WALLETS, mint=keypair("mint:dusd").pubkey())
        chain = ChainConfig(slug="solana-local", family="solana", network="devnet", native_symbol="SOL", native_decimals=9)
        endpoints = [EndpointConfig(node.url, timeout_s=30)]

        def adapter(concurrency: int) -> SolanaAdapter:
            c = ChainConfig(**{**chain.__dict__, "extra": {"max_concurrency": concurrency}})
            return SolanaAdapter(c, endpoints, health=EndpointHealth())

        request = FetchRequest(wallets=tuple(WalletRef(w) for w in wallets))
        adapter(8).fetch(FetchRequest(wallets=(WalletRef(wallets[0]),)))  # warm-up: imports, connections
        with timer() as t_conc:
            conc = adapter(8).fetch(request)
        with timer() as t_conc32:
            conc32 = adapter(32).fetch(request)
        seq_adapter, seq_requests = adapter(1), 0
        with timer() as t_seq:
            for w in wallets:
                seq_requests += seq_adapter.fetch(FetchRequest(wallets=(WalletRef(w),))).request_count
        mints = [dusd, metadata_address(dusd)]  # the keys the adapter reads: mint + metadata PDA
        with timer() as t_raw:
            raw_requests = raw_calls(node.url, wallets, mints)
        balances = [b for b in conc.balances if b.asset.key == dusd]
        assert len(balances) == WALLETS and all(b.amount == 1_000_000 + i for i, b in enumerate(balances))
        assert conc32.request_count == conc.request_count

    write_results("solana_wallets", {
        "wallets": (WALLETS, "wallets"),
        "setup_fund_wallets_s": (t_setup["s"], "s"),
        "adapter_one_fetch_concurrency8_s": (t_conc["s"], "s"),
        "adapter_one_fetch_concurrency8_requests": (conc.request_count, "requests"),
        "adapter_one_fetch_concurrency32_s": (t_conc32["s"], "s"),
        "adapter_one_fetch_per_wallet_ms": (1000 * t_conc["s"] / WALLETS, "ms"),
        "baseline_sequential_fetch_per_wallet_s": (t_seq["s"], "s"),
        "baseline_sequential_fetch_per_wallet_requests": (seq_requests, "requests"),
        "baseline_raw_httpx_sequential_unparsed_s": (t_raw["s"], "s"),
        "baseline_raw_httpx_sequential_unparsed_requests": (raw_requests, "requests"),
        "speedup_concurrent_vs_sequential": (t_seq["s"] / t_conc["s"], "x"),
    })


if __name__ == "__main__":
    main()
