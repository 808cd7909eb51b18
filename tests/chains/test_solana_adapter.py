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


def test_stake_positions_equal_the_scenario(adapter, solana_devnet):
    for wallet in solana_devnet.scenario["wallets"]:
        result = fetch_one(adapter, wallet["address"])
        got = [{"protocol": p.protocol, "ref": p.ref, "vote_account": p.details["vote_account"], "state": p.details["state"],
                "legs": [{"asset": leg.asset.key, "amount": str(leg.amount), "role": leg.role} for leg in p.legs]}
               for p in result.positions]
        assert got == wallet["positions"], wallet["label"]
        assert all(p.kind == "staking" and p.owner == wallet["address"] for p in result.positions)


def test_an_owner_without_token_accounts_gets_just_sol(adapter, solana_devnet):
    carol = solana_devnet.scenario["wallets"][2]
    result = fetch_one(adapter, carol["address"])
    assert [(b.asset.key, b.amount) for b in result.balances] == [("native", int(carol["balances"]["native"]))]
    assert result.nfts == () and result.positions == () and result.complete


def test_a_never_used_address_is_zero_not_an_error(adapter):
    result = fetch_one(adapter, "So11111111111111111111111111111111111111112")
    assert [(b.asset.key, b.amount) for b in result.balances] == [("native", 0)]


def test_rpc_calls_per_wallet_follow_the_formula(adapter, solana_devnet):
    """requests = W*(1 getBalance + 2 getTokenAccountsByOwner + 2 getProgramAccounts)
    + ceil(2*M/100) getMultipleAccounts (mints + metadata PDAs) + ceil(C/100) (verified collections not read yet)."""
    for wallet in solana_devnet.scenario["wallets"]:
        mints = len(wallet["balances"]) - 1 + len(wallet["nfts"])
        collections = len({n["collection"] for n in wallet["nfts"] if n["collection"] != n["token_id"]})
        expected = 1 + 2 + 2 + math.ceil(2 * mints / 100) + math.ceil(collections / 100)
        assert fetch_one(adapter, wallet["address"]).request_count == expected, wallet["label"]
        without_positions = fetch_one(adapter, wallet["address"], include_positions=False)
        assert without_positions.request_count == expected - 2 and without_positions.positions == ()


def test_several_wallets_share_one_mint_read(adapter, solana_devnet):
    wallets = solana_devnet.scenario["wallets"]
    result = adapter.fetch(FetchRequest(wallets=tuple(WalletRef(w["address"]) for w in wallets)))
    mints = {k for w in wallets for k in w["balances"] if k != "native"} | {n["token_id"] for w in wallets for n in w["nfts"]}
    collections = {n["collection"] for w in wallets for n in w["nfts"] if n["collection"] != n["token_id"]} - mints
    assert result.request_count == 5 * len(wallets) + math.ceil(2 * len(mints) / 100) + math.ceil(len(collections) / 100)
    for wallet in wallets:
        got = {b.asset.key: str(b.amount) for b in result.balances if b.owner == wallet["address"]}
        assert got == wallet["balances"]


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
