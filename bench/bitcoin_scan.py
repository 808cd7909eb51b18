"""Benchmark: full vs incremental vpub scan (100 used addresses) on bcoin, against one request per address.

The four cases (full scan cold, full scan with derived addresses cached, incremental scan, the naive
baseline of one request per address) run once per round, the order rotated every round, over
BENCH_ROUNDS (7) rounds; min / median / max of each and the load average are written."""

from __future__ import annotations

import os
import statistics

import httpx

from _common import add_spread, sample_load, timer, write_results  # noqa: I001 - puts the repo root on sys.path

from chains.base import ChainConfig, EndpointConfig, FetchRequest, WalletRef
from chains.bitcoin.adapter import BitcoinAdapter
from chains.bitcoin.derivation import AccountKey, account_key
from devnet.bitcoin.node import start_bcoin
from devnet.bitcoin.scenario import _Client

USED = 100
CHANGE_USED = 10
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 7))
MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"  # test vector seed


def fund(node) -> str:
    """A vpub whose receive 0..99 and change 0..9 each received one payment (confirmed)."""
    c = _Client(node.url, node.wallet_url)
    miner = c.wallet("GET", "/wallet/primary/account/default")["receiveAddress"]
    c.mine_mature(450, miner)
    _, vpub = c.hd_wallet("bench", MNEMONIC)
    key = AccountKey(vpub, "regtest")
    outputs = [{"value": 10_000 + i, "address": key.address(0, i)} for i in range(USED)]
    outputs += [{"value": 20_000 + i, "address": key.address(1, i)} for i in range(CHANGE_USED)]
    tx = c.send("primary", outputs)
    c.mine(1, miner, (("primary", tx["hash"]),))
    return vpub


def main() -> None:
    with start_bcoin() as node:
        vpub = fund(node)
        chain = ChainConfig(slug="bitcoin-regtest", family="bitcoin", network="regtest", native_symbol="BTC", native_name="Bitcoin", native_decimals=8)
        endpoints = [EndpointConfig(url=node.url, timeout_s=60)]
        wallet = WalletRef(vpub, None, 20)

        full = BitcoinAdapter(chain, endpoints).fetch(FetchRequest(wallets=(wallet,)))  # warm-up, and the cursor
        assert full.balances[0].details["receive_used_max"] == USED - 1
        # Naive baseline: the same addresses the full scan checks, one GET /tx/address/:a each.
        cursor = full.cursors[vpub]
        addresses = cursor["receive"]["addresses"] + cursor["change"]["addresses"]
        results = {}

        def cold() -> None:
            account_key.cache_clear()  # cold: a fresh worker derives every address
            results["full"] = BitcoinAdapter(chain, endpoints).fetch(FetchRequest(wallets=(wallet,)))

        def warm() -> None:  # run right after cold(): derived addresses cached, as in a worker that synced it before
            BitcoinAdapter(chain, endpoints).fetch(FetchRequest(wallets=(wallet,)))

        def incremental() -> None:
            account_key.cache_clear()  # incremental: addresses come from the cursor, nothing to derive
            results["inc"] = BitcoinAdapter(chain, endpoints).fetch(FetchRequest(wallets=(wallet,), cursors=full.cursors))

        with httpx.Client(timeout=60) as http:
            def naive() -> None:
                http.get(node.url + "/").json()
                for a in addresses:
                    http.get(f"{node.url}/tx/address/{a}").json()

            units = [[("full", cold), ("warm", warm)], [("inc", incremental)], [("naive", naive)]]
            times: dict[str, list[float]] = {"full": [], "warm": [], "inc": [], "naive": []}
            loads = [sample_load()]
            for r in range(ROUNDS):
                for unit in units[r % len(units):] + units[:r % len(units)]:
                    for name, case in unit:
                        with timer() as t:
                            case()
                        times[name].append(t["s"])
                loads.append(sample_load())
        full, inc = results["full"], results["inc"]
        assert full.balances[0].amount == inc.balances[0].amount == sum(10_000 + i for i in range(USED)) + sum(20_000 + i for i in range(CHANGE_USED))
        naive_requests = 1 + len(addresses)
        inc_asked = len(cursor["with_history"]) + 2 * 20

    full_s, warm_s, inc_s, naive_s = (statistics.median(times[name]) for name in ("full", "warm", "inc", "naive"))
    spreads: dict[str, tuple[float, str]] = {"rounds": (ROUNDS, "rounds")}
    for name, label in (("full", "full_scan_cold_s"), ("warm", "full_scan_warm_s"), ("inc", "incremental_scan_s"), ("naive", "naive_s")):
        add_spread(spreads, label, times[name], "s")
    add_spread(spreads, "load_average_1m", loads, "load")
    write_results("bitcoin_scan", {
        **spreads,
        "used_addresses": (USED + CHANGE_USED, "addresses"),
        "addresses_within_gap_window": (len(addresses), "addresses"),
        "addresses_asked_incremental": (inc_asked, "addresses"),
        "full_scan_requests": (full.request_count, "requests"),
        "full_scan_wall_cold": (full_s, "s"),
        "full_scan_wall_warm_derivation_cache": (warm_s, "s"),
        "incremental_scan_requests": (inc.request_count, "requests"),
        "incremental_scan_wall": (inc_s, "s"),
        "naive_requests": (naive_requests, "requests"),
        "naive_wall": (naive_s, "s"),
        "naive_over_full_requests": (naive_requests / full.request_count, "x"),
        "naive_over_full_wall_warm": (naive_s / warm_s, "x"),
        "naive_over_incremental_wall": (naive_s / inc_s, "x"),
        "full_cold_over_incremental_wall": (full_s / inc_s, "x"),
    }, sizes={"used_addresses": USED + CHANGE_USED, "gap_limit": 20, "rounds": ROUNDS})


if __name__ == "__main__":
    main()
