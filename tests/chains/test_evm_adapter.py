"""EvmAdapter against the anvil devnet scenario: balances, discovery, NFTs, prices, incremental scans."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

import pytest

from chains.base import ChainAdapter, ChainError, FetchRequest, NATIVE, WalletRef
from chains.endpoints import EndpointHealth
from chains.evm import multicall
from chains.evm.adapter import EvmAdapter
from chains.evm.multicall import shared_pool
from chains.metadata import fetch_json
from devnet.evm.scenario import ALICE, BOB, DEPLOYER, call, deploy
from tests.fixtures.evm import chain_config_for


def fake_fetcher(seen: list[str]):
    """Metadata fetcher that decodes data: URIs and serves the {id} template URL from memory."""

    def fetch(uri: str) -> dict:
        seen.append(uri)
        if uri.startswith("data:"):
            return fetch_json(uri)
        if uri == "https://items.example/api/" + "0" * 63 + "3.json":
            return {"name": "Helmet", "image": "https://items.example/helmet.png"}
        raise ChainError(f"unexpected uri {uri}")

    return fetch


@pytest.fixture
def adapter(evm_chain_config, evm_endpoints):
    return EvmAdapter(evm_chain_config, evm_endpoints, metadata_fetcher=fake_fetcher([]), health=EndpointHealth())


@pytest.fixture
def request_all(evm_devnet, evm_known_assets):
    wallets = tuple(WalletRef(w["address"]) for w in evm_devnet.scenario["wallets"])
    return FetchRequest(wallets=wallets, known_assets=evm_known_assets)


@pytest.fixture
def result(adapter, request_all):
    return adapter.fetch(request_all)


def amounts(result, owner):
    return {(b.asset.address or NATIVE): b.amount for b in result.balances if b.owner == owner}


def test_it_implements_the_adapter_protocol(adapter):
    assert isinstance(adapter, ChainAdapter)
    assert adapter.normalize_address(ALICE.lower()).address == ALICE


def test_it_returns_exactly_the_scenario_amounts_at_the_scenario_height(evm_devnet, result):
    assert result.height == evm_devnet.scenario["height"]
    for wallet in evm_devnet.scenario["wallets"]:
        expected = {k: int(v) for k, v in wallet["balances"].items()}
        assert amounts(result, wallet["address"]) == expected, wallet["label"]
    assert result.endpoint == evm_devnet.url
    assert result.request_count <= 4  # chain id + head, one log batch, one multicall
    json.dumps(result.cursors)  # the caller stores them as JSON


def test_it_finds_the_unlisted_token_by_log_scan_with_its_metadata(evm_devnet, result):
    disc = evm_devnet.asset("DISC")
    balance = next(b for b in result.balances if b.asset.address == disc["address"])
    assert balance.owner == ALICE and balance.amount == 777 * 10**18
    assert (balance.asset.symbol, balance.asset.name, balance.asset.decimals) == ("DISC", "Discovered Coin", 18)
    assert disc["address"] in result.cursors[ALICE]["erc20"]
    assert result.cursors[ALICE]["last_scanned_block"] == result.height


def fungible_order(result, owner):
    return [b.asset.address for b in result.balances if b.owner == owner and b.asset.address is not None]


def test_balances_come_in_the_token_lists_order_and_a_reordered_list_reads_the_same(evm_devnet, adapter, request_all, result):
    listed = [a.address for a in request_all.known_assets if a.kind == "fungible" and a.address]
    held = amounts(result, ALICE)
    # the tokens only known from Alice's logs (DISC among them) after the listed ones, sorted
    unlisted = sorted(t for t in held if t != NATIVE and t not in listed)
    assert evm_devnet.asset("DISC")["address"] in unlisted
    assert fungible_order(result, ALICE) == [t for t in listed if t in held] + unlisted
    assert result.balances[0].asset.address is None  # the native coin first

    reordered = adapter.fetch(FetchRequest(wallets=request_all.wallets, known_assets=request_all.known_assets[::-1]))
    for wallet in evm_devnet.scenario["wallets"]:
        assert amounts(reordered, wallet["address"]) == amounts(result, wallet["address"]), wallet["label"]
    assert fungible_order(reordered, ALICE) == [t for t in listed[::-1] if t in held] + unlisted
    assert adapter.fetch(FetchRequest(wallets=request_all.wallets, known_assets=request_all.known_assets)).balances == result.balances


def test_a_fetch_completes_while_every_thread_of_the_shared_pool_is_busy(adapter, request_all, result):
    """The token list, the second request in flight and the decoding fall back to the fetching thread
    when the pool has no thread free: nothing waits on a queue behind the work that holds the pool."""
    release, started, lock = threading.Event(), [], threading.Lock()

    def hold() -> None:
        with lock:
            started.append(1)
        release.wait(60)

    blockers = [shared_pool().submit(hold) for _ in range(multicall._POOL_THREADS)]
    try:
        deadline = time.monotonic() + 10
        while len(started) < multicall._POOL_THREADS and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(started) == multicall._POOL_THREADS
        out: list = []
        fetching = threading.Thread(target=lambda: out.append(adapter.fetch(request_all)), daemon=True)
        fetching.start()
        fetching.join(30)
        assert not fetching.is_alive(), "the fetch waited for a thread of the pool"
        assert out[0].balances == result.balances and out[0].problems == result.problems
    finally:
        release.set()
        for b in blockers:
            b.result(10)


def test_it_reads_a_bytes32_symbol(evm_devnet, adapter, evm_known_assets):
    mkr = evm_devnet.asset("MKRX")
    # Not in the token list: name and symbol come from the chain, as bytes32.
    unlisted = tuple(a for a in evm_known_assets if a.address != mkr["address"])
    res = adapter.fetch(FetchRequest(wallets=(WalletRef(ALICE),), known_assets=unlisted))
    balance = next(b for b in res.balances if b.asset.address == mkr["address"])
    assert (balance.asset.symbol, balance.asset.name, balance.asset.decimals) == ("MKRX", "Maker-ish", 18)
    assert balance.amount == 3_250_000_000_000_000_000


def test_it_skips_and_reports_a_reverting_token_while_the_others_load(evm_devnet, result):
    broken = evm_devnet.asset("BRKN")["address"]
    assert not any(b.asset.address == broken for b in result.balances)
    problem = next(p for p in result.problems if p.subject == broken)
    assert problem.code == "balance_call_failed"
    assert not result.complete
    assert amounts(result, ALICE)[evm_devnet.asset("DEMO")["address"]] == 1234_567890123456789012


def test_it_still_returns_the_spam_looking_token_with_its_name(evm_devnet, result):
    spam = evm_devnet.asset("CLAIM")["address"]
    held = [b for b in result.balances if b.asset.address == spam]
    assert {b.owner for b in held} == {ALICE, BOB}
    assert held[0].asset.name == "Claim reward at https://evil.example"


def test_it_returns_the_scenario_nfts_with_metadata(evm_devnet, result):
    got = {(n.owner, n.collection.address, n.token_id): n for n in result.nfts}
    for wallet in evm_devnet.scenario["wallets"]:
        for item in wallet["nfts"]:
            nft = got.pop((wallet["address"], item["collection"], item["token_id"]))
            assert nft.amount == int(item["amount"])
            if item["name"]:
                assert nft.name == item["name"]
    assert got == {}  # nothing extra: punk #3 left Alice for Bob
    punk = next(n for n in result.nfts if n.token_id == "1" and n.collection.standard == "erc721")
    assert punk.image_url == "https://img.example/punks/1.png"
    punk2 = next(n for n in result.nfts if n.token_id == "2" and n.collection.standard == "erc721")
    assert punk2.image_url.startswith("data:image/png;base64,iVBORw0KGgo")  # a raster data: image passes
    assert punk.collection.name == "Demo Punks" and punk.collection.symbol == "DPUNK"
    helmet = next(n for n in result.nfts if n.owner == BOB and n.collection.standard == "erc1155")
    assert helmet.name == "Helmet"  # {id} expanded to 64 hex chars
    assert helmet.metadata_url == "https://items.example/api/" + "0" * 63 + "3.json"
    sword = next(n for n in result.nfts if n.name == "Sword")
    assert sword.image_url == "https://ipfs.io/ipfs/bafydemoitems/1.png"


def test_metadata_failures_are_problems_not_errors(evm_chain_config, evm_endpoints, request_all):
    def failing(uri: str) -> dict:
        raise ChainError("gateway down")

    res = EvmAdapter(evm_chain_config, evm_endpoints, metadata_fetcher=failing, health=EndpointHealth()).fetch(request_all)
    assert len(res.nfts) == 6 and all(n.name == "" for n in res.nfts)
    assert {p.code for p in res.problems} >= {"nft_metadata"}


def test_it_does_not_refetch_metadata_the_cursor_knows(evm_chain_config, evm_endpoints, request_all):
    seen: list[str] = []
    adapter = EvmAdapter(evm_chain_config, evm_endpoints, metadata_fetcher=fake_fetcher(seen), health=EndpointHealth())
    first = adapter.fetch(request_all)
    assert len(seen) == 6
    seen.clear()
    second = adapter.fetch(FetchRequest(request_all.wallets, request_all.known_assets, cursors=first.cursors))
    assert seen == []
    assert {(n.token_id, n.name) for n in second.nfts} == {(n.token_id, n.name) for n in first.nfts}


def test_it_reads_oracle_prices_in_the_same_batch(evm_devnet, result):
    prices = {(q.asset.address or NATIVE): q for q in result.prices}
    for key, expected in evm_devnet.scenario["prices"].items():
        quote = prices[key]
        assert quote.price == Decimal(expected)
        assert quote.currency == "USD"
        assert quote.source == f"chainlink:{evm_devnet.scenario['oracles'][key]}"
        assert quote.at_height == result.height


def test_a_second_fetch_scans_only_new_blocks_and_finds_new_tokens(evm_devnet, adapter, request_all, evm_snapshot):
    first = adapter.fetch(request_all)
    new = deploy(evm_devnet.url, "DemoToken", ["string", "string", "uint8"], ["Later Token", "LATE", 9])
    call(evm_devnet.url, DEPLOYER, new, "mint(address,uint256)", ["address", "uint256"], [BOB, 5_000_000_000])
    second = adapter.fetch(FetchRequest(request_all.wallets, request_all.known_assets, cursors=first.cursors))
    assert second.height > first.height
    assert {start for start, _ in adapter.last_scan.ranges} == {first.height + 1}
    late = next(b for b in second.balances if b.asset.address == new)
    assert (late.owner, late.amount, late.asset.symbol, late.asset.decimals) == (BOB, 5_000_000_000, "LATE", 9)
    # Everything found the first time is still there.
    assert amounts(second, ALICE) == amounts(first, ALICE)
    assert len(second.nfts) == len(first.nfts)
    third = adapter.fetch(FetchRequest(request_all.wallets, request_all.known_assets, cursors=second.cursors))
    assert adapter.last_scan.ranges == []  # no new block: no eth_getLogs at all
    assert third.request_count == 2


def test_a_cursor_ahead_of_the_chain_restarts_the_scan(evm_devnet, adapter, request_all, result):
    ahead = {k: {**v, "last_scanned_block": result.height + 1000} for k, v in result.cursors.items()}
    res = adapter.fetch(FetchRequest(request_all.wallets, request_all.known_assets, cursors=ahead))
    assert adapter.last_scan.ranges[0][0] == 0
    assert amounts(res, ALICE) == amounts(result, ALICE)


def test_the_first_scan_defaults_to_a_recent_depth(evm_devnet, evm_endpoints, request_all):
    cfg = chain_config_for(evm_devnet.scenario, log_scan_start=None, log_scan_default_depth=5)
    adapter = EvmAdapter(cfg, evm_endpoints, metadata_fetcher=fake_fetcher([]), health=EndpointHealth())
    res = adapter.fetch(request_all)
    assert adapter.last_scan.ranges[0][0] == res.height - 5


def test_a_chain_id_mismatch_is_permanent(evm_devnet, evm_endpoints, request_all):
    cfg = chain_config_for(evm_devnet.scenario, chain_id=1)
    with pytest.raises(ChainError) as info:
        EvmAdapter(cfg, evm_endpoints, health=EndpointHealth()).fetch(request_all)
    assert info.value.permanent and "31337" in str(info.value)


def test_a_bad_wallet_address_is_permanent(adapter):
    with pytest.raises(ChainError) as info:
        adapter.fetch(FetchRequest(wallets=(WalletRef("0x1234"),)))
    assert info.value.permanent
