"""EVM balance reads on a local anvil: EvmAdapter vs a hand-packed Multicall3 floor, and multicall vs eth_calls.

The floor is one prebuilt aggregate3 eth_call of the same 5,000 balanceOf (calldata built outside
the timer, answer not decoded): the node's work plus one round trip. The adapter's time is a full
fetch: chain id + head, the Transfer-log scan, encoding, 11 chunks of 500 calls, decoding.
Run: .venv/bin/python bench/evm_balances.py (starts its own anvil; shares the machine, so the
floor and the adapter are timed alternately and medians are reported).
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from eth_abi import decode, encode  # noqa: E402
from eth_utils import keccak  # noqa: E402

from bench._common import timer, write_results  # noqa: E402
from chains.base import FUNGIBLE, AssetRef, ChainConfig, EndpointConfig, FetchRequest, WalletRef  # noqa: E402
from chains.endpoints import EndpointHealth  # noqa: E402
from chains.evm.adapter import EvmAdapter  # noqa: E402
from chains.evm.address import to_checksum  # noqa: E402
from devnet.evm.node import MULTICALL3_ADDRESS, artifact, start_anvil  # noqa: E402

REPEAT = 9
BALANCES_SLOT = 5  # DemoToken storage: name, symbol, decimals, totalSupply, owner, balances
BALANCE_OF = bytes.fromhex("70a08231")
AGGREGATE3 = bytes.fromhex("82ad56cb")


def address(prefix: int, i: int) -> str:
    return to_checksum("0x" + (prefix * 16**36 + i).to_bytes(20, "big").hex())


def post_batch(client: httpx.Client, url: str, calls: list[tuple[str, list]]) -> None:
    for start in range(0, len(calls), 250):  # anvil refuses very large request bodies
        part = calls[start:start + 250]
        replies = client.post(url, json=[{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                                         for i, (m, p) in enumerate(part)]).json()
        if isinstance(replies, dict):
            raise RuntimeError(replies)
        bad = [r for r in replies if "error" in r]
        if bad:
            raise RuntimeError(bad[0])


def install(client: httpx.Client, url: str, tokens: list[str], wallets: list[str]) -> None:
    """Real ERC-20 runtime code at every token address, and a balance for every wallet in its storage."""
    code = artifact("DemoToken")["deployedBytecode"]
    calls: list[tuple[str, list]] = [("anvil_setCode", [t, code]) for t in tokens]
    for w_i, w in enumerate(wallets):
        slot = "0x" + keccak(bytes.fromhex("00" * 12 + w[2:]) + BALANCES_SLOT.to_bytes(32, "big")).hex()
        value = "0x" + (10**18 + w_i).to_bytes(32, "big").hex()
        calls += [("anvil_setStorageAt", [t, slot, value]) for t in tokens]
    post_batch(client, url, calls)


def interleaved(a, b, rounds: int = REPEAT) -> tuple[list[float], list[float]]:
    """Time ``a`` and ``b`` alternately (after a warm-up) so both see the same machine load."""
    a(), b()
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(rounds):
        for fn, out in ((a, ta), (b, tb)):
            with timer() as t:
                fn()
            out.append(t["s"])
    return ta, tb


def median_time(fn) -> float:
    times = []
    fn()  # warm up
    for _ in range(REPEAT):
        with timer() as t:
            fn()
        times.append(t["s"])
    return statistics.median(times)


def main() -> int:
    figures: dict[str, tuple[float, str]] = {}
    with start_anvil(extra_args=("--gas-limit", "1000000000", "--no-request-size-limit")) as node, httpx.Client(timeout=120) as client:
        url = node.url
        tokens = [address(0xA, i) for i in range(5000)]
        wallet = address(0xC, 1)
        many_wallets = [address(0xD, i) for i in range(200)]
        install(client, url, tokens, [wallet])
        install(client, url, tokens[:200], many_wallets)
        height = int(client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}).json()["result"], 16)

        chain = ChainConfig(slug="anvil", family="evm", network="devnet", chain_id=31337, native_symbol="ETH",
                            native_name="Ether", log_scan_start=0)
        known = tuple(AssetRef(kind=FUNGIBLE, address=t, symbol=f"T{i}", name=f"T{i}", decimals=18, standard="erc20")
                      for i, t in enumerate(tokens))

        # --- 1 wallet x 5,000 tokens: adapter (fresh cursors every time: includes the log scan) vs floor
        adapter = EvmAdapter(chain, [EndpointConfig(url=url, timeout_s=120)], health=EndpointHealth())
        req = FetchRequest(wallets=(WalletRef(wallet),), known_assets=known, include_nfts=False)
        result = adapter.fetch(req)
        assert len(result.balances) == 5001 and not result.problems, result.problems
        figures["adapter_1w_5000t_eth_calls"] = (adapter.last_eth_calls, "eth_call")
        figures["adapter_1w_5000t_http_requests"] = (result.request_count, "requests")

        calldata = "0x" + (AGGREGATE3 + encode(["(address,bool,bytes)[]"], [[
            (t, True, BALANCE_OF + bytes(12) + bytes.fromhex(wallet[2:])) for t in tokens]])).hex()

        def floor() -> None:
            reply = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_call",
                                           "params": [{"to": MULTICALL3_ADDRESS, "data": calldata}, hex(height)]}).json()
            if "result" not in reply:
                raise RuntimeError(reply)
            raw = bytes.fromhex(reply["result"][2:])
            assert len(raw) > 5000 * 64

        adapter_times, floor_times = interleaved(lambda: adapter.fetch(req), floor)
        adapter_s, floor_s = statistics.median(adapter_times), statistics.median(floor_times)
        figures["adapter_1w_5000t_s"] = (adapter_s, "s")
        figures["floor_1w_5000t_single_aggregate3_s"] = (floor_s, "s")
        figures["ratio_adapter_over_floor"] = (adapter_s / floor_s, "x")
        figures["ratio_adapter_over_floor_best_runs"] = (min(adapter_times) / min(floor_times), "x")

        # --- 200 wallets x 200 tokens
        known200 = known[:200]
        req200 = FetchRequest(wallets=tuple(WalletRef(w) for w in many_wallets), known_assets=known200, include_nfts=False)
        result200 = adapter.fetch(req200)
        assert len(result200.balances) == 200 * 201 and not result200.problems
        figures["adapter_200w_200t_s"] = (median_time(lambda: adapter.fetch(req200)), "s")
        figures["adapter_200w_200t_eth_calls"] = (adapter.last_eth_calls, "eth_call")
        figures["adapter_200w_200t_http_requests"] = (result200.request_count, "requests")

        # --- baseline: 500 balanceOf as 500 eth_calls vs one aggregate3
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

        sep_s = median_time(separate)
        multi_s = median_time(one_multicall)
        figures["separate_500_eth_calls_s"] = (sep_s, "s")
        figures["multicall_500_one_eth_call_s"] = (multi_s, "s")
        figures["ratio_separate_over_multicall"] = (sep_s / multi_s, "x")
    figures["load_average_1m_at_end"] = (os.getloadavg()[0], "load")
    write_results("evm_balances", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
