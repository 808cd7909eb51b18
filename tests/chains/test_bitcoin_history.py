"""Bitcoin history against the bcoin devnet: a year of daily balances equal to the scenario's own ledger,
net transfers per transaction, paging, and a clear error from a failing node."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from chains.base import NATIVE, ChainError, EndpointConfig, FetchRequest, HistoryRequest, RateLimited, WalletRef
from chains.bitcoin.adapter import BitcoinAdapter
from chains.history import daily_from_changes, read_all_pages, utc_day
from tests.chains.test_bitcoin_faults import P2WPKH, REGTEST, bcoin_like, misbehaving, ok_json
from tests.fixtures.bitcoin import chain_config_for


def backfill(adapter, wallet, since, until):
    """Every page as the backfill job reads them: (daily, transfers, pages, requests, last page)."""
    page, pages = read_all_pages(adapter.history, HistoryRequest(wallet=wallet, since=since, until=until))
    return page.daily, list(page.transfers), pages, page.request_count, page


def wallet_ref(w):
    return WalletRef(w["address"], w["script_type"] if w["script_type"] in ("p2pkh", "p2wpkh", "p2tr") else None, w["gap_limit"])


def test_daily_balances_equal_the_scenario_ledger_for_every_day(bitcoin_devnet, bitcoin_chain_config, bitcoin_endpoints):
    adapter = BitcoinAdapter(bitcoin_chain_config, bitcoin_endpoints)
    today = date.today()
    for w in bitcoin_devnet.scenario["wallets"]:
        since = today - timedelta(days=400)
        daily, transfers, _, _, page = backfill(adapter, wallet_ref(w), since, today)
        first = utc_day(min(t for t, _ in w["ledger"]))
        expected = daily_from_changes(((t, {NATIVE: d}) for t, d in w["ledger"]), first, today)
        assert min(daily) == first, w["label"]  # points start at the first transaction
        assert daily == expected, w["label"]
        assert page.assets == (adapter.asset,) and page.complete_from == since
        # The last day is what a normal fetch reads now (confirmed balance).
        (now,) = adapter.fetch(FetchRequest(wallets=(wallet_ref(w),))).balances
        assert daily[today].get(NATIVE, 0) == now.amount == int(w["balances"]["native"])
        # Transfers reconcile with the balance changes: in - out - fees.
        assert sum(t.amount if t.direction == "in" else -t.amount - t.fee for t in transfers) == now.amount
        assert len({t.tx for t in transfers}) == len(transfers) == len(w["ledger"])


def test_an_xpub_history_nets_each_transaction_and_keeps_its_own_change_internal(bitcoin_devnet, bitcoin_chain_config, bitcoin_endpoints):
    w = bitcoin_devnet.wallet("Demo BIP-84")
    adapter = BitcoinAdapter(bitcoin_chain_config, bitcoin_endpoints)
    _, transfers, _, _, _ = backfill(adapter, wallet_ref(w), date.today() - timedelta(days=400), date.today())
    by_time = sorted(transfers, key=lambda t: t.at)
    assert [t.direction for t in by_time[:3]] == ["in", "out", "in"]
    spend = by_time[1]  # 0.5 BTC to the miner with change back to 1/0: only the payment and the fee leave
    assert spend.amount == 50_000_000 and spend.fee > 0 and -(spend.amount + spend.fee) == w["ledger"][1][1]
    assert spend.counterparty and spend.counterparty not in (w["notes"]["change_0"],)
    received = {t.owner for t in transfers if t.direction == "in"}
    assert w["notes"]["receive_15"] in received and len(received) >= 7  # several used receive addresses
    assert all(t.height and t.at.tzinfo for t in transfers)


def test_since_bounds_the_days_and_transfers(bitcoin_devnet, bitcoin_chain_config, bitcoin_endpoints):
    w = bitcoin_devnet.wallet("Demo BIP-84")
    adapter = BitcoinAdapter(bitcoin_chain_config, bitcoin_endpoints)
    today = date.today()
    since = today - timedelta(days=100)
    daily, transfers, _, _, _ = backfill(adapter, wallet_ref(w), since, today)
    full = daily_from_changes(((t, {NATIVE: d}) for t, d in w["ledger"]), since, today)
    assert min(daily) == since and daily == full
    assert transfers and all(t.at.date() >= since for t in transfers)
    assert len(transfers) == sum(1 for t, _ in w["ledger"] if utc_day(t) >= since)


def test_paging_and_resuming_give_the_same_result_as_one_pass(bitcoin_devnet, bitcoin_chain_config, bitcoin_endpoints):
    w = bitcoin_devnet.wallet("Demo BIP-84")
    request = HistoryRequest(wallet=wallet_ref(w), since=date.today() - timedelta(days=400), until=date.today())
    one, one_pages = read_all_pages(BitcoinAdapter(bitcoin_chain_config, bitcoin_endpoints).history, request)
    small = chain_config_for(bitcoin_devnet.scenario, history_batch=2)
    # Each page from a new adapter, as a job resumed by another worker would be.
    paged, pages = read_all_pages(lambda r: BitcoinAdapter(small, bitcoin_endpoints).history(r), request)
    assert one_pages == 1 and pages > 3
    assert paged.daily == one.daily
    assert sorted(paged.transfers, key=lambda t: t.tx) == sorted(one.transfers, key=lambda t: t.tx)


def test_every_request_takes_a_slot_of_the_shared_rate_limit(bitcoin_devnet, bitcoin_chain_config):
    limiter = CountingLimiter()
    endpoints = [EndpointConfig(url=bitcoin_devnet.url, rate_per_s=50.0, timeout_s=30.0)]
    request = HistoryRequest(wallet=wallet_ref(bitcoin_devnet.wallet("Demo BIP-84")), since=date.today() - timedelta(days=30), until=date.today())
    page, _ = read_all_pages(BitcoinAdapter(bitcoin_chain_config, endpoints, limiter=limiter).history, request)
    assert page.request_count > 1 and len(limiter.taken) == page.request_count
    assert set(limiter.taken) == {(bitcoin_devnet.url, 50.0)}


@pytest.mark.parametrize(
    "reply",
    [
        (429, {"retry-after": "0"}, b"slow down"),
        ok_json([{"hash": "ab" * 32, "height": 3, "inputs": [], "outputs": [{"address": P2WPKH, "value": 5}]}]),  # no block time
        ok_json([{"hash": "ab" * 32, "height": 3, "time": 1_700_000_000, "inputs": [], "outputs": [{"address": P2WPKH, "value": "1.5"}]}]),
        ok_json({"not": "a list"}),
    ],
    ids=["rate-limited", "no-block-time", "amount-as-string", "not-a-list"],
)
def test_a_rate_limited_or_garbage_answering_node_is_a_clear_chain_error(reply):
    request = HistoryRequest(wallet=WalletRef(P2WPKH), since=date.today() - timedelta(days=10), until=date.today())
    with misbehaving(bcoin_like(reply)) as url:
        with pytest.raises(ChainError) as err:
            BitcoinAdapter(REGTEST, [EndpointConfig(url=url, timeout_s=3.0)]).history(request)
    assert not err.value.permanent and "tx/address" in str(err.value) and "127.0.0.1" in str(err.value)
    if reply[0] == 429:
        assert isinstance(err.value, RateLimited) or "429" in str(err.value)


def test_the_esplora_backend_pages_through_an_address_history():
    """30 confirmed transactions of one mainnet address (two pages of Esplora's 25), one a day:
    received 1,000,000 + i, or spent with a 300 sat fee to an outside address."""
    from tests.chains.test_bitcoin_faults import MAINNET
    from chains.bitcoin.genesis import GENESIS

    address, other = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
    start = 1_700_000_000
    txs, ledger, coin = [], [], None
    for i in range(30):
        txid = f"{i:064x}"
        status = {"confirmed": True, "block_height": 800_000 + i, "block_time": start + i * 86_400}
        if coin is None or i % 3:
            tx = {"txid": txid, "status": status, "vin": [{"is_coinbase": False, "prevout": {"scriptpubkey_address": other, "value": 5_000_000}}],
                  "vout": [{"scriptpubkey_address": address, "value": 1_000_000 + i}, {"scriptpubkey_address": other, "value": 3_999_000 - i}]}
            ledger.append((status["block_time"], 1_000_000 + i))
            coin = 1_000_000 + i
        else:
            tx = {"txid": txid, "status": status, "vin": [{"is_coinbase": False, "prevout": {"scriptpubkey_address": address, "value": coin}}],
                  "vout": [{"scriptpubkey_address": other, "value": coin - 300}]}
            ledger.append((status["block_time"], -coin))
            coin = None
        txs.append(tx)
    newest_first = txs[::-1]

    def answer(method, path):
        if path.endswith("/block-height/0"):
            return 200, {"content-type": "text/plain"}, GENESIS["mainnet"].encode()
        if f"/address/{address}/txs/chain" in path:
            last = path.rsplit("/txs/chain", 1)[1].strip("/")
            at = next(i + 1 for i, t in enumerate(newest_first) if t["txid"] == last) if last else 0
            return ok_json(newest_first[at : at + 25])
        return 404, {}, b"not found"

    with misbehaving(answer) as url:
        adapter = BitcoinAdapter(MAINNET, [EndpointConfig(url=url)])
        first = date(2023, 11, 14)
        daily, transfers, pages, requests, _ = backfill(adapter, WalletRef(address), first, first + timedelta(days=40))
    assert requests == 1 + 2  # the genesis check, then two pages of 25
    assert daily == daily_from_changes(((t, {NATIVE: d}) for t, d in ledger), first, first + timedelta(days=40))
    outs = [t for t in transfers if t.direction == "out"]
    assert outs and all(t.fee == 300 and t.counterparty == other for t in outs)
    assert all(t.counterparty == other for t in transfers if t.direction == "in")


class CountingLimiter:
    """The shared rate limiter as the backfill job passes it: counts the slots taken."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, float]] = []

    def acquire(self, key: str, rate_per_s: float) -> None:
        self.taken.append((key, rate_per_s))
