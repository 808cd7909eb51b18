"""SolanaAdapter against the LiteSVM devnet: what it reads equals what the scenario put on chain."""

from __future__ import annotations

import math

import pytest

from chains.base import FetchRequest, WalletRef
from chains.endpoints import EndpointHealth
from chains.solana.adapter import SolanaAdapter, fallback_symbol

pytestmark = pytest.mark.devnet


@pytest.fixture
def adapter(solana_chain_config, solana_endpoints):
    return SolanaAdapter(solana_chain_config, solana_endpoints, health=EndpointHealth(),
                         fetch_json=_offline_fetch_json)


def _offline_fetch_json(uri, *, ipfs_gateway):
    from chains.metadata import MetadataError, fetch_json

    if not uri.startswith("data:"):
        raise MetadataError("network disabled in tests")
    return fetch_json(uri, ipfs_gateway=ipfs_gateway)


def fetch_one(adapter, address, **kwargs):
    return adapter.fetch(FetchRequest(wallets=(WalletRef(address),), **kwargs))


def test_balances_equal_the_scenario(adapter, solana_devnet):
    assets = {a["address"]: a for a in solana_devnet.scenario["assets"]}
    for wallet in solana_devnet.scenario["wallets"]:
        result = fetch_one(adapter, wallet["address"])
        got = {b.asset.key: str(b.amount) for b in result.balances}
        assert got == wallet["balances"], wallet["label"]
        for b in result.balances:
            assert b.owner == wallet["address"] and isinstance(b.amount, int)
            if b.asset.address is None:
                assert (b.asset.kind, b.asset.symbol, b.asset.decimals) == ("native", "SOL", 9)
            else:
                expected = assets[b.asset.address]
                assert (b.asset.kind, b.asset.symbol, b.asset.name, b.asset.decimals, b.asset.standard) == (
                    "fungible", expected["symbol"], expected["name"], expected["decimals"], expected["standard"])
        assert result.complete and not result.problems
        assert result.height >= solana_devnet.scenario["height"]
        assert result.endpoint.startswith("http://127.0.0.1:")


def test_nfts_equal_the_scenario_and_are_not_balances(adapter, solana_devnet):
    assets = {a["address"]: a for a in solana_devnet.scenario["assets"]}
    for wallet in solana_devnet.scenario["wallets"]:
        result = fetch_one(adapter, wallet["address"])
        got = [{"collection": n.collection.address, "token_id": n.token_id, "amount": str(n.amount), "name": n.name}
               for n in result.nfts]
        assert got == wallet["nfts"], wallet["label"]
        nft_mints = {n.token_id for n in result.nfts}
        assert not nft_mints & {b.asset.key for b in result.balances}
        for n in result.nfts:
            expected = assets[n.collection.address]
            assert (n.collection.kind, n.collection.name, n.collection.symbol) == ("nft_collection", expected["name"], expected["symbol"])
            assert n.image_url.startswith("data:image/png;base64,")
            assert n.metadata_url.startswith("data:application/json;base64,")


def test_positions_equal_the_scenario(adapter, solana_devnet):
    """Native stake with legs named for what they are (active, activating, deactivating, inactive, rent
    reserve: never rewards) and the stake-pool token redeemed at the pool's own rate."""
    for wallet in solana_devnet.scenario["wallets"]:
        result = fetch_one(adapter, wallet["address"])
        got = [{"protocol": p.protocol, "ref": p.ref, "accounts_for": list(p.accounts_for),
                "vote_account": p.details.get("vote_account"),
                "legs": [{"asset": leg.asset.key, "amount": str(leg.amount), "role": leg.role} for leg in p.legs]}
               for p in result.positions]
        assert got == wallet["positions"], wallet["label"]
        assert all(p.kind == "staking" and p.owner == wallet["address"] for p in result.positions)
        assert not any(leg.role in ("reward", "pending") for p in result.positions for leg in p.legs)


def test_stake_legs_add_up_to_the_account_balance(adapter, solana_devnet):
    import httpx

    bob = solana_devnet.scenario["wallets"][1]
    for p in fetch_one(adapter, bob["address"]).positions:
        if p.protocol != "solana-stake":
            continue
        body = {"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": [p.ref]}
        assert sum(leg.amount for leg in p.legs) == httpx.post(solana_devnet.url, json=body).json()["result"]["value"]
        assert p.details["epoch"] == 10 and p.details["activation"] in ("inactive", "deactivating")


def test_the_pool_token_is_a_balance_accounted_for_by_its_position(adapter, solana_devnet):
    bob = solana_devnet.scenario["wallets"][1]
    lst = next(a for a in solana_devnet.scenario["assets"] if a["symbol"] == "dSOL")
    result = fetch_one(adapter, bob["address"])
    (position,) = [p for p in result.positions if p.protocol == "spl-stake-pool"]
    (balance,) = [b for b in result.balances if b.asset.key == lst["address"]]
    assert position.accounts_for == (lst["address"],) and balance.amount == int(position.details["pool_tokens"])
    assert position.details["up_to_date"] and position.label.startswith("dSOL")


def test_a_garbage_pool_account_is_a_problem_and_balances_still_load(solana_chain_config, solana_endpoints, solana_devnet):
    from dataclasses import replace

    bob = solana_devnet.scenario["wallets"][1]
    dusd = next(a for a in solana_devnet.scenario["assets"] if a["symbol"] == "DUSD")
    pool = next(p for p in bob["positions"] if p["protocol"] == "spl-stake-pool")["ref"]
    chain = replace(solana_chain_config, extra={**solana_chain_config.extra, "stake_pools": [dusd["address"], pool]})
    result = fetch_one(SolanaAdapter(chain, solana_endpoints, health=EndpointHealth(), fetch_json=_offline_fetch_json),
                       bob["address"])
    assert [(p.code, p.subject) for p in result.problems] == [("protocol_unparseable", dusd["address"])]
    assert "spl-stake-pool" in result.problems[0].message
    assert {b.asset.key: str(b.amount) for b in result.balances} == bob["balances"]
    assert [p.protocol for p in result.positions].count("spl-stake-pool") == 1


def test_an_owner_without_token_accounts_gets_just_sol(adapter, solana_devnet):
    carol = solana_devnet.scenario["wallets"][2]
    result = fetch_one(adapter, carol["address"])
    assert [(b.asset.key, b.amount) for b in result.balances] == [("native", int(carol["balances"]["native"]))]
    assert result.nfts == () and result.positions == () and result.complete


def test_a_never_used_address_is_zero_not_an_error(adapter):
    result = fetch_one(adapter, "So11111111111111111111111111111111111111112")
    assert [(b.asset.key, b.amount) for b in result.balances] == [("native", 0)]


def methods_per_request(proxy) -> list[list[str]]:
    """The methods each HTTP request through ``proxy`` carried."""
    return [[c["method"] for c in (p if isinstance(p, list) else [p])] for p in proxy.payloads]


def calls_by_method(proxy) -> dict[str, int]:
    from collections import Counter

    return dict(Counter(proxy.methods()))


@pytest.fixture
def recorded(solana_devnet, solana_chain_config, rpc_proxy_factory):
    from dataclasses import replace

    from chains.base import EndpointConfig

    proxy = rpc_proxy_factory(solana_devnet.url)

    def make(**extra):
        chain = replace(solana_chain_config, extra={**solana_chain_config.extra, **extra})
        return SolanaAdapter(chain, [EndpointConfig(proxy.url)], health=EndpointHealth(), fetch_json=_offline_fetch_json)

    return proxy, make


def expected_calls(wallets, *, positions=True):
    """The calls of one fetch, by method (see chains/solana/adapter.py): per wallet 1 getBalance + 2
    getTokenAccountsByOwner [+ 2 getProgramAccounts], once getEpochInfo + 1 getProgramAccounts (stake-pool
    discovery), then getMultipleAccounts over mints + metadata PDAs + held pools, and verified collections."""
    mints = {k for w in wallets for k in w["balances"] if k != "native"} | {n["token_id"] for w in wallets for n in w["nfts"]}
    pools = {p["ref"] for w in wallets for p in w["positions"] if p["protocol"] == "spl-stake-pool"} if positions else set()
    collections = {n["collection"] for w in wallets for n in w["nfts"] if n["collection"] != n["token_id"]} - mints
    calls = {"getBalance": len(wallets), "getTokenAccountsByOwner": 2 * len(wallets),
             "getMultipleAccounts": math.ceil((2 * len(mints) + len(pools)) / 100) + math.ceil(len(collections) / 100)}
    if positions:
        calls.update(getProgramAccounts=2 * len(wallets) + 1, getEpochInfo=1)
    return {method: n for method, n in calls.items() if n}


def test_rpc_calls_per_wallet_follow_the_formula(recorded, solana_devnet):
    """One batch per round (balances and accounts; mints, metadata and pools, if any token is held;
    collections, if any): at most 3 HTTP requests per fetch, each carrying a getGenesisHash."""
    proxy, make = recorded
    for wallet in solana_devnet.scenario["wallets"]:
        for positions in (True, False):
            proxy.payloads.clear()
            result = fetch_one(make(), wallet["address"], include_positions=positions)
            rounds = 1 + bool(len(wallet["balances"]) > 1) + bool({n["collection"] for n in wallet["nfts"]} - {n["token_id"] for n in wallet["nfts"]})
            assert result.request_count == len(methods_per_request(proxy)) == rounds, wallet["label"]
            calls = calls_by_method(proxy)
            assert calls.pop("getGenesisHash") == rounds and all(r[0] == "getGenesisHash" for r in methods_per_request(proxy))
            assert calls == expected_calls([wallet], positions=positions), wallet["label"]
            assert bool(result.positions) == (positions and bool(wallet["positions"]))


def test_batches_are_cut_at_batch_size_and_share_one_mint_read(recorded, solana_devnet):
    proxy, make = recorded
    wallets = solana_devnet.scenario["wallets"]
    result = make(batch_size=4).fetch(FetchRequest(wallets=tuple(WalletRef(w["address"]) for w in wallets)))
    calls = expected_calls(wallets)
    first_round = calls["getBalance"] + calls["getTokenAccountsByOwner"] + calls["getProgramAccounts"] + 1
    later_rounds = calls["getMultipleAccounts"]  # one call per round here: fewer than 100 keys each
    assert result.request_count == len(methods_per_request(proxy)) == math.ceil(first_round / 4) + later_rounds
    assert max(len(r) for r in methods_per_request(proxy)) == 5  # 4 calls + the genesis check
    assert {k: v for k, v in calls_by_method(proxy).items() if k != "getGenesisHash"} == calls
    for wallet in wallets:
        got = {b.asset.key: str(b.amount) for b in result.balances if b.owner == wallet["address"]}
        assert got == wallet["balances"]


def test_without_batches_the_same_calls_go_one_by_one(recorded, solana_devnet):
    proxy, make = recorded
    wallets = solana_devnet.scenario["wallets"]
    result = make(batch_size=0).fetch(FetchRequest(wallets=tuple(WalletRef(w["address"]) for w in wallets)))
    assert all(len(r) == 1 for r in methods_per_request(proxy)) and result.request_count == len(methods_per_request(proxy))
    calls = calls_by_method(proxy)
    assert calls.pop("getGenesisHash") == 1 and calls == expected_calls(wallets)


def test_missing_metadata_falls_back_to_a_mint_prefix(adapter, solana_devnet):
    bare = next(a for a in solana_devnet.scenario["assets"] if a["name"] == "")
    bob = solana_devnet.scenario["wallets"][1]
    (balance,) = [b for b in fetch_one(adapter, bob["address"]).balances if b.asset.key == bare["address"]]
    assert balance.asset.symbol == fallback_symbol(bare["address"]) == bare["symbol"]


def test_broken_offchain_metadata_is_a_problem_not_an_error(solana_chain_config, solana_endpoints, solana_devnet):
    from chains.metadata import MetadataError

    def failing(uri, *, ipfs_gateway):
        raise MetadataError("gateway down")

    adapter = SolanaAdapter(solana_chain_config, solana_endpoints, health=EndpointHealth(), fetch_json=failing)
    alice = solana_devnet.scenario["wallets"][0]
    result = fetch_one(adapter, alice["address"])
    assert [n.token_id for n in result.nfts] == [n["token_id"] for n in alice["nfts"]]
    assert result.nfts[0].image_url == "" and result.nfts[0].name == alice["nfts"][0]["name"]
    assert [p.code for p in result.problems] == ["nft_metadata_unavailable"] and result.complete


def test_fetch_works_inside_a_running_event_loop(adapter, solana_devnet):
    import asyncio

    from concurrent.futures import ThreadPoolExecutor

    async def inside():
        return fetch_one(adapter, solana_devnet.scenario["wallets"][2]["address"])

    # A thread of its own: this one may already run a loop (Playwright's, when browser tests ran first).
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, inside()).result()
    assert result.balances[0].amount == int(solana_devnet.scenario["wallets"][2]["balances"]["native"])


def test_registry_builds_the_adapter(solana_chain_config, solana_endpoints):
    from chains.base import ChainAdapter
    from chains.registry import adapter_for

    assert isinstance(adapter_for(solana_chain_config, solana_endpoints), ChainAdapter)


def test_the_devnet_endpoint_checks_out_as_the_configured_cluster(adapter, solana_endpoints, solana_devnet):
    assert adapter.check_endpoint(solana_endpoints[0]) == solana_devnet.scenario["chain"]["genesis_hash"]
    result = fetch_one(adapter, solana_devnet.scenario["wallets"][2]["address"])
    assert result.cursors == {solana_devnet.scenario["wallets"][2]["address"]: {"genesis_hash": solana_devnet.scenario["chain"]["genesis_hash"]}}


def test_a_tokens_metadata_document_is_its_logo_source(adapter, solana_devnet):
    # The Token-2022 token's own metadata names its document: the app's logo worker reads its image later.
    logos = {b.asset.symbol: b.asset.logo_url for w in solana_devnet.scenario["wallets"]
             for b in fetch_one(adapter, w["address"]).balances}
    assert logos["D22"] == "https://example.invalid/d22.json"
    assert logos["SOL"] == ""
