"""Benchmark: full vs incremental vpub scan (100 used addresses) on bcoin, against one request per address."""

from __future__ import annotations

import statistics

import httpx

from _common import timer, write_results  # noqa: I001 - puts the repo root on sys.path

from chains.base import ChainConfig, EndpointConfig, FetchRequest, WalletRef
from chains.bitcoin.adapter import BitcoinAdapter
from chains.bitcoin.derivation import AccountKey, account_key
from devnet.bitcoin.node import start_bcoin
from devnet.bitcoin.scenario import _Client

USED = 100
CHANGE_USED = 10
RUNS = 3
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

        full_times, warm_times, inc_times = [], [], []
        for _ in range(RUNS):
            account_key.cache_clear()  # cold: a fresh worker derives every address
            with timer() as t:
                full = BitcoinAdapter(chain, endpoints).fetch(FetchRequest(wallets=(wallet,)))
            full_times.append(t["s"])
            with timer() as t:
                BitcoinAdapter(chain, endpoints).fetch(FetchRequest(wallets=(wallet,)))
            warm_times.append(t["s"])
            account_key.cache_clear()  # incremental: addresses come from the cursor, nothing to derive
            with timer() as t:
                inc = BitcoinAdapter(chain, endpoints).fetch(FetchRequest(wallets=(wallet,), cursors=full.cursors))
            inc_times.append(t["s"])
        assert full.balances[0].amount == inc.balances[0].amount == sum(10_000 + i for i in range(USED)) + sum(20_000 + i for i in range(CHANGE_USED))
        assert full.balances[0].details["receive_used_max"] == USED - 1

        # Naive baseline: the same addresses the full scan checks, one GET /tx/address/:a each.
        cursor = full.cursors[vpub]
        addresses = cursor["receive"]["addresses"] + cursor["change"]["addresses"]
        naive_times = []
        with httpx.Client(timeout=60) as http:
            for _ in range(RUNS):
                with timer() as t:
                    http.get(node.url + "/").json()
                    for a in addresses:
                        http.get(f"{node.url}/tx/address/{a}").json()
                naive_times.append(t["s"])
        naive_requests = 1 + len(addresses)
        inc_asked = len(cursor["with_history"]) + 2 * 20

    full_s, warm_s, inc_s, naive_s = (statistics.median(x) for x in (full_times, warm_times, inc_times, naive_times))
    write_results("bitcoin_scan", {
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
    })


if __name__ == "__main__":
    main()
