"""EVM history (backfill) on the devnet's year of daily blocks: balances at each day's end equal what
eth_call reads at that block, transfers match the scenario's, and an endpoint without archive state
stops the history at the oldest day it can read."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest

from chains.base import EndpointConfig, HistoryRequest, WalletRef
from chains.endpoints import EndpointHealth
from chains.evm.adapter import EvmAdapter
from devnet.common import rpc
from tests.fixtures.evm import chain_config_for, known_assets_for


def _adapter(devnet, url=None, **extra):
    cfg = chain_config_for(devnet.scenario, extra=extra)
    return EvmAdapter(cfg, [EndpointConfig(url=url or devnet.url, timeout_s=30.0)], health=EndpointHealth())


def _held_and_listed(devnet):
    """What the framework passes: the token list plus every token the wallet's sync found (held)."""
    from chains.base import AssetRef

    found = tuple(AssetRef(kind="fungible", address=a["address"], symbol=a["symbol"], name=a["name"], decimals=a["decimals"],
                           standard="erc20") for a in devnet.scenario["assets"] if a["kind"] == "fungible" and not a["listed"])
    return known_assets_for(devnet.scenario) + found


def _history_days(devnet) -> dict[date, int]:
    return {date.fromisoformat(d): b for d, b in devnet.scenario["history"]["days"].items()}


def _read_all(adapter, wallet: str, since: date, until: date, known):
    """Every page until done; returns (daily, transfers, prices, last page, pages, requests)."""
    daily, transfers, prices, cursor, pages, requests = {}, [], {}, {}, 0, 0
    while True:
        page = adapter.history(HistoryRequest(wallet=WalletRef(wallet), since=since, until=until, known_assets=known, cursor=cursor))
        pages += 1
        requests += page.request_count
        daily.update(page.daily)
        transfers += page.transfers
        prices.update(page.prices)
        cursor = json.loads(json.dumps(page.cursor))  # what the framework stores: JSON
        if page.done:
            return daily, transfers, prices, page, pages, requests


def _balances_at(http: httpx.Client, url: str, wallet: str, tokens: list[str], block: int) -> dict[str, int]:
    """eth_getBalance and balanceOf of every token at ``block``, read directly (one JSON-RPC batch)."""
    data = "0x70a08231" + wallet[2:].lower().rjust(64, "0")
    calls = [("eth_getBalance", [wallet, hex(block)])] + [("eth_call", [{"to": t, "data": data}, hex(block)]) for t in tokens]
    replies = {r["id"]: r for r in http.post(url, json=[{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                                                        for i, (m, p) in enumerate(calls)]).json()}
    values = [int(replies[i]["result"], 16) for i in range(len(calls))]
    return {k: v for k, v in zip(["native", *tokens], values) if v}


def test_backfilled_daily_balances_equal_balances_read_at_each_days_block(evm_devnet):
    days = _history_days(evm_devnet)
    since, until = min(days), max(days)
    known = _held_and_listed(evm_devnet)
    tokens = [a["address"] for a in evm_devnet.scenario["assets"] if a["kind"] == "fungible" and a["symbol"] != "BRKN"]
    for who in ("Alice", "Bob"):
        wallet = evm_devnet.wallet(who)["address"]
        daily, transfers, prices, last, pages, requests = _read_all(_adapter(evm_devnet), wallet, since, until, known)
        assert set(daily) == set(days) and last.complete_from == since and last.reason == ""
        with httpx.Client(timeout=30) as http:
            for day, block in days.items():
                assert daily[day] == _balances_at(http, evm_devnet.url, wallet, tokens, block), day
        # The transfer list is the scenario's token movements of this wallet, with their directions.
        moves = sorted((m["token"], "out" if m["from"] == wallet else "in", int(m["amount"]))
                       for m in evm_devnet.scenario["history"]["transfers"] if wallet in (m["from"], m["to"]))
        assert sorted((t.asset.address, t.direction, t.amount) for t in transfers) == moves
        assert all(since <= t.at.date() <= until for t in transfers)
        # Budget: at most 2 JSON-RPC requests per day of history.
        assert requests <= 2 * len(days), (requests, pages)
    # The oracle's price at each day's block, as the feed answered then.
    feed = evm_devnet.scenario["oracles"]["native"]
    for day in (since, since + timedelta(days=100), until):
        raw = rpc(evm_devnet.url, "eth_call", [{"to": feed, "data": "0xfeaf968c"}, hex(days[day])])
        assert prices[day]["native"].price == Decimal(int(raw[66:130], 16)).scaleb(-8)
    assert prices[until]["native"].price == Decimal(evm_devnet.scenario["prices"]["native"])
    assert prices[since]["native"].price < prices[until]["native"].price  # the year's prices moved


def test_an_endpoint_without_archive_state_stops_at_the_oldest_readable_day(evm_devnet, rpc_proxy):
    days = _history_days(evm_devnet)
    since, until = min(days), max(days)
    cutoff_day = until - timedelta(days=40)
    cutoff = days[cutoff_day]

    def pruned(payload):
        calls = payload if isinstance(payload, list) else [payload]
        if any(c.get("method") == "eth_call" and int(c["params"][1], 16) < cutoff for c in calls):
            body = [{"jsonrpc": "2.0", "id": c["id"], "error": {"code": -32000, "message": "missing trie node 1a2b (path )"}}
                    for c in calls]
            return 200, {"content-type": "application/json"}, json.dumps(body if isinstance(payload, list) else body[0]).encode()
        return None

    rpc_proxy.handler = pruned
    wallet = evm_devnet.wallet("Alice")["address"]
    daily, _transfers, _prices, last, _pages, requests = _read_all(
        _adapter(evm_devnet, rpc_proxy.url), wallet, since, until, known_assets_for(evm_devnet.scenario))
    assert last.done and last.complete_from == cutoff_day
    assert "archive" in last.reason and cutoff_day.isoformat() not in last.reason
    assert min(daily) == cutoff_day and max(daily) == until
    assert requests < 60  # the unreadable block is not split into single calls


@pytest.mark.parametrize("per_page", [7])
def test_pages_resume_from_the_cursor_and_cover_every_day_once(evm_devnet, per_page):
    days = _history_days(evm_devnet)
    until = max(days)
    since = until - timedelta(days=20)
    wallet = evm_devnet.wallet("Alice")["address"]
    known = known_assets_for(evm_devnet.scenario)
    whole = _read_all(_adapter(evm_devnet), wallet, since, until, known)
    paged = _read_all(_adapter(evm_devnet, history_days_per_page=per_page), wallet, since, until, known)
    assert paged[4] == 3 and paged[0] == whole[0] and len(paged[0]) == 21
