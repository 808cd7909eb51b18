"""DeFi positions on the devnet, checked against what the protocols' own contracts answer at the same block."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector

from chains.base import EndpointConfig, FetchRequest, WalletRef
from chains.endpoints import EndpointHealth
from chains.evm.adapter import EvmAdapter
from devnet.common import rpc
from tests.fixtures.evm import chain_config_for, known_assets_for

MAX_UINT128 = 2**128 - 1
REVERT_CODE = "0x60006000fd"  # PUSH1 0 PUSH1 0 REVERT


def call(url, to, signature, types=(), args=(), returns=("uint256",), *, block, sender=None):
    """eth_call ``signature`` on ``to`` at ``block`` (as ``sender``) and decode ``returns``."""
    data = function_signature_to_4byte_selector(signature) + encode(list(types), list(args))
    tx = {"to": to, "data": "0x" + data.hex(), **({"from": sender} if sender else {})}
    raw = bytes.fromhex(rpc(url, "eth_call", [tx, hex(block)])[2:])
    values = decode(list(returns), raw)
    return values[0] if len(values) == 1 else values


def defi_adapter(devnet, url=None, **extra):
    cfg = chain_config_for(devnet.scenario, protocols=devnet.scenario["defi"]["protocols"], extra=extra)
    return EvmAdapter(cfg, [EndpointConfig(url=url or devnet.url, timeout_s=20.0)], health=EndpointHealth(),
                      metadata_fetcher=lambda uri: {})


def defi_request(devnet, **kwargs):
    wallets = tuple(WalletRef(w["address"]) for w in devnet.scenario["defi"]["wallets"])
    return FetchRequest(wallets=wallets, known_assets=known_assets_for(devnet.scenario), **kwargs)


@pytest.fixture(scope="module")
def fetched(evm_devnet):
    """One fetch of Carol and Dave with every protocol configured (the tests below only read it)."""
    return defi_adapter(evm_devnet).fetch(defi_request(evm_devnet))


def positions(result, protocol, owner=None):
    return [p for p in result.positions if p.protocol == protocol and (owner is None or p.owner == owner)]


def legs(position, role):
    return {leg.asset.address: leg.amount for leg in position.legs if leg.role == role}


def test_every_protocol_loads_without_problems(fetched):
    assert [p for p in fetched.problems if p.protocol] == []
    assert fetched.incomplete_protocols == ()
    assert {p.protocol for p in fetched.positions} == {"uniswap_v2", "uniswap_v3", "aave_v3", "erc4626", "liquid_staking"}


def test_v3_amounts_and_fees_equal_what_the_position_manager_pays_out(evm_devnet, fetched):
    facts = evm_devnet.scenario["defi"]["facts"]["uniswap_v3"]
    npm = evm_devnet.scenario["defi"]["protocols"]["uniswap_v3"]["position_manager"]
    found = {int(p.ref): p for p in positions(fetched, "uniswap_v3")}
    assert sorted(found) == sorted(facts["in_range"] + facts["out_of_range"])
    for token_id, position in found.items():
        liquidity = int(position.details["liquidity"])
        decrease = function_signature_to_4byte_selector("decreaseLiquidity((uint256,uint128,uint256,uint256,uint256))") + encode(
            ["(uint256,uint128,uint256,uint256,uint256)"], [(token_id, liquidity, 0, 0, 2**63)])
        collect = function_signature_to_4byte_selector("collect((uint256,address,uint128,uint128))") + encode(
            ["(uint256,address,uint128,uint128)"], [(token_id, position.owner, MAX_UINT128, MAX_UINT128)])
        out = call(evm_devnet.url, npm, "multicall(bytes[])", ["bytes[]"], [[decrease, collect]], ["bytes[]"],
                   block=fetched.height, sender=position.owner)
        paid = decode(["uint256", "uint256"], out[0])
        collected = decode(["uint256", "uint256"], out[1])
        tokens = (facts["token0"], facts["token1"])
        supplied, fees = legs(position, "supplied"), legs(position, "fees")
        assert (supplied[tokens[0]], supplied[tokens[1]]) == paid
        assert (fees.get(tokens[0], 0), fees.get(tokens[1], 0)) == (collected[0] - paid[0], collected[1] - paid[1])
        assert position.details["in_range"] is (token_id in facts["in_range"])
        assert all(fees.values()) and len(fees) == 2  # the swaps crossed both ranges, both ways
        assert Decimal(position.details["price_lower"]) < Decimal(position.details["price_upper"])
        assert position.accounts_for == (f"{npm}:{token_id}",)


def test_aave_health_factor_and_totals_equal_get_user_account_data(evm_devnet, fetched):
    defi = evm_devnet.scenario["defi"]
    pool = defi["protocols"]["aave_v3"]["pool"]
    reserves = defi["facts"]["aave_v3"]["reserves"]
    for owner in (defi["facts"]["aave_v3"]["supplier"], defi["facts"]["aave_v3"]["near_liquidation"]):
        (position,) = positions(fetched, "aave_v3", owner)
        collateral, debt, available, threshold, ltv, hf = call(
            evm_devnet.url, pool, "getUserAccountData(address)", ["address"], [owner], ["uint256"] * 6, block=fetched.height)
        assert position.health_factor == Decimal(hf) / Decimal(10**18)
        assert Decimal(position.details["total_collateral_usd"]) == Decimal(collateral) / 10**8
        assert Decimal(position.details["total_debt_usd"]) == Decimal(debt) / 10**8
        assert Decimal(position.details["available_borrows_usd"]) == Decimal(available) / 10**8
        assert Decimal(position.details["ltv"]) == Decimal(ltv) / 100
        assert Decimal(position.details["liquidation_threshold"]) == Decimal(threshold) / 100
        for asset, tokens in reserves.items():
            supplied = call(evm_devnet.url, tokens["a_token"], "balanceOf(address)", ["address"], [owner], block=fetched.height)
            borrowed = call(evm_devnet.url, tokens["variable_debt"], "balanceOf(address)", ["address"], [owner], block=fetched.height)
            assert legs(position, "supplied").get(asset, 0) == supplied
            assert legs(position, "borrowed").get(asset, 0) == borrowed
    carol, dave = (positions(fetched, "aave_v3", defi["facts"]["aave_v3"][k])[0] for k in ("supplier", "near_liquidation"))
    assert Decimal("1.4") < carol.health_factor < Decimal("1.6")
    assert Decimal(1) < dave.health_factor < Decimal("1.1")


def test_vault_amounts_equal_convert_to_assets_and_preview_redeem(evm_devnet, fetched):
    facts = evm_devnet.scenario["defi"]["facts"]["erc4626"]
    found = {p.ref: p for p in positions(fetched, "erc4626", facts["owner"])}
    assert set(found) == {facts["registered"], facts["discovered"]}  # the second one only held, not registered
    for vault, position in found.items():
        shares = call(evm_devnet.url, vault, "balanceOf(address)", ["address"], [facts["owner"]], block=fetched.height)
        (leg,) = position.legs
        assert leg.amount == call(evm_devnet.url, vault, "convertToAssets(uint256)", ["uint256"], [shares], block=fetched.height)
        assert leg.amount == call(evm_devnet.url, vault, "previewRedeem(uint256)", ["uint256"], [shares], block=fetched.height)
        assert leg.amount > shares * 10 ** (leg.asset.decimals - int(position.details["share_decimals"]))  # earned yield
        assert position.details["registered"] is (vault == facts["registered"])


def test_v2_legs_equal_the_reserves_maths(evm_devnet, fetched):
    facts = evm_devnet.scenario["defi"]["facts"]["uniswap_v2"]
    pair, owner = facts["pair"], facts["owner"]
    (position,) = positions(fetched, "uniswap_v2", owner)
    at = fetched.height
    reserve0, reserve1, _ = call(evm_devnet.url, pair, "getReserves()", returns=["uint112", "uint112", "uint32"], block=at)
    supply = call(evm_devnet.url, pair, "totalSupply()", block=at)
    lp = call(evm_devnet.url, pair, "balanceOf(address)", ["address"], [owner], block=at)
    token0 = call(evm_devnet.url, pair, "token0()", returns=["address"], block=at)
    token1 = call(evm_devnet.url, pair, "token1()", returns=["address"], block=at)
    supplied = {k.lower(): v for k, v in legs(position, "supplied").items()}
    assert supplied == {token0.lower(): lp * reserve0 // supply, token1.lower(): lp * reserve1 // supply}
    assert Decimal(position.details["pool_share"]) == (Decimal(lp) / Decimal(supply)).quantize(Decimal("1e-18"))


def test_liquid_staking_uses_the_tokens_own_rates(evm_devnet, fetched):
    roles = evm_devnet.scenario["defi"]["protocols"]["liquid_staking"]
    owner = evm_devnet.scenario["defi"]["facts"]["liquid_staking"]["owner"]
    at = fetched.height
    found = {p.ref: p for p in positions(fetched, "liquid_staking", owner)}
    balance = {role: call(evm_devnet.url, token, "balanceOf(address)", ["address"], [owner], block=at) for role, token in roles.items()}
    expected = {
        roles["steth"]: balance["steth"],
        roles["wsteth"]: call(evm_devnet.url, roles["wsteth"], "getStETHByWstETH(uint256)", ["uint256"], [balance["wsteth"]], block=at),
        roles["reth"]: call(evm_devnet.url, roles["reth"], "getEthValue(uint256)", ["uint256"], [balance["reth"]], block=at),
    }
    assert {ref: p.legs[0].amount for ref, p in found.items()} == expected
    assert all(p.legs[0].asset.address is None and p.legs[0].role == "staked" for p in found.values())
    assert expected[roles["reth"]] > balance["reth"]  # rewards show in the rate


def test_tokens_inside_positions_are_not_also_plain_holdings(evm_devnet, fetched):
    accounted = {(p.owner, key) for p in fetched.positions for key in p.accounts_for}
    assert len(accounted) >= 12  # LP, 2 V3 NFTs, aTokens and debt tokens, 2 vault shares, 3 LSTs
    assert not [b for b in fetched.balances if (b.owner, b.asset.address) in accounted]
    npm = evm_devnet.scenario["defi"]["protocols"]["uniswap_v3"]["position_manager"]
    assert not [n for n in fetched.nfts if n.collection.address == npm]
    # Without positions the same tokens are ordinary holdings: the marks are what moved them.
    plain = defi_adapter(evm_devnet).fetch(defi_request(evm_devnet, include_positions=False, include_nfts=False))
    held = {(b.owner, b.asset.address) for b in plain.balances}
    assert {(o, k) for o, k in accounted if ":" not in k} <= held


def test_a_reverting_protocol_contract_is_a_problem_and_everything_else_loads(evm_devnet, fetched, evm_snapshot):
    pool = evm_devnet.scenario["defi"]["protocols"]["aave_v3"]["pool"]
    rpc(evm_devnet.url, "anvil_setCode", [pool, REVERT_CODE])
    res = defi_adapter(evm_devnet).fetch(defi_request(evm_devnet))
    assert res.incomplete_protocols == ("aave_v3",)
    assert [p.subject for p in res.problems if p.protocol] == [pool]
    assert not positions(res, "aave_v3")
    assert {p.protocol for p in res.positions} == {"uniswap_v2", "uniswap_v3", "erc4626", "liquid_staking"}
    assert len(res.positions) == len(fetched.positions) - 2
    assert res.complete == fetched.complete  # holdings unaffected (the listed BRKN token reverts in both)
    assert {b.owner for b in res.balances} == {p.owner for p in fetched.positions} | {
        evm_devnet.scenario["defi"]["facts"]["aave_v3"]["near_liquidation"]}


def test_a_pool_answering_garbage_loses_only_its_positions(evm_devnet, fetched, evm_snapshot):
    # A V3 pool whose every function answers one word: slot0() and ticks() are then malformed.
    pool = evm_devnet.scenario["defi"]["facts"]["uniswap_v3"]["pool"]
    rpc(evm_devnet.url, "anvil_setCode", [pool, "0x7f" + "11" * 32 + "60005260206000f3"])
    res = defi_adapter(evm_devnet).fetch(defi_request(evm_devnet))
    assert res.incomplete_protocols == ("uniswap_v3",)
    assert [(p.code, p.subject) for p in res.problems if p.protocol] == [("position_read_failed", pool)]
    assert not positions(res, "uniswap_v3")
    assert len(res.positions) == len(fetched.positions) - 2


def test_a_misconfigured_protocol_is_reported_and_skipped(evm_devnet):
    protocols = dict(evm_devnet.scenario["defi"]["protocols"], aave_v3={"pool": "not an address"}, compound={"comet": "0x0"})
    cfg = chain_config_for(evm_devnet.scenario, protocols=protocols)
    res = EvmAdapter(cfg, [EndpointConfig(url=evm_devnet.url)], health=EndpointHealth()).fetch(defi_request(evm_devnet))
    assert {(p.code, p.protocol) for p in res.problems if p.protocol} == {("protocol_config", "aave_v3"), ("protocol_unknown", "compound")}
    assert {p.protocol for p in res.positions} == {"uniswap_v2", "uniswap_v3", "erc4626", "liquid_staking"}


def test_positions_older_than_the_log_scan_are_found_from_the_protocols_themselves(evm_devnet, fetched):
    # Scan no logs at all: V3 ids come from tokenOfOwnerByIndex, Aave from the account configuration,
    # registered vaults and LSTs from their own balanceOf; the cursor then remembers the V3 ids.
    head = int(rpc(evm_devnet.url, "eth_blockNumber"), 16)
    cfg = chain_config_for(evm_devnet.scenario, protocols=evm_devnet.scenario["defi"]["protocols"], log_scan_start=head + 1)
    adapter = EvmAdapter(cfg, [EndpointConfig(url=evm_devnet.url)], health=EndpointHealth())
    res = adapter.fetch(defi_request(evm_devnet))
    facts = evm_devnet.scenario["defi"]["facts"]
    npm = evm_devnet.scenario["defi"]["protocols"]["uniswap_v3"]["position_manager"]
    assert sorted(int(p.ref) for p in positions(res, "uniswap_v3")) == sorted(facts["uniswap_v3"]["in_range"] + facts["uniswap_v3"]["out_of_range"])
    assert len(positions(res, "aave_v3")) == 2
    assert {p.ref for p in positions(res, "erc4626")} == {facts["erc4626"]["registered"]}  # the unregistered one needs the logs
    assert len(positions(res, "liquid_staking")) == 3
    assert adapter.last_rounds <= 4  # balances, ids, positions, pools
    carol = facts["uniswap_v3"]["owner"]
    assert sorted(res.cursors[carol]["nft_ids"][npm]) == sorted(str(i) for i in facts["uniswap_v3"]["in_range"] + facts["uniswap_v3"]["out_of_range"])
    by_ref = {p.ref: p for p in positions(fetched, "uniswap_v3")}
    assert all(p.legs == by_ref[p.ref].legs for p in positions(res, "uniswap_v3"))  # same numbers either way
