"""Backfill of one year through the chain adapters' ``history()``: wall time, requests, pages and
requests per day of history (target: at most 2 per day per EVM chain for up to 500 tokens), for 1 EVM
wallet x 100 and x 500 tokens, 1 vpub with 100 used addresses (Bitcoin) and 1 Solana wallet with 1,000
transactions, each against a baseline of the same reads one per request.

Each chain gets its local node with a year of history (one anvil: 500 tokens, a block at noon of each
day with a transfer of one of the first 100 tokens and an oracle update; bcoin blocks with the node
clock set before each; LiteSVM transactions with the clock set before each). The subject reads it page
by page as the backfill job does (``HistoryRequest`` -> ``HistoryPage`` until ``done``, the cursor
through JSON) in a fresh adapter with the per-chain caches emptied (a fresh worker: EVM block times,
Bitcoin address derivation), and every read is checked against what the setup wrote, so a fast wrong
answer cannot pass. The baseline sends the requests the subject made (recorded once at a proxy or the
HTTP transport) one call per request, one after another, with a plain ``httpx.Client``, each answer
decoded as JSON and nothing else: JSON-RPC batches split into their calls, bcoin's ``POST /tx/address``
of many addresses into one ``GET /tx/address/<a>`` each. Subject and baseline of every case are
interleaved, the order rotated per round, over BENCH_ROUNDS (7) rounds; min / median / max. Requests
are counted at the endpoint (the adapter's own ``request_count``: each HTTP request; a JSON-RPC batch
is one). The adapter-level figure: storing and valuing the days (portfolio.history) is not in it.
Add a chain: a function ``(rounds) -> dict of figures`` in ``CASES``.
Run: .venv/bin/python bench/backfill.py [evm bitcoin solana]  (the results file holds the chains of the
last run only)
"""

from __future__ import annotations

import json
import os
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

from bench._common import add_spread, interleaved, timer, write_results  # noqa: E402
from chains.base import FUNGIBLE, NATIVE, AssetRef, ChainConfig, EndpointConfig, FetchRequest, HistoryRequest, WalletRef  # noqa: E402
from chains.bitcoin.adapter import BitcoinAdapter  # noqa: E402
from chains.bitcoin.backends.bcoin import BcoinBackend  # noqa: E402
from chains.bitcoin.derivation import AccountKey, account_key  # noqa: E402
from chains.endpoints import EndpointHealth  # noqa: E402
from chains.evm import history as evm_history  # noqa: E402
from chains.evm.adapter import EvmAdapter  # noqa: E402
from chains.evm.address import to_checksum  # noqa: E402
from chains.history import daily_from_changes, read_all_pages, utc_day  # noqa: E402
from chains.solana.adapter import SolanaAdapter  # noqa: E402
from devnet.common import rpc_batch, wait_until  # noqa: E402
from devnet.evm.node import CHAIN_ID, artifact, start_anvil  # noqa: E402
from tests.fixtures.proxy import RpcProxy  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", 7))

DAYS = 365
TOKENS = 500  # deployed; the 100-token case reads the first 100, which hold every transfer
TRANSFER_TOKENS = 100
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


def json_rpc_calls(payloads: list[Any]) -> list[dict]:
    """Every JSON-RPC call in recorded request bodies, batches opened."""
    return [c for p in payloads for c in (p if isinstance(p, list) else [p])]


def replay_json_rpc(url: str, calls: list[dict]) -> None:
    """The baseline: each call on its own request, one after another, the answer decoded as JSON."""
    with httpx.Client(timeout=60) as http:
        for i, call in enumerate(calls):
            reply = http.post(url, json={"jsonrpc": "2.0", "id": i, "method": call["method"], "params": call.get("params", [])})
            if "result" not in reply.json():
                raise RuntimeError(f"{call['method']} failed: {reply.text[:200]}")


class RecordingTransport(httpx.HTTPTransport):
    """Passes requests on and keeps (method, path, JSON body) of each (the Bitcoin baseline's source)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path, json.loads(request.content) if request.content else None))
        return super().handle_request(request)


def replay_bcoin(url: str, requests: list[tuple[str, str, Any]]) -> None:
    """The Bitcoin baseline: the recorded requests with every ``POST /tx/address`` of many addresses
    sent as one ``GET /tx/address/<a>`` per address, one after another, answers decoded as JSON."""
    with httpx.Client(timeout=60) as http:
        for method, path, body in requests:
            paths = [f"{path}/{a}" for a in body["addresses"]] if method == "POST" and path == "/tx/address" else [path]
            for one in paths:
                http.get(url.rstrip("/") + one).raise_for_status().json()


def _noon(day: date) -> int:
    return int(datetime.combine(day, dt_time(12), tzinfo=dt_timezone.utc).timestamp())


def evm_year(url: str, tokens: int, today: date) -> tuple[list[str], str]:
    """``tokens`` ERC-20s (DemoToken code) holding a balance of WALLET, a price feed, and one block at
    noon of each of the last DAYS days with a transfer out of one of the first TRANSFER_TOKENS tokens
    and a price update. Returns (token addresses, feed address)."""
    http = httpx.Client(timeout=60)
    code = artifact("DemoToken")["deployedBytecode"]
    addresses = [to_checksum("0x" + (0xB0 * 16**38 + i).to_bytes(20, "big").hex()) for i in range(tokens)]
    slot = "0x" + keccak(bytes.fromhex("00" * 12 + WALLET[2:]) + BALANCES_SLOT.to_bytes(32, "big")).hex()
    _rpc(http, url, "anvil_setTime", [_noon(today - timedelta(days=DAYS + 5))])
    balance = "0x" + (10**24).to_bytes(32, "big").hex()
    rpc_batch(url, [c for a in addresses for c in (("anvil_setCode", [a, code]), ("anvil_setStorageAt", [a, slot, balance]))], http=http)
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
        _rpc(http, url, "eth_sendTransaction", [{"from": WALLET, "to": addresses[k % TRANSFER_TOKENS], "data": "0x" + data.hex(), "gas": hex(100_000)}])
        data = set_answer + encode(["int256"], [(2000 + k) * 10**8])
        _rpc(http, url, "eth_sendTransaction", [{"from": DEPLOYER, "to": feed, "data": "0x" + data.hex(), "gas": hex(100_000)}])
        _rpc(http, url, "evm_mine", [{"timestamp": _noon(day)}])
    _rpc(http, url, "evm_setAutomine", [True])
    _rpc(http, url, "anvil_setTime", [int(time.time())])
    _rpc(http, url, "evm_mine", [])
    http.close()
    return addresses, feed


def evm(rounds: int) -> dict[str, tuple[float, str]]:
    """1 wallet x 100 tokens and x 500 tokens on one anvil, each against its baseline."""
    today = datetime.now(dt_timezone.utc).date()
    since, until = today - timedelta(days=DAYS), today - timedelta(days=1)
    out: dict[str, tuple[float, str]] = {}
    node = start_anvil(extra_args=("--gas-limit", "300000000"))
    proxy = RpcProxy(upstream=node.url).start()
    try:
        with timer() as setup:
            addresses, feed = evm_year(node.url, TOKENS, today)
        out["evm_setup_s"] = (setup["s"], "s")
        chain = ChainConfig(slug="anvil", family="evm", network="devnet", chain_id=CHAIN_ID, native_symbol="ETH", log_scan_start=0)
        native = AssetRef(kind=NATIVE, address=None, symbol="ETH", name="Ether", decimals=18, oracle=feed)

        def read(tokens: int, url: str) -> tuple[int, int]:
            """The subject: a cold backfill of ``tokens`` tokens; (requests, pages), checked."""
            evm_history._SAMPLES.clear()  # a fresh worker: no block times known yet
            adapter = EvmAdapter(chain, [EndpointConfig(url=url, timeout_s=60)], health=EndpointHealth())
            known = (native, *(AssetRef(kind=FUNGIBLE, address=a, symbol=f"T{i}", name=f"Token {i}", decimals=18, standard="erc20")
                               for i, a in enumerate(addresses[:tokens])))
            page, pages = read_all_pages(adapter.history, HistoryRequest(wallet=WalletRef(WALLET), since=since, until=until,
                                                                         known_assets=known))
            assert len(page.daily) == DAYS and len(page.transfers) == DAYS and page.complete_from == since, (
                len(page.daily), len(page.transfers), page.complete_from)
            assert all(len(page.daily[d]) == tokens + 1 for d in page.daily), "every token and the native coin read each day"
            return page.request_count, pages

        cases: dict[str, Callable[[], Any]] = {}
        for tokens in (100, TOKENS):
            first = len(proxy.payloads)
            requests, pages = read(tokens, proxy.url)  # recorded: the baseline's calls
            calls = json_rpc_calls(proxy.payloads[first:])
            out.update({f"evm_{tokens}_tokens_requests": (requests, "requests"),
                        f"evm_{tokens}_tokens_requests_per_day": (requests / DAYS, "requests/day"),
                        f"evm_{tokens}_tokens_pages": (pages, "pages"),
                        f"evm_{tokens}_tokens_baseline_requests": (len(calls), "requests")})
            cases[f"evm_{tokens}_tokens"] = lambda tokens=tokens: read(tokens, node.url)
            cases[f"evm_{tokens}_tokens_baseline"] = lambda calls=calls: replay_json_rpc(node.url, calls)
        times = interleaved(cases, rounds)
    finally:
        proxy.stop()
        node.stop()
    for name, values in times.items():
        add_spread(out, f"{name}_s", values, "s")
    for tokens in (100, TOKENS):
        ratios = [b / s for b, s in zip(times[f"evm_{tokens}_tokens_baseline"], times[f"evm_{tokens}_tokens"])]
        add_spread(out, f"evm_{tokens}_tokens_baseline_over_subject", ratios, "x")
    return out


def bitcoin(rounds: int) -> dict[str, tuple[float, str]]:
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
        endpoints = [EndpointConfig(url=node.url, timeout_s=60)]
        wallet = WalletRef(vpub, None, 20)
        today = date.today()
        since = today - timedelta(days=365)
        expected = daily_from_changes(((at, {NATIVE: d}) for at, d in ledger), max(since, utc_day(ledger[0][0])), today)

        def read(http: httpx.Client | None = None) -> tuple[int, int, int]:
            """The subject: a backfill in a fresh worker (addresses derived again); (requests, pages, days), checked."""
            account_key.cache_clear()
            backend = BcoinBackend(endpoints, http=http, network="regtest")
            page, pages = read_all_pages(BitcoinAdapter(chain, endpoints, backend=backend).history,
                                         HistoryRequest(wallet=wallet, since=since, until=today))
            if page.daily != expected or len(page.transfers) != len(ledger):
                raise SystemExit("bitcoin backfill does not match the ledger")
            return page.request_count, pages, len(page.daily)

        recorder = RecordingTransport()
        requests, pages, days = read(httpx.Client(transport=recorder))
        baseline_requests = sum(len(b["addresses"]) if m == "POST" else 1 for m, _, b in recorder.requests)
        times = interleaved({"btc_backfill": read, "btc_baseline": lambda: replay_bcoin(node.url, recorder.requests)}, rounds)
        (found,) = BitcoinAdapter(chain, endpoints).fetch(FetchRequest(wallets=(wallet,))).balances
        used = len(found.details["addresses"])
    out = {
        "btc_used_addresses": (used, "addresses"),
        "btc_transactions": (len(ledger), "transactions"),
        "btc_days": (days, "days"),
        "btc_setup_s": (setup["s"], "s"),
        "btc_requests": (requests, "requests"),
        "btc_pages": (pages, "pages"),
        "btc_requests_per_day": (requests / days, "requests/day"),
        "btc_baseline_requests": (baseline_requests, "requests"),
    }
    for name, values in times.items():
        add_spread(out, f"{name}_s", values, "s")
    add_spread(out, "btc_baseline_over_subject", [b / s for b, s in zip(times["btc_baseline"], times["btc_backfill"])], "x")
    return out


def solana(rounds: int) -> dict[str, tuple[float, str]]:
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
        expected = daily_from_changes(((at, {NATIVE: d}) for at, d in ledger), max(since, utc_day(ledger[0][0])), today)
        out: dict[str, tuple[float, str]] = {"sol_transactions": (len(ledger), "transactions"), "sol_setup_s": (setup["s"], "s")}

        def read(extra: dict, endpoint: str) -> tuple[int, int, int]:
            """The subject: one backfill; (requests, pages, days), checked against the ledger."""
            adapter = SolanaAdapter(replace(chain, extra={**chain.extra, **extra}), [EndpointConfig(url=endpoint, timeout_s=60)])
            page, pages = read_all_pages(adapter.history, HistoryRequest(wallet=WalletRef(str(wallet.pubkey())), since=since, until=today))
            if page.daily != expected or len(page.transfers) != len(ledger):
                raise SystemExit("solana backfill does not match the ledger")
            return page.request_count, pages, len(page.daily)

        proxy = RpcProxy(upstream=url).start()
        try:
            cases: dict[str, Callable[[], Any]] = {}
            for label, extra in (("", {}), ("_small_pages", {"history_signatures": 100, "history_page_txs": 100})):
                first = len(proxy.payloads)
                requests, pages, days = read(extra, proxy.url)
                out.update({f"sol_requests{label}": (requests, "requests"), f"sol_pages{label}": (pages, "pages"),
                            f"sol_requests_per_day{label}": (requests / days, "requests/day")})
                cases[f"sol_backfill{label}"] = lambda extra=extra: read(extra, url)
                if not label:
                    calls = json_rpc_calls(proxy.payloads[first:])
                    out["sol_baseline_requests"] = (len(calls), "requests")
        finally:
            proxy.stop()
        cases["sol_baseline"] = lambda: replay_json_rpc(url, calls)
        times = interleaved(cases, rounds)
    out["sol_days"] = (days, "days")
    for name, values in times.items():
        add_spread(out, f"{name}_s", values, "s")
    add_spread(out, "sol_baseline_over_subject", [b / s for b, s in zip(times["sol_baseline"], times["sol_backfill"])], "x")
    return out


CASES: dict[str, Callable[[int], dict[str, tuple[float, str]]]] = {
    "evm": evm,
    "bitcoin": bitcoin,
    "solana": solana,
}


def main(argv: list[str]) -> int:
    figures: dict[str, tuple[float, str]] = {"days": (DAYS, "days"), "rounds": (ROUNDS, "rounds")}
    names = argv or list(CASES)
    for name in names:
        figures.update(CASES[name](ROUNDS))
    write_results("backfill", figures, sizes={"days": DAYS, "rounds": ROUNDS, "chains": names, "evm_tokens": [100, TOKENS],
                                              "btc_used_addresses": USED + SPENDS, "sol_transactions": SOL_TXS})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
