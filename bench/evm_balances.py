"""EVM balance reads on a local anvil: EvmAdapter against an honest floor at 1k, 5k and 20k tokens, and multicall vs eth_calls.

Subject: one ``EvmAdapter.fetch`` of 1 wallet x N listed tokens (fresh cursors every time, so the
Transfer-log scan is included; no NFTs): head, log scan, encoding, chunks of 500 ``balanceOf`` per
Multicall3 ``aggregate3`` eth_call, 2 chunks per JSON-RPC batch, 2 batches in flight, decoding.

Floor: the very same HTTP requests, recorded from the adapter's own fetch (same bodies, so the node
does the same work), replayed with prebuilt bodies: the requests before the eth_calls one after
another, the eth_call batches with as many in flight as the adapter has (its ``parallel``); each answer
parsed as JSON and nothing else. So the ratio is what the adapter's own Python costs on top of the
node and the round trips, with the same concurrency on both sides.

Both are timed alternately (the order flips every round) over ROUNDS rounds after a warm-up, or more
where a round is short (as many as fit in BENCH_EVM_ROUND_BUDGET_S seconds, default 3, at most 61:
about 60 at 1k tokens, 40 at 5k, 12 at 20k; a median of 7 runs of 10 ms is mostly noise); min,
median and max of each, and of the per-round ratio, plus the load average. Besides wall seconds, the
CPU seconds of each side (this process, all threads, plus anvil's) are summed from /proc: on a machine
other jobs share, wall time is roughly CPU time divided by the share the scheduler gives, so the CPU
ratio is the steadier figure. Also: 200 wallets x 200
tokens (adapter only) and 500 ``balanceOf`` as 500 eth_calls vs one multicall, interleaved likewise.
Run: .venv/bin/python bench/evm_balances.py (starts its own anvil). Env: BENCH_EVM_TOKENS (default
1000,5000,20000), BENCH_ROUNDS (default 7: the least per size), BENCH_EVM_ROUND_BUDGET_S (default 3).
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from eth_abi import decode, encode  # noqa: E402
from eth_utils import keccak  # noqa: E402

from bench._common import add_spread, timer, write_results  # noqa: E402
from chains.base import FUNGIBLE, AssetRef, ChainConfig, EndpointConfig, FetchRequest, WalletRef  # noqa: E402
from chains.endpoints import EndpointHealth  # noqa: E402
from chains.evm.adapter import EvmAdapter  # noqa: E402
from chains.evm.address import to_checksum  # noqa: E402
from devnet.common import rpc_batch  # noqa: E402
from devnet.evm.node import MULTICALL3_ADDRESS, artifact, start_anvil  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_EVM_TOKENS", "1000,5000,20000").split(",")]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 7))
# Per size, as many interleaved rounds as fit in this many seconds (at least ROUNDS, at most MAX_ROUNDS).
ROUND_BUDGET_S = float(os.environ.get("BENCH_EVM_ROUND_BUDGET_S", 3))
MAX_ROUNDS = 61
BALANCES_SLOT = 5  # DemoToken storage: name, symbol, decimals, totalSupply, owner, balances
BALANCE_OF = bytes.fromhex("70a08231")
AGGREGATE3 = bytes.fromhex("82ad56cb")


def address(prefix: int, i: int) -> str:
    return to_checksum("0x" + (prefix * 16**36 + i).to_bytes(20, "big").hex())


def install(client: httpx.Client, url: str, tokens: list[str], wallets: list[str]) -> None:
    """Real ERC-20 runtime code at every token address, and a balance for every wallet in its storage."""
    code = artifact("DemoToken")["deployedBytecode"]
    calls: list[tuple[str, list]] = [("anvil_setCode", [t, code]) for t in tokens]
    for w_i, w in enumerate(wallets):
        slot = "0x" + keccak(bytes.fromhex("00" * 12 + w[2:]) + BALANCES_SLOT.to_bytes(32, "big")).hex()
        value = "0x" + (10**18 + w_i).to_bytes(32, "big").hex()
        calls += [("anvil_setStorageAt", [t, slot, value]) for t in tokens]
    rpc_batch(url, calls, http=client)


class RecordingTransport(httpx.HTTPTransport):
    """Passes requests on and, while ``on``, keeps each request body (to replay them as the floor)."""

    def __init__(self) -> None:
        super().__init__()
        self.on = False
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.on:
            with self._lock:
                self.bodies.append(request.read())
        return super().handle_request(request)


def replay(client: httpx.Client, url: str, bodies: list[bytes], parallel: int) -> Callable[[], None]:
    """The floor: the recorded requests, prebuilt; the eth_call ones ``parallel`` at a time, as the adapter sends them."""
    before = [b for b in bodies if b'"eth_call"' not in b]
    calls = [b for b in bodies if b'"eth_call"' in b]
    headers = {"content-type": "application/json"}

    def post(body: bytes) -> None:
        reply = client.post(url, content=body, headers=headers).json()
        if (isinstance(reply, dict) and "result" not in reply) or (isinstance(reply, list) and any("result" not in r for r in reply)):
            raise RuntimeError(str(reply)[:200])

    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="floor")

    def floor() -> None:
        for body in before:
            post(body)
        list(pool.map(post, calls))

    return floor


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user + system) of this process, all threads, or of ``pid`` (0 when unreadable)."""
    if pid is None:
        return time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def interleaved(named: dict[str, Callable[[], None]], rounds: int = ROUNDS, node_pid: int | None = None,
                budget_s: float = 0.0) -> dict[str, list[float]]:
    """Time the callables alternately (after a warm-up), the order flipped every round, so all see the
    same load; ``<name>_cpu``: CPU seconds of this process plus the node's, per run. With ``budget_s``,
    more rounds than ``rounds`` when a round is short (as many as fit in the budget, at most
    ``MAX_ROUNDS``): a median of 7 samples of a 10 ms run is mostly the machine's noise."""
    with timer() as warm:
        for fn in named.values():
            fn()
    if budget_s:
        rounds = max(rounds, min(MAX_ROUNDS, int(budget_s / max(warm["s"], 1e-6))))
    times: dict[str, list[float]] = {name: [] for name in named} | {f"{name}_cpu": [] for name in named}
    order = list(named)
    for r in range(rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            cpu = cpu_seconds() + (cpu_seconds(node_pid) if node_pid else 0.0)
            with timer() as t:
                named[name]()
            times[name].append(t["s"])
            times[f"{name}_cpu"].append(cpu_seconds() + (cpu_seconds(node_pid) if node_pid else 0.0) - cpu)
    return times


def main() -> int:
    figures: dict[str, tuple[float, str]] = {"rounds": (ROUNDS, "rounds"), "round_budget_s": (ROUND_BUDGET_S, "s")}
    loads = [os.getloadavg()[0]]
    recorder = RecordingTransport()
    with (start_anvil(extra_args=("--gas-limit", "1000000000", "--no-request-size-limit")) as node,
          httpx.Client(timeout=120) as client, httpx.Client(timeout=120, transport=recorder) as adapter_http):
        url = node.url
        tokens = [address(0xA, i) for i in range(max(SIZES))]
        wallet = address(0xC, 1)
        many_wallets = [address(0xD, i) for i in range(200)]
        with timer() as t_setup:
            install(client, url, tokens, [wallet])
            install(client, url, tokens[:200], many_wallets)
        figures["setup_install_tokens_s"] = (t_setup["s"], "s")
        height = int(client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}).json()["result"], 16)

        chain = ChainConfig(slug="anvil", family="evm", network="devnet", chain_id=31337, native_symbol="ETH",
                            native_name="Ether", log_scan_start=0)
        known = tuple(AssetRef(kind=FUNGIBLE, address=t, symbol=f"T{i}", name=f"T{i}", decimals=18, standard="erc20")
                      for i, t in enumerate(tokens))
        adapter = EvmAdapter(chain, [EndpointConfig(url=url, timeout_s=120)], health=EndpointHealth(), http=adapter_http)

        # --- 1 wallet x N tokens: adapter (fresh cursors every time: includes the log scan) vs the floor
        for n in SIZES:
            req = FetchRequest(wallets=(WalletRef(wallet),), known_assets=known[:n], include_nfts=False)
            adapter.fetch(req)  # the endpoint's chain id is checked once per adapter: record a fetch like the timed ones
            recorder.bodies.clear()
            recorder.on = True
            result = adapter.fetch(req)
            recorder.on = False
            assert len(result.balances) == n + 1 and not result.problems, result.problems
            bodies = list(recorder.bodies)
            times = interleaved({"adapter": lambda: adapter.fetch(req), "floor": replay(client, url, bodies, adapter.parallel)},
                                node_pid=node.process.pid, budget_s=ROUND_BUDGET_S)
            loads.append(os.getloadavg()[0])
            ratios = [a / f for a, f in zip(times["adapter"], times["floor"])]
            p = f"1w_{n}t"
            figures[f"{p}_tokens"] = (n, "tokens")
            figures[f"{p}_rounds"] = (len(ratios), "rounds")
            figures[f"{p}_eth_calls"] = (adapter.last_eth_calls, "eth_call")
            figures[f"{p}_http_requests"] = (result.request_count, "requests")
            figures[f"{p}_floor_http_requests"] = (len(bodies), "requests")
            figures[f"{p}_in_flight"] = (adapter.parallel, "requests")
            add_spread(figures, f"{p}_adapter_s", times["adapter"], "s")
            add_spread(figures, f"{p}_floor_s", times["floor"], "s")
            add_spread(figures, f"{p}_ratio_adapter_over_floor", ratios, "x")
            figures[f"{p}_ratio_of_medians"] = (statistics.median(times["adapter"]) / statistics.median(times["floor"]), "x")
            add_spread(figures, f"{p}_adapter_cpu_s", times["adapter_cpu"], "cpu s")
            add_spread(figures, f"{p}_floor_cpu_s", times["floor_cpu"], "cpu s")
            add_spread(figures, f"{p}_cpu_ratio_adapter_over_floor",
                       [a / f for a, f in zip(times["adapter_cpu"], times["floor_cpu"]) if f > 0], "x")
            print(f"  {n} tokens, {len(ratios)} rounds: adapter / floor per round {', '.join(f'{r:.2f}' for r in ratios)} (load {loads[-1]:.1f})",
                  flush=True)

        # --- 200 wallets x 200 tokens (adapter only), and 500 eth_calls vs one multicall (interleaved)
        req200 = FetchRequest(wallets=tuple(WalletRef(w) for w in many_wallets), known_assets=known[:200], include_nfts=False)
        result200 = adapter.fetch(req200)
        assert len(result200.balances) == 200 * 201 and not result200.problems
        figures["adapter_200w_200t_eth_calls"] = (adapter.last_eth_calls, "eth_call")
        figures["adapter_200w_200t_http_requests"] = (result200.request_count, "requests")

        five = tokens[:500]
        data = "0x" + (BALANCE_OF + bytes(12) + bytes.fromhex(wallet[2:])).hex()

        def separate() -> None:
            for t in five:
                reply = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_call",
                                               "params": [{"to": t, "data": data}, hex(height)]}).json()
                assert len(reply["result"]) == 66

        multicall_data = "0x" + (AGGREGATE3 + encode(["(address,bool,bytes)[]"], [[
            (t, True, bytes.fromhex(data[2:])) for t in five]])).hex()

        def one_multicall() -> None:
            reply = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_call",
                                           "params": [{"to": MULTICALL3_ADDRESS, "data": multicall_data}, hex(height)]}).json()
            (results,) = decode(["(bool,bytes)[]"], bytes.fromhex(reply["result"][2:]))
            assert len(results) == 500

        times = interleaved({"separate": separate, "multicall": one_multicall, "adapter_200w": lambda: adapter.fetch(req200)})
        loads.append(os.getloadavg()[0])
        add_spread(figures, "adapter_200w_200t_s", times["adapter_200w"], "s")
        add_spread(figures, "separate_500_eth_calls_s", times["separate"], "s")
        add_spread(figures, "multicall_500_one_eth_call_s", times["multicall"], "s")
        add_spread(figures, "ratio_separate_over_multicall", [s / m for s, m in zip(times["separate"], times["multicall"])], "x")
    add_spread(figures, "load_average_1m", loads, "load")
    write_results("evm_balances", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
