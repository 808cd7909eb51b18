"""A year of devnet history: one anvil block at noon UTC of each of the last 365 days, with ERC-20
transfers in and out of the demo wallets (one of them between ALICE and BOB), ETH payments and daily
oracle price updates, ending exactly at the scenario's balances and prices so the head is unchanged.

Runs after the scenario's contracts exist (their blocks sit ~400 days back, see ``scenario.PAST_DAYS``);
the history blocks are mined afresh on every start (anvil's state dump keeps no historical states)."""

from __future__ import annotations

import math
from datetime import date, datetime, time as dt_time, timedelta, timezone as dt_timezone
from typing import Any

import httpx
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

DAYS = 365
FEED_GAS, TOKEN_GAS, ETH_GAS = 120_000, 120_000, 21_000


class _Rpc:
    """Sequential JSON-RPC over one connection, and one batch for all the receipts at the end."""

    def __init__(self, url: str) -> None:
        self.url, self.http, self._id = url, httpx.Client(timeout=60), 0

    def __call__(self, method: str, params: list | None = None) -> Any:
        self._id += 1
        reply = self.http.post(self.url, json={"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or []}).json()
        if reply.get("error"):
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def batch(self, method: str, params_list: list[list]) -> list[Any]:
        payload = [{"jsonrpc": "2.0", "id": i, "method": method, "params": p} for i, p in enumerate(params_list)]
        replies = {r["id"]: r for r in self.http.post(self.url, json=payload).json()} if payload else {}
        return [replies[i].get("result") for i in range(len(payload))]


def _call_data(signature: str, types: list[str], args: list[Any]) -> str:
    return "0x" + (function_signature_to_4byte_selector(signature) + encode(types, args)).hex()


def _answer(price: str, decimals: int) -> int:
    whole, _, frac = price.partition(".")
    return int(whole) * 10**decimals + int((frac + "0" * decimals)[:decimals] or 0)


def price_permille(k: int, *, swing: int, period: float) -> int:
    """Day ``k``'s price as permille of the final one: from ~60% a year ago up to exactly 100% on the
    last day, with a wave on the way (deterministic)."""
    return 600 + 400 * k // (DAYS - 1) + int(swing * math.sin(k / period) * (DAYS - 1 - k) / (DAYS - 1))


def history_days(today: date) -> list[date]:
    """The days that get a block: the 365 days before ``today``, oldest first."""
    return [today - timedelta(days=DAYS - k) for k in range(DAYS)]


def add_history(url: str, scenario: dict[str, Any], *, today: date | None = None) -> dict[str, Any]:
    """Mine the year of history on the scenario's chain and return ``{days: {iso day: block}, transfers:
    [...]}`` (the ERC-20 movements of the demo wallets, with direction per wallet). Native balances
    are set back to the scenario's at the end (ETH sent in history also paid gas). Raises
    ``RuntimeError`` when a transaction fails."""
    from devnet.evm.scenario import ALICE, BOB, DEPLOYER, ETH, FEED_DECIMALS

    rpc = _Rpc(url)
    today = today or datetime.now(dt_timezone.utc).date()
    token = {a["symbol"]: a["address"] for a in scenario["assets"]}
    demo, dusd = token["DEMO"], token["DUSD"]
    feeds = {"ETH": scenario["oracles"]["native"], "DEMO": scenario["oracles"][demo]}
    final = {"ETH": _answer(scenario["prices"]["native"], FEED_DECIMALS), "DEMO": _answer(scenario["prices"][demo], FEED_DECIMALS)}

    def transfer(day_txs: list, sender: str, contract: str, to: str, amount: int) -> None:
        day_txs.append({"from": sender, "to": contract, "gas": hex(TOKEN_GAS),
                        "data": _call_data("transfer(address,uint256)", ["address", "uint256"], [to, amount])})
        moves.append({"token": contract, "from": sender, "to": to, "amount": str(amount)})

    moves: list[dict[str, str]] = []
    hashes: list[str] = []
    blocks: dict[str, int] = {}
    rpc("evm_setAutomine", [False])
    try:
        days = history_days(today)
        rpc("anvil_setTime", [_noon(days[0]) - 3600])
        for k, day in enumerate(days):
            txs: list[dict[str, Any]] = []
            permille = {"ETH": price_permille(k, swing=90, period=17.0), "DEMO": price_permille(k, swing=160, period=9.0)}
            for name in ("ETH", "DEMO") if k % 7 == 0 or k == DAYS - 1 else ("ETH",):
                txs.append({"from": DEPLOYER, "to": feeds[name], "gas": hex(FEED_GAS),
                            "data": _call_data("setAnswer(int256)", ["int256"], [final[name] * permille[name] // 1000])})
            if k == 0:  # a sale a year ago: bought back in instalments over the year
                transfer(txs, ALICE, demo, DEPLOYER, 1000 * ETH)
                transfer(txs, ALICE, dusd, DEPLOYER, 2_000_000_000)
            if k % 30 == 0 and 0 < k <= 300:
                transfer(txs, DEPLOYER, demo, ALICE, 100 * ETH)
            if k % 45 == 0 and 0 < k <= 360:
                transfer(txs, DEPLOYER, dusd, ALICE, 250_000_000)
            if k == 100:  # between two demo wallets: internal for their owner
                transfer(txs, ALICE, demo, BOB, 5 * ETH)
            if k == 200:
                transfer(txs, BOB, demo, ALICE, 5 * ETH)
            if k % 7 == 3:
                txs.append({"from": DEPLOYER, "to": ALICE, "gas": hex(ETH_GAS), "value": hex(ETH // 5)})
            if k % 14 == 5:
                txs.append({"from": ALICE, "to": BOB, "gas": hex(ETH_GAS), "value": hex(ETH // 20)})
            hashes += [rpc("eth_sendTransaction", [tx]) for tx in txs]
            rpc("evm_mine", [{"timestamp": _noon(day)}])
            blocks[day.isoformat()] = int(rpc("eth_blockNumber"), 16)
        receipts = rpc.batch("eth_getTransactionReceipt", [[h] for h in hashes])
        failed = [h for h, r in zip(hashes, receipts) if not r or r.get("status") != "0x1"]
        if failed:
            raise RuntimeError(f"{len(failed)} history transactions failed, e.g. {failed[0]}")
        for wallet in scenario["wallets"]:  # ETH moved (and gas was paid) in the history: back to the scenario's
            rpc("anvil_setBalance", [wallet["address"], hex(int(wallet["balances"]["native"]))])
        rpc("anvil_setTime", [int(datetime.now(dt_timezone.utc).timestamp())])
        rpc("evm_mine", [])
        height = int(rpc("eth_blockNumber"), 16)
    finally:
        rpc("evm_setAutomine", [True])
        rpc.http.close()
    return {"days": blocks, "transfers": moves, "height": height}


def _noon(day: date) -> int:
    return int(datetime.combine(day, dt_time(12), tzinfo=dt_timezone.utc).timestamp())
