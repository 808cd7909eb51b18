"""Solana history against the LiteSVM devnet: a year of daily SOL and token balances equal to the
scenario's own ledger, transfers that reconcile, paging, and clear errors from a failing endpoint."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from chains.base import NATIVE, AssetRef, ChainError, EndpointConfig, FetchRequest, HistoryRequest, WalletRef
from chains.history import daily_from_changes, read_all_pages, utc_day
from chains.solana.adapter import SolanaAdapter

SINCE = date.today() - timedelta(days=400)


def backfill(adapter, address, since=SINCE, until=None, known=()):
    """Every page as the backfill job reads them: (daily, transfers, pages, requests, last page)."""
    request = HistoryRequest(wallet=WalletRef(address), since=since, until=until or date.today(), known_assets=known)
    page, pages = read_all_pages(adapter.history, request)
    return page.daily, list(page.transfers), pages, page.request_count, page


def ledger_daily(w, first, last):
    return daily_from_changes(((t, {key: delta}) for t, key, delta in w["ledger"]), first, last)


def test_daily_balances_equal_the_scenario_ledger_for_every_day(solana_devnet, solana_chain_config, solana_endpoints):
    adapter = SolanaAdapter(solana_chain_config, solana_endpoints)
    today = date.today()
    for w in solana_devnet.scenario["wallets"]:
        daily, transfers, _, _, page = backfill(adapter, w["address"])
        first = utc_day(min(t for t, _, _ in w["ledger"]))
        assert min(daily) == first and max(daily) == today, w["label"]
        assert daily == ledger_daily(w, first, today), w["label"]
        assert len({day for day, _ in ((utc_day(t), k) for t, k, _ in w["ledger"])}) > 2  # spread over the year
        # The last day is what a normal fetch reads now; what it leaves out are the wallet's NFTs.
        (result,) = [adapter.fetch(FetchRequest(wallets=(WalletRef(w["address"]),), include_positions=False))]
        now = {b.asset.key: b.amount for b in result.balances if b.amount}
        nft_mints = {n["token_id"] for n in w["nfts"]}
        assert {k: v for k, v in daily[today].items() if k not in nft_mints} == now
        assert {k for k, v in daily[today].items() if k not in now} == nft_mints
        # Transfers reconcile with the balance changes, asset by asset (fees come out of SOL).
        for key in set(daily[today]) | {NATIVE}:
            moved = sum((t.amount if t.direction == "in" else -t.amount) for t in transfers if t.asset.key == key)
            fees = sum(t.fee for t in transfers) if key == NATIVE else 0
            assert moved - fees == daily[today].get(key, 0), (w["label"], key)
        assert {a.key for a in page.assets} >= set(daily[today])


def test_transfers_show_direction_fee_and_counterparty(solana_devnet, solana_chain_config, solana_endpoints):
    alice = solana_devnet.scenario["wallets"][0]
    dnine = next(a for a in solana_devnet.scenario["assets"] if a["symbol"] == "DNINE")
    known = (AssetRef(kind="fungible", address=dnine["address"], symbol="DNINE", name=dnine["name"], decimals=9, standard="spl"),)
    _, transfers, _, _, page = backfill(SolanaAdapter(solana_chain_config, solana_endpoints), alice["address"], known=known)
    sol_out = [t for t in transfers if t.asset.key == NATIVE and t.direction == "out"]
    assert [(t.amount, t.fee) for t in sol_out] == [(1_500_000_000, 5_000)]  # she paid her own fee once
    assert sol_out[0].counterparty and sol_out[0].counterparty != alice["address"]
    dnine_moves = sorted((t.at, t.direction, t.amount, t.counterparty) for t in transfers if t.asset.key == dnine["address"])
    assert [(d, a) for _, d, a, _ in dnine_moves] == [("in", 42_000_000_001), ("out", 1_000_000_000), ("in", 1_000_000_000)]
    assert dnine_moves[1][3] == dnine_moves[2][3] != ""  # paid to and back from the same wallet
    assert next(a for a in page.assets if a.key == dnine["address"]).symbol == "DNINE"
    d22 = next(a for a in solana_devnet.scenario["assets"] if a["symbol"] == "D22")["address"]
    d22_out = [t for t in transfers if t.asset.key == d22 and t.direction == "out"]
    assert [(t.amount, t.fee, t.asset.standard) for t in d22_out] == [(500_000_000, 5_000, "token2022")]  # her fee rides on the token leg


def test_a_payment_into_a_token_account_alone_is_found(solana_devnet, solana_chain_config, solana_endpoints):
    # dave pays bob DUSD and pays the fee: bob's own address is not in that transaction, only his token account.
    bob = solana_devnet.scenario["wallets"][1]
    dusd = next(a for a in solana_devnet.scenario["assets"] if a["symbol"] == "DUSD")["address"]
    daily, transfers, _, _, _ = backfill(SolanaAdapter(solana_chain_config, solana_endpoints), bob["address"])
    back = [t for t in transfers if t.asset.key == dusd and t.direction == "in" and t.amount == 2_000_000]
    assert len(back) == 1 and back[0].fee == 0
    assert daily[utc_day(int(back[0].at.timestamp())) - timedelta(days=1)][dusd] == int(bob["balances"][dusd]) - 2_000_000


def test_since_bounds_the_days_and_transfers(solana_devnet, solana_chain_config, solana_endpoints):
    alice = solana_devnet.scenario["wallets"][0]
    today = date.today()
    since = today - timedelta(days=100)
    daily, transfers, _, _, _ = backfill(SolanaAdapter(solana_chain_config, solana_endpoints), alice["address"], since=since)
    assert min(daily) == since and daily == ledger_daily(alice, since, today)
    assert transfers and all(t.at.date() >= since for t in transfers)


def test_paging_and_resuming_give_the_same_result_as_one_pass(solana_devnet, solana_chain_config, solana_endpoints):
    alice = solana_devnet.scenario["wallets"][0]["address"]
    request = HistoryRequest(wallet=WalletRef(alice), since=SINCE, until=date.today())
    one, one_pages = read_all_pages(SolanaAdapter(solana_chain_config, solana_endpoints).history, request)
    small = replace(solana_chain_config, extra={**solana_chain_config.extra, "history_signatures": 2, "history_page_txs": 3})
    # Each page from a new adapter, as a job resumed by another worker would be.
    paged, pages = read_all_pages(lambda r: SolanaAdapter(small, solana_endpoints).history(r), request)
    assert one_pages == 1 and pages >= 4
    assert paged.daily == one.daily
    assert sorted(paged.transfers, key=lambda t: (t.tx, t.key)) == sorted(one.transfers, key=lambda t: (t.tx, t.key))


def test_every_request_takes_a_slot_of_the_shared_rate_limit(solana_devnet, solana_chain_config):
    limiter = CountingLimiter()
    endpoints = [EndpointConfig(url=solana_devnet.url, rate_per_s=50.0, timeout_s=10.0)]
    adapter = SolanaAdapter(replace(solana_chain_config, extra={**solana_chain_config.extra, "history_signatures": 3}), endpoints,
                            limiter=limiter)
    page, pages = read_all_pages(adapter.history, HistoryRequest(wallet=WalletRef(solana_devnet.scenario["wallets"][1]["address"]),
                                                                 since=SINCE, until=date.today()))
    assert pages > 1 and page.request_count > pages and len(limiter.taken) == page.request_count
    assert set(limiter.taken) == {(solana_devnet.url, 50.0)}


def _has(payload, method):
    items = payload if isinstance(payload, list) else [payload]
    return any(isinstance(i, dict) and i.get("method") == method for i in items)


def test_a_rate_limited_endpoint_is_a_clear_transient_error(solana_devnet, solana_chain_config, rpc_proxy_factory):
    proxy = rpc_proxy_factory(solana_devnet.url)
    proxy.handler = lambda payload: (429, {"Retry-After": "0"}, b"slow down") if _has(payload, "getSignaturesForAddress") else None
    adapter = SolanaAdapter(solana_chain_config, [EndpointConfig(url=proxy.url, timeout_s=5.0)])
    with pytest.raises(ChainError) as err:
        backfill(adapter, solana_devnet.scenario["wallets"][2]["address"])
    assert not err.value.permanent and "429" in str(err.value) and "getSignaturesForAddress" in str(err.value)


@pytest.mark.parametrize("damage", ["balances-not-lists", "amount-as-number", "no-block-time"])
def test_a_garbage_answering_endpoint_is_a_clear_transient_error(solana_devnet, solana_chain_config, rpc_proxy_factory, damage):
    def mutate(payload, reply):
        for item in reply if isinstance(reply, list) else [reply]:
            result = item.get("result")
            if isinstance(result, dict) and "meta" in result:
                if damage == "balances-not-lists":
                    result["meta"]["preBalances"] = "0"
                elif damage == "amount-as-number":
                    for tb in result["meta"]["postTokenBalances"]:
                        tb["uiTokenAmount"]["amount"] = 1.5
                    result["meta"]["postTokenBalances"] = result["meta"]["postTokenBalances"] or [
                        {"accountIndex": 0, "mint": "x", "owner": "y", "uiTokenAmount": {"amount": 1.5, "decimals": 0}}]
            if isinstance(result, list) and damage == "no-block-time":
                for entry in result:
                    entry["blockTime"] = None
        return reply

    proxy = rpc_proxy_factory(solana_devnet.url)
    proxy.mutate = mutate
    adapter = SolanaAdapter(solana_chain_config, [EndpointConfig(url=proxy.url, timeout_s=5.0)])
    with pytest.raises(ChainError) as err:
        backfill(adapter, solana_devnet.scenario["wallets"][0]["address"])
    assert not err.value.permanent
    method = "getSignaturesForAddress" if damage == "no-block-time" else "getTransaction"
    assert method in str(err.value) and "127.0.0.1" in str(err.value)


class CountingLimiter:
    """The shared rate limiter as the backfill job passes it: counts the slots taken."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, float]] = []

    def acquire(self, key: str, rate_per_s: float) -> None:
        self.taken.append((key, rate_per_s))


def test_an_endpoint_without_old_transactions_ends_the_history_where_it_can_read(solana_devnet, solana_chain_config, rpc_proxy_factory):
    """A node without the full ledger lists a signature but answers getTransaction with null: the days
    after it are still exact, and the page says from when."""
    alice = solana_devnet.scenario["wallets"][0]
    cutoff = min(t for t, _, _ in alice["ledger"]) + 100 * 86_400  # forgets what happened in the first 100 days

    def mutate(payload, reply):
        calls = {c["id"]: c for c in (payload if isinstance(payload, list) else [payload])}
        for item in reply if isinstance(reply, list) else [reply]:
            result = item.get("result")
            if isinstance(result, dict) and result.get("blockTime", cutoff) < cutoff and calls[item["id"]]["method"] == "getTransaction":
                item["result"] = None
        return reply

    proxy = rpc_proxy_factory(solana_devnet.url)
    proxy.mutate = mutate
    daily, transfers, _, _, page = backfill(SolanaAdapter(solana_chain_config, [EndpointConfig(url=proxy.url)]), alice["address"])
    forgotten = max(utc_day(t) for t, _, _ in alice["ledger"] if t < cutoff)
    assert page.complete_from == forgotten and "older" in page.reason  # its day's end is known: all after it was read
    assert min(daily) == page.complete_from
    assert daily == ledger_daily(alice, page.complete_from, date.today())
    assert all(t.at.date() >= page.complete_from for t in transfers)


def test_calls_one_by_one_give_the_same_history(solana_devnet, solana_chain_config, solana_endpoints):
    # An endpoint without batches gets the same calls concurrently: answers may come back in any order.
    bob = solana_devnet.scenario["wallets"][1]
    unbatched = replace(solana_chain_config, extra={**solana_chain_config.extra, "batch_size": 0})
    daily, transfers, _, requests, _ = backfill(SolanaAdapter(unbatched, solana_endpoints), bob["address"])
    assert daily == ledger_daily(bob, min(daily), date.today())
    assert requests > len(transfers)  # one request per call
