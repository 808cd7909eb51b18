"""Put known Bitcoin balances on a bcoin regtest node: single addresses of each type and a BIP-84 vpub
account with a change spend, a gap inside and one past the gap limit, and unconfirmed payments.

The blocks carry a year of history: the node's clock is set (``setmocktime``) before each block, so
the coins arrive a year ago and the vpub account pays and is paid on days spread over the year; each
wallet's ``ledger`` lists its confirmed balance changes as ``[block time, satoshis]``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import httpx

from chains.bitcoin.address import encode_address
from chains.bitcoin.codec import b58decode_check, b58encode_check, taproot_output_key
from chains.bitcoin.derivation import AccountKey
from devnet.common import wait_until

# Test-only seed: it lives in this scenario and in the node's in-memory demo wallet, nowhere else.
DEMO_MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
FEE_RATE = 2000  # sat/kvB: explicit, bcoin cannot estimate on an empty regtest chain
SEGWIT_HEIGHT = 432
GAP_LIMIT = 20
DAY = 86_400
# The vpub account's history, days after the first funding: (day, receive index paid, satoshis) for
# payments in, (day, None, satoshis) for payments out to the miner. The receive indexes stay below
# 15 (the scenario's gap demo); payments in are larger than the 1/0 change coin, so bcoin's
# largest-first coin selection never spends that coin.
HD_HISTORY = (
    (21, 1, 300_000_000), (48, None, 40_000_000), (75, 3, 250_000_000), (103, None, 120_000_000),
    (131, 5, 400_000_000), (162, None, 75_000_000), (190, 7, 220_000_000), (224, None, 310_000_000),
    (257, 9, 180_000_000), (288, None, 64_000_000), (316, 11, 500_000_000), (349, None, 99_000_000),
)
GAP_DAY = 240

CHAIN = {
    "slug": "bitcoin-regtest",
    "name": "Bitcoin (regtest)",
    "network": "regtest",
    "native_symbol": "BTC",
    "native_name": "Bitcoin",
    "native_decimals": 8,
}

# Wallet URL of nodes started by devnet.bitcoin.node in this process (url -> wallet_url).
WALLET_URLS: dict[str, str] = {}


class _Client:
    def __init__(self, url: str, wallet_url: str) -> None:
        self.url, self.wallet_url = url.rstrip("/"), wallet_url.rstrip("/")
        self.http = httpx.Client(timeout=120)

    def rpc(self, method: str, params: list | None = None) -> Any:
        reply = self.http.post(self.url, json={"method": method, "params": params or []}).json()
        if reply.get("error"):
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def wallet(self, method: str, path: str, body: dict | None = None) -> Any:
        response = self.http.request(method, self.wallet_url + path, json=body)
        if response.status_code >= 400:
            raise RuntimeError(f"wallet {method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()

    def mine(self, blocks: int, address: str, confirm: tuple[tuple[str, str], ...] = (), *, at: int | None = None) -> int:
        """Mine (with the node's clock set to ``at`` first, if given), then wait until the wallet layer
        (asynchronous) has seen ``confirm`` (wallet, txid) pairs confirmed: spending before it catches
        up builds transactions bcoin's mempool rejects. Returns the last block's time."""
        if at is not None:
            self.rpc("setmocktime", [at])
        hashes = self.rpc("generatetoaddress", [blocks, address])
        for wallet, txid in confirm:
            wait_until(lambda: self.wallet("GET", f"/wallet/{wallet}/tx/{txid}")["height"] >= 0, timeout_s=30, what="wallet sync")
        return int(self.http.get(f"{self.url}/block/{hashes[-1]}").json()["time"])

    def mine_mature(self, blocks: int, address: str, *, at: int | None = None) -> None:
        """Mine ``blocks`` to ``address`` of the primary wallet (clock at ``at``, if given) and wait until
        that wallet has seen them all (coinbases it can spend once mature)."""
        before = self.wallet("GET", "/wallet/primary/balance")["tx"]
        self.mine(blocks, address, at=at)
        wait_until(lambda: self.wallet("GET", "/wallet/primary/balance")["tx"] >= before + blocks, timeout_s=60, what="wallet sync")

    def hd_wallet(self, name: str, mnemonic: str) -> tuple[str, str]:
        """Create the wallet ``name`` from ``mnemonic`` (bcoin's witness account m/44'/1'/0'); returns its
        account key as bcoin gives it (tpub) and as the BIP-84 vpub of the same key."""
        self.wallet("PUT", f"/wallet/{name}", {"mnemonic": mnemonic, "witness": True})
        tpub = self.wallet("GET", f"/wallet/{name}/account/default")["accountKey"]
        return tpub, b58encode_check(bytes.fromhex("045f1cf6") + b58decode_check(tpub)[4:])

    def send(self, wallet: str, outputs: list[dict]) -> dict:
        """Pay ``outputs`` from ``wallet`` and check the tx really reached the mempool (bcoin returns a
        txid even for a rejected transaction)."""
        tx = self.wallet("POST", f"/wallet/{wallet}/send", {"outputs": outputs, "rate": FEE_RATE})
        if tx["hash"] not in self.http.get(self.url + "/mempool").json():
            raise RuntimeError(f"transaction {tx['hash']} was not accepted into the mempool")
        return tx


def _wallet(address: str, label: str, script_type: str | None, confirmed: int, unconfirmed: int, utxos: int, txs: int,
            ledger: list[list[int]], **notes: Any) -> dict:
    entry = {
        "address": address,
        "label": label,
        "script_type": script_type,
        "gap_limit": GAP_LIMIT,
        "balances": {"native": str(confirmed)},
        "unconfirmed": {"native": str(unconfirmed)},
        "utxo_count": utxos,
        "tx_count": txs,
        "ledger": ledger,
    }
    if sum(delta for _, delta in ledger) != confirmed:
        raise RuntimeError(f"{label}: the ledger does not add up to the confirmed balance")
    if notes:
        entry["notes"] = notes
    return entry


def run_scenario(url: str, *, wallet_url: str | None = None) -> dict:
    """Fund the demo wallets on a fresh bcoin regtest node at ``url`` and return the expectations.

    ``wallet_url`` is the node's wallet API (default: the one ``start_bcoin`` recorded, else port+1).
    Raises ``RuntimeError`` if the node refuses a step."""
    if wallet_url is None:
        wallet_url = WALLET_URLS.get(url.rstrip("/"))
    if wallet_url is None:
        host, _, port = url.rstrip("/").rpartition(":")
        wallet_url = f"{host}:{int(port) + 1}"
    c = _Client(url, wallet_url)

    miner = c.wallet("GET", "/wallet/primary/account/default")["receiveAddress"]
    now = int(time.time())
    start = now - 365 * DAY  # the first payment to the demo wallets, a year ago
    height = c.http.get(c.url + "/").json()["chain"]["height"]
    if height < SEGWIT_HEIGHT + 10:
        c.mine_mature(SEGWIT_HEIGHT + 10 - height, miner, at=start - 2 * DAY)  # segwit active, plenty of mature coinbases
    else:
        start = max(start, int(c.http.get(f"{c.url}/block/{height}").json()["time"]) + DAY)

    # The demo HD account: bcoin's witness account m/44'/1'/0' (p2wpkh on 0/i and 1/i).
    tpub, vpub = c.hd_wallet("demo", DEMO_MNEMONIC)
    hd = AccountKey(vpub, "regtest")
    if hd.address(0, 0) != c.wallet("GET", "/wallet/demo/account/default")["receiveAddress"]:
        raise RuntimeError("derived vpub address differs from bcoin's demo wallet")

    # Single addresses from keys of an unrelated branch (5/i) of the same account: watch-only demos.
    pub = [hd._branch(5).child_public(i).public_byte for i in range(4)]
    p2pkh = encode_address(pub[0], "p2pkh", "regtest")
    p2sh = encode_address(pub[1], "p2sh-p2wpkh", "regtest")
    p2wpkh = encode_address(pub[2], "p2wpkh", "regtest")
    p2tr = encode_address(pub[3], "p2tr", "regtest")
    p2tr_script = "5120" + taproot_output_key(pub[3]).hex()  # bcoin 1.0.2 cannot parse bech32m: pay the script

    funding = c.send("primary", [
        {"value": 100_000_000, "address": p2pkh},
        {"value": 50_000_000, "address": p2sh},
        {"value": 25_000_000, "address": p2wpkh},
        {"value": 30_000_000, "script": p2tr_script},
        {"value": 200_000_000, "address": hd.address(0, 0)},
    ])
    t = c.mine(1, miner, (("primary", funding["hash"]), ("demo", funding["hash"])), at=start)
    ledgers: dict[str, list[list[int]]] = {p2pkh: [[t, 100_000_000]], p2sh: [[t, 50_000_000]],
                                           p2wpkh: [[t, 25_000_000]], p2tr: [[t, 30_000_000]], vpub: [[t, 200_000_000]]}
    hd_txs = 1

    # Spend from the HD account so change lands on 1/0.
    spend = c.send("demo", [{"value": 50_000_000, "address": miner}])
    change = [o for o in spend["outputs"] if o["address"] == hd.address(1, 0)]
    if len(change) != 1:
        raise RuntimeError("the demo spend did not pay change to 1/0")
    change_value = change[0]["value"]
    if change_value != 200_000_000 - 50_000_000 - spend["fee"]:
        raise RuntimeError("unexpected change amount")
    t = c.mine(1, miner, (("demo", spend["hash"]),), at=start + 9 * DAY + 3600)
    ledgers[vpub].append([t, -50_000_000 - spend["fee"]])
    hd_txs += 1

    # A year of payments in (to several receive addresses) and out (with change on 1/1, 1/2, ...),
    # and on GAP_DAY a gap inside the limit (0/15: found) and one past it (0/40 with gap 20: not found).
    events = [(day, index, value) for day, index, value in HD_HISTORY] + [(GAP_DAY, "gap", 0)]
    for day, index, value in sorted(events, key=lambda e: e[0]):
        at = start + day * DAY + 3600 * (day % 20)
        if index == "gap":
            tx = c.send("primary", [
                {"value": 70_000_000, "address": hd.address(0, 15)},
                {"value": 90_000_000, "address": hd.address(0, 40)},
            ])
            wallet, delta = "primary", 70_000_000
        elif index is None:
            tx = c.send("demo", [{"value": value, "address": miner}])
            wallet, delta = "demo", -value - tx["fee"]
        else:
            tx = c.send("primary", [{"value": value, "address": hd.address(0, index)}])
            wallet, delta = "primary", value
        ledgers[vpub].append([c.mine(1, miner, ((wallet, tx["hash"]),) + ((("demo", tx["hash"]),) if wallet == "primary" else ()), at=at), delta])
        hd_txs += 1
    c.rpc("setmocktime", [int(time.time())])  # back to the real clock for whatever mines next

    # Left unconfirmed.
    c.send("primary", [{"value": 12_500_000, "address": p2wpkh}, {"value": 5_000_000, "address": hd.address(0, 2)}])
    tip = c.http.get(c.url + "/").json()["chain"]["height"]
    change_used_max = max(int(o["path"]["derivation"].rsplit("/", 1)[1]) for o in _demo_outputs(c) if o["path"]["change"])
    hd_balance = sum(delta for _, delta in ledgers[vpub])
    hd_utxos = len([coin for coin in c.wallet("GET", "/wallet/demo/coin") if coin["address"] != hd.address(0, 40)])
    if not any(coin["address"] == hd.address(1, 0) for coin in c.wallet("GET", "/wallet/demo/coin")):
        raise RuntimeError("a later spend used the 1/0 change coin")

    hd_notes = {"receive_15": hd.address(0, 15), "past_gap_40": hd.address(0, 40), "change_0": hd.address(1, 0),
                "change_used_max": change_used_max}
    return {
        "family": "bitcoin",
        "url": url,
        "chain": dict(CHAIN),
        "wallets": [
            _wallet(p2pkh, "Demo P2PKH", "p2pkh", 100_000_000, 0, 1, 1, ledgers[p2pkh]),
            _wallet(p2sh, "Demo P2SH-P2WPKH", "p2sh", 50_000_000, 0, 1, 1, ledgers[p2sh]),
            _wallet(p2wpkh, "Demo P2WPKH", "p2wpkh", 25_000_000, 12_500_000, 2, 2, ledgers[p2wpkh]),
            _wallet(p2tr, "Demo P2TR", "p2tr", 30_000_000, 0, 1, 1, ledgers[p2tr]),
            _wallet(vpub, "Demo BIP-84 account (vpub)", None, hd_balance, 5_000_000, hd_utxos, hd_txs + 1, ledgers[vpub], **hd_notes),
            _wallet(tpub, "Same account as tpub, segwit chosen", "p2wpkh", hd_balance, 5_000_000, hd_utxos, hd_txs + 1, ledgers[vpub], **hd_notes),
        ],
        "height": tip,
    }


def _demo_outputs(c: _Client) -> list[dict]:
    """Every output the demo wallet's transactions paid to the wallet itself (with its path)."""
    return [o for tx in c.wallet("GET", "/wallet/demo/tx/history") for o in tx["outputs"] if o.get("path")]


def main() -> None:
    """``python -m devnet.bitcoin.scenario [url]``: start a node (or use ``url``) and print the result."""
    if len(sys.argv) > 1:
        print(json.dumps(run_scenario(sys.argv[1]), indent=2))
        return
    from devnet.bitcoin.node import start_bcoin

    with start_bcoin() as node:
        print(json.dumps(run_scenario(node.url, wallet_url=node.wallet_url), indent=2), flush=True)


if __name__ == "__main__":
    main()
