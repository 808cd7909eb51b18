"""Benchmark: history backfill of one year on Bitcoin (1 vpub, 100 used addresses) and Solana (1 wallet,
1,000 transactions): wall time, requests, pages and requests per day of history.

Each chain's history is built on its devnet first, spread over the past year (bcoin blocks with the
node clock set before each; LiteSVM transactions with the clock set before each), then backfilled
page by page as the backfill job does (cursor through JSON). The result is checked against what the
setup wrote, so a fast wrong answer cannot pass. Requests are counted at the endpoint (the adapter's
own ``request_count``, which counts each HTTP request; a JSON-RPC batch is one).
Run: .venv/bin/python bench/backfill_chains.py  (about a minute on 2 cores).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import timer, write_results  # noqa: E402
from chains.base import NATIVE, ChainConfig, EndpointConfig, FetchRequest, HistoryRequest, WalletRef  # noqa: E402
from chains.bitcoin.adapter import BitcoinAdapter  # noqa: E402
from chains.bitcoin.derivation import AccountKey  # noqa: E402
from chains.history import daily_from_changes, read_all_pages, utc_day  # noqa: E402
from chains.solana.adapter import SolanaAdapter  # noqa: E402

USED = 80  # receive addresses of the vpub that are paid once each
SPENDS = 20  # payments out of the vpub, each with its change on the next change address: 100 used addresses
SOL_TXS = 1_000
DAY = 86_400
MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"  # test vector seed


def backfill(adapter, wallet: WalletRef, since: date, until: date):
    page, pages = read_all_pages(adapter.history, HistoryRequest(wallet=wallet, since=since, until=until))
    return page.daily, page.transfers, pages, page.request_count


def bitcoin() -> dict[str, tuple[float, str]]:
    from devnet.bitcoin.node import start_bcoin
    from devnet.bitcoin.scenario import _Client

    with start_bcoin() as node:
        c = _Client(node.url, node.wallet_url)
        miner = c.wallet("GET", "/wallet/primary/account/default")["receiveAddress"]
        start = int(time.time()) - 365 * DAY
        with timer() as setup:
            c.mine_mature(450, miner, at=start - DAY)
            _, vpub = c.hd_wallet("bench", MNEMONIC)
            key = AccountKey(vpub, "regtest")
            ledger: list[tuple[int, int]] = []
            spend_every = USED // SPENDS
            for i in range(USED):
                at = start + i * 365 * DAY // (USED + 1)
                tx = c.send("primary", [{"value": 5_000_000 + i, "address": key.address(0, i)}])
                ledger.append((c.mine(1, miner, (("primary", tx["hash"]), ("bench", tx["hash"])), at=at), 5_000_000 + i))
                if i % spend_every == spend_every - 1:
                    tx = c.send("bench", [{"value": 1_000_000 + i, "address": miner}])
                    ledger.append((c.mine(1, miner, (("bench", tx["hash"]),), at=at + 3600), -(1_000_000 + i) - tx["fee"]))
            c.rpc("setmocktime", [int(time.time())])
        chain = ChainConfig(slug="bitcoin-regtest", family="bitcoin", network="regtest", native_symbol="BTC",
                            native_name="Bitcoin", native_decimals=8)
        today = date.today()
        since = today - timedelta(days=365)
        with timer() as t:
            daily, transfers, pages, requests = backfill(BitcoinAdapter(chain, [EndpointConfig(url=node.url, timeout_s=60)]),
                                                            WalletRef(vpub, None, 20), since, today)
        expected = daily_from_changes(((at, {NATIVE: d}) for at, d in ledger), max(since, utc_day(ledger[0][0])), today)
        if daily != expected or len(transfers) != len(ledger):
            raise SystemExit("bitcoin backfill does not match the ledger")
        (found,) = BitcoinAdapter(chain, [EndpointConfig(url=node.url, timeout_s=60)]).fetch(
            FetchRequest(wallets=(WalletRef(vpub, None, 20),))).balances
        used = len(found.details["addresses"])
        return {
            "btc_used_addresses": (used, "addresses"),
            "btc_transactions": (len(ledger), "transactions"),
            "btc_days": (len(daily), "days"),
            "btc_setup_s": (setup["s"], "s"),
            "btc_backfill_s": (t["s"], "s"),
            "btc_requests": (requests, "requests"),
            "btc_pages": (pages, "pages"),
            "btc_requests_per_day": (requests / len(daily), "requests/day"),
        }


def solana() -> dict[str, tuple[float, str]]:
    from solders.system_program import TransferParams, transfer

    from devnet.solana.node import start_solana
    from devnet.solana.scenario import LAMPORTS_PER_SIGNATURE, _Builder, keypair, rpc

    with start_solana() as node:
        url = node.url
        wallet, other = keypair("bench-history"), keypair("bench-history-peer")
        start = int(time.time()) - 365 * DAY
        with timer() as setup:
            rpc(url, "devnet_setClock", [start])
            ledger: list[tuple[int, int]] = []
            for who in (wallet, other):
                rpc(url, "requestAirdrop", [str(who.pubkey()), 1_000 * 10**9])
            ledger.append((start, 1_000 * 10**9))
            me, peer = _Builder(url, wallet), _Builder(url, other)
            for i in range(SOL_TXS - 1):
                at = rpc(url, "devnet_setClock", [start + (i + 1) * 365 * DAY // SOL_TXS])
                amount = 1_000_000 + i
                if i % 2:
                    me.send([transfer(TransferParams(from_pubkey=wallet.pubkey(), to_pubkey=other.pubkey(), lamports=amount))])
                    ledger.append((at, -amount - LAMPORTS_PER_SIGNATURE))
                else:
                    peer.send([transfer(TransferParams(from_pubkey=other.pubkey(), to_pubkey=wallet.pubkey(), lamports=amount))])
                    ledger.append((at, amount))
            rpc(url, "devnet_setClock", [int(time.time())])
        chain = ChainConfig(slug="solana-local", family="solana", network="devnet", native_symbol="SOL", native_name="Solana",
                            native_decimals=9, extra={"genesis_hash": rpc(url, "getGenesisHash")})
        today = date.today()
        since = today - timedelta(days=365)
        out: dict[str, tuple[float, str]] = {"sol_transactions": (len(ledger), "transactions"), "sol_setup_s": (setup["s"], "s")}
        for label, extra in (("", {}), ("_small_pages", {"history_signatures": 100, "history_page_txs": 100})):
            adapter = SolanaAdapter(replace(chain, extra={**chain.extra, **extra}), [EndpointConfig(url=url, timeout_s=60)])
            with timer() as t:
                daily, transfers, pages, requests = backfill(adapter, WalletRef(str(wallet.pubkey())), since, today)
            expected = daily_from_changes(((at, {NATIVE: d}) for at, d in ledger), max(since, utc_day(ledger[0][0])), today)
            if daily != expected or len(transfers) != len(ledger):
                raise SystemExit("solana backfill does not match the ledger")
            out.update({
                f"sol_backfill{label}_s": (t["s"], "s"),
                f"sol_requests{label}": (requests, "requests"),
                f"sol_pages{label}": (pages, "pages"),
                f"sol_requests_per_day{label}": (requests / len(daily), "requests/day"),
            })
        out["sol_days"] = (len(daily), "days")
        return out


def main() -> None:
    figures = {**bitcoin(), **solana()}
    write_results("backfill_chains", figures)


if __name__ == "__main__":
    main()
