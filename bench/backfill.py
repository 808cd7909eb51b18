"""Backfill of one year through the chain adapters' ``history()``: wall time, requests, pages and
requests per day of history (target: at most 2 per day per EVM chain for up to 500 tokens), for 1 EVM
wallet x 100 and x 500 tokens, 1 vpub with 100 used addresses (Bitcoin) and 1 Solana wallet with 1,000
transactions.

Each case builds its own local chain with a year of history (anvil blocks at daily timestamps; bcoin
blocks with the node clock set before each; LiteSVM transactions with the clock set before each), then
reads it page by page as the backfill job does (``HistoryRequest`` -> ``HistoryPage`` until ``done``,
the cursor through JSON), timing the reads only, and checks the result against what the setup wrote,
so a fast wrong answer cannot pass. Requests are counted at the endpoint (the adapter's own
``request_count``: each HTTP request; a JSON-RPC batch is one). The adapter-level figure: storing and
valuing the days (portfolio.history) is not in it.
Add a case: a function ``() -> dict of figures`` in ``CASES``.
Run: .venv/bin/python bench/backfill.py [case ...]  (every case: a few minutes on 2 cores; the results
file holds the cases of the last run only)
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from datetime import date, datetime, time as dt_time, timedelta, timezone as dt_timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from eth_abi import encode  # noqa: E402
from eth_utils import function_signature_to_4byte_selector, keccak  # noqa: E402

from bench._common import timer, write_results  # noqa: E402
from chains.base import FUNGIBLE, NATIVE, AssetRef, ChainConfig, EndpointConfig, FetchRequest, HistoryRequest, WalletRef  # noqa: E402
from chains.bitcoin.adapter import BitcoinAdapter  # noqa: E402
from chains.bitcoin.derivation import AccountKey  # noqa: E402
from chains.endpoints import EndpointHealth  # noqa: E402
from chains.evm.adapter import EvmAdapter  # noqa: E402
from chains.evm.address import to_checksum  # noqa: E402
from chains.history import daily_from_changes, read_all_pages, utc_day  # noqa: E402
from chains.solana.adapter import SolanaAdapter  # noqa: E402
from devnet.common import wait_until  # noqa: E402
from devnet.evm.node import CHAIN_ID, artifact, start_anvil  # noqa: E402

DAYS = 365
WALLET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # anvil dev account #1 (unlocked): it sends the transfers
SINK = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
DEPLOYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
BALANCES_SLOT = 5  # DemoToken storage: name, symbol, decimals, totalSupply, owner, balances
USED = 80  # receive addresses of the vpub that are paid once each
SPENDS = 20  # payments out of the vpub, each with its change on the next change address: 100 used addresses
SOL_TXS = 1_000
DAY = 86_400
MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"  # test vector seed


def _rpc(http: httpx.Client, url: str, method: str, params: list | None = None) -> Any:
    reply = http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).json()
    if reply.get("error"):
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def _noon(day: date) -> int:
    return int(datetime.combine(day, dt_time(12), tzinfo=dt_timezone.utc).timestamp())


def evm_year(url: str, tokens: int, today: date) -> tuple[list[str], str]:
    """``tokens`` ERC-20s (DemoToken code) holding a balance of WALLET, a price feed, and one block at
    noon of each of the last DAYS days with a transfer out of one token and a price update. Returns
    (token addresses, feed address)."""
    http = httpx.Client(timeout=60)
    code = artifact("DemoToken")["deployedBytecode"]
    addresses = [to_checksum("0x" + (0xB0 * 16**38 + i).to_bytes(20, "big").hex()) for i in range(tokens)]
    slot = "0x" + keccak(bytes.fromhex("00" * 12 + WALLET[2:]) + BALANCES_SLOT.to_bytes(32, "big")).hex()
    _rpc(http, url, "anvil_setTime", [_noon(today - timedelta(days=DAYS + 5))])
    for a in addresses:
        _rpc(http, url, "anvil_setCode", [a, code])
        _rpc(http, url, "anvil_setStorageAt", [a, slot, "0x" + (10**24).to_bytes(32, "big").hex()])
    feed_code = artifact("PriceFeed")["bytecode"] + encode(["uint8", "string", "int256"], [8, "ETH / USD", 2000 * 10**8]).hex()
    tx = _rpc(http, url, "eth_sendTransaction", [{"from": DEPLOYER, "data": feed_code, "gas": hex(3_000_000)}])
    receipt = wait_until(lambda: _rpc(http, url, "eth_getTransactionReceipt", [tx]), timeout_s=15, what="feed deployment")
    feed = to_checksum(receipt["contractAddress"])
    _rpc(http, url, "evm_setAutomine", [False])
    transfer = function_signature_to_4byte_selector("transfer(address,uint256)")
    set_answer = function_signature_to_4byte_selector("setAnswer(int256)")
    for k in range(DAYS):
        day = today - timedelta(days=DAYS - k)
        data = transfer + encode(["address", "uint256"], [SINK, 10**18 + k])
        _rpc(http, url, "eth_sendTransaction", [{"from": WALLET, "to": addresses[k % tokens], "data": "0x" + data.hex(), "gas": hex(100_000)}])
        data = set_answer + encode(["int256"], [(2000 + k) * 10**8])
        _rpc(http, url, "eth_sendTransaction", [{"from": DEPLOYER, "to": feed, "data": "0x" + data.hex(), "gas": hex(100_000)}])
        _rpc(http, url, "evm_mine", [{"timestamp": _noon(day)}])
    _rpc(http, url, "evm_setAutomine", [True])
    _rpc(http, url, "anvil_setTime", [int(time.time())])
    _rpc(http, url, "evm_mine", [])
    http.close()
    return addresses, feed


def evm_case(tokens: int) -> Callable[[], dict[str, tuple[float, str]]]:
    def run() -> dict[str, tuple[float, str]]:
        today = datetime.now(dt_timezone.utc).date()
        node = start_anvil(extra_args=("--gas-limit", "300000000"))
        try:
            addresses, feed = evm_year(node.url, tokens, today)
            chain = ChainConfig(slug="anvil", family="evm", network="devnet", chain_id=CHAIN_ID, native_symbol="ETH", log_scan_start=0)
            adapter = EvmAdapter(chain, [EndpointConfig(url=node.url, timeout_s=60)], health=EndpointHealth())
            known = (AssetRef(kind=NATIVE, address=None, symbol="ETH", name="Ether", decimals=18, oracle=feed),
                     *(AssetRef(kind=FUNGIBLE, address=a, symbol=f"T{i}", name=f"Token {i}", decimals=18, standard="erc20")
                       for i, a in enumerate(addresses)))
            since, until = today - timedelta(days=DAYS), today - timedelta(days=1)
            cursor: dict = {}
            pages = requests = days = transfers = 0
            with timer() as t:
                while True:
                    page = adapter.history(HistoryRequest(wallet=WalletRef(WALLET), since=since, until=until, known_assets=known, cursor=cursor))
                    pages, requests, days = pages + 1, requests + page.request_count, days + len(page.daily)
                    transfers += len(page.transfers)
                    cursor = dict(page.cursor)
                    if page.done:
                        break
            assert days == DAYS and transfers == DAYS and page.complete_from == since, (days, transfers, page.complete_from)
            assert all(len(page.daily[d]) == tokens + 1 for d in page.daily), "every token and the native coin read each day"
        finally:
            node.stop()
        return {
            f"evm_{tokens}_tokens_time": (t["s"], "s"),
            f"evm_{tokens}_tokens_requests": (requests, "requests"),
            f"evm_{tokens}_tokens_requests_per_day": (requests / days, "requests/day"),
            f"evm_{tokens}_tokens_pages": (pages, "pages"),
        }
    return run


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


CASES: dict[str, Callable[[], dict[str, tuple[float, str]]]] = {
    "evm_100": evm_case(100),
    "evm_500": evm_case(500),
    "bitcoin": bitcoin,
    "solana": solana,
}


def main(argv: list[str]) -> int:
    figures: dict[str, tuple[float, str]] = {"days": (DAYS, "days")}
    for name in argv or list(CASES):
        figures.update(CASES[name]())
    write_results("backfill", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
