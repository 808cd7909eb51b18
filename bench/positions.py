"""DeFi positions on top of balances: 200 wallets with a position in every protocol, fetched with and without positions.

Starts its own anvil, runs the devnet scenario (Uniswap V2/V3, Aave V3, ERC-4626, LSTs from their
published bytecode), gives 200 fresh wallets a position in every protocol (8 positions each), then
times EvmAdapter.fetch of the 200 wallets with ``include_positions`` False and True, alternately
(the order flipping every round), over 7 rounds after a warm-up, with the cursors of the warm-up
(steady state: the log scan is incremental). The main pair reads no NFTs, so the difference is the
positions alone; a second pair reads NFTs as a user's sync does, where the baseline fetches the
Uniswap V3 position NFTs' on-chain SVG token URIs that the positions path skips. A third pair gives every wallet 100 listed tokens
besides its positions (a token list like a real one), without NFTs.
Run: .venv/bin/python bench/positions.py
"""

from __future__ import annotations

import os
import statistics
import sys
from time import perf_counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_utils import keccak, to_checksum_address  # noqa: E402

import httpx  # noqa: E402

from bench._common import sample_load, timer, write_results  # noqa: E402
from bench.evm_balances import address, install  # noqa: E402
from chains.base import FUNGIBLE, AssetRef, EndpointConfig, FetchRequest, WalletRef  # noqa: E402
from chains.endpoints import EndpointHealth  # noqa: E402
from chains.evm import multicall  # noqa: E402
from chains.evm.adapter import EvmAdapter  # noqa: E402
from devnet.evm.node import start_anvil  # noqa: E402
from devnet.evm.protocols import spread_positions  # noqa: E402
from devnet.evm.scenario import run_scenario_cached  # noqa: E402
from tests.fixtures.evm import chain_config_for, known_assets_for  # noqa: E402

ROUNDS = 7
WALLETS = 200
LISTED = 100


class NodeClock:
    """Seconds spent inside ``MulticallReader.run`` (sending the eth_calls and waiting for the node's
    answers, decoding the Multicall3 envelope), summed per fetch: the part of a fetch that Python
    decoding cannot shorten; since the balances are built chunk by chunk while the node works on the next
    chunks (``run(..., each=)``), that building, which overlaps the waiting, is inside it too). Installed
    around the reader for the whole benchmark."""

    def __init__(self) -> None:
        self.seconds = 0.0
        original = multicall.MulticallReader.run
        clock = self

        def run(reader, calls, block, **options):
            start = perf_counter()
            try:
                return original(reader, calls, block, **options)
            finally:
                clock.seconds += perf_counter() - start

        multicall.MulticallReader.run = run


NODE = NodeClock()


def measure(adapter: EvmAdapter, request: FetchRequest) -> dict[str, list[float]]:
    """Alternate the fetch without and with positions; per arm: seconds, seconds waiting for the node
    (``NodeClock``), eth_calls, rounds, requests."""
    arms = {False: replace(request, include_positions=False), True: replace(request, include_positions=True)}
    for flag, req in arms.items():  # warm-up, and cursors so later fetches scan only new blocks
        arms[flag] = replace(req, cursors=adapter.fetch(req).cursors)
    out: dict[str, list[float]] = {}
    for r in range(ROUNDS):
        for flag, req in (arms.items() if r % 2 == 0 else reversed(arms.items())):
            NODE.seconds = 0.0
            with timer() as t:
                res = adapter.fetch(req)
            name = "with" if flag else "without"
            out.setdefault(f"{name}_s", []).append(t["s"])
            out.setdefault(f"{name}_node_s", []).append(NODE.seconds)
            out.setdefault(f"{name}_eth_calls", []).append(adapter.last_eth_calls)
            out.setdefault(f"{name}_rounds", []).append(adapter.last_rounds)
            out.setdefault(f"{name}_requests", []).append(res.request_count)
            if flag:
                assert len(res.positions) >= 8 * WALLETS and not [p for p in res.problems if p.protocol], res.problems
        sample_load()
    return out


def main() -> int:
    figures: dict[str, tuple[float, str]] = {}
    with start_anvil() as node:
        scenario = run_scenario_cached(node.url)
        wallets = [to_checksum_address(keccak(f"chainfolio:bench-positions:{i}".encode())[-20:]) for i in range(WALLETS)]
        with timer() as t:
            spread_positions(node.url, scenario, wallets)
        figures["setup_spread_200_wallets_s"] = (t["s"], "s")
        cfg = chain_config_for(scenario, protocols=scenario["defi"]["protocols"])
        adapter = EvmAdapter(cfg, [EndpointConfig(url=node.url, timeout_s=120)], health=EndpointHealth(),
                             metadata_fetcher=lambda uri: {})
        base = FetchRequest(wallets=tuple(WalletRef(w) for w in wallets), known_assets=known_assets_for(scenario))
        listed = [address(0xA, i) for i in range(LISTED)]
        with httpx.Client(timeout=120) as client:
            install(client, node.url, listed, wallets)
        with_list = replace(base, include_nfts=False, known_assets=base.known_assets + tuple(
            AssetRef(kind=FUNGIBLE, address=t, symbol=f"L{i}", name=f"Listed {i}", decimals=18, standard="erc20")
            for i, t in enumerate(listed)))
        pairs = (("", replace(base, include_nfts=False)), ("nfts_", base), ("tokens100_", with_list))
        for label, request in pairs:
            runs = measure(adapter, request)
            for arm in ("without", "with"):
                times = runs[f"{arm}_s"]
                figures[f"{label}{arm}_positions_min_s"] = (min(times), "s")
                figures[f"{label}{arm}_positions_median_s"] = (statistics.median(times), "s")
                figures[f"{label}{arm}_positions_max_s"] = (max(times), "s")
                figures[f"{label}{arm}_positions_eth_calls"] = (statistics.median(runs[f"{arm}_eth_calls"]), "eth_call")
                figures[f"{label}{arm}_positions_eth_call_rounds"] = (statistics.median(runs[f"{arm}_rounds"]), "rounds")
                figures[f"{label}{arm}_positions_http_requests"] = (statistics.median(runs[f"{arm}_requests"]), "requests")
            for arm in ("without", "with"):
                figures[f"{label}{arm}_positions_node_median_s"] = (statistics.median(runs[f"{arm}_node_s"]), "s")
            # The node's share: the eth_calls positions add, timed at the reader, against the whole
            # fetch without positions. Above 30% the target is below what the node itself needs.
            node_added = [(w - wo) / base for w, wo, base in zip(runs["with_node_s"], runs["without_node_s"], runs["without_s"])]
            figures[f"{label}node_time_added_median_pct"] = (statistics.median(node_added) * 100, "%")
            ratios = [w / wo for w, wo in zip(runs["with_s"], runs["without_s"])]
            figures[f"{label}added_by_positions_median_pct"] = ((statistics.median(runs["with_s"]) / statistics.median(runs["without_s"]) - 1) * 100, "%")
            figures[f"{label}added_by_positions_per_round_min_pct"] = ((min(ratios) - 1) * 100, "%")
            figures[f"{label}added_by_positions_per_round_max_pct"] = ((max(ratios) - 1) * 100, "%")
    figures["load_average_1m_at_end"] = (os.getloadavg()[0], "load")
    write_results("positions", figures, sizes={"wallets": WALLETS, "positions_per_wallet": 8, "listed_tokens": LISTED,
                                               "rounds": ROUNDS})
    return 0


if __name__ == "__main__":
    sys.exit(main())
