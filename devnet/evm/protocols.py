"""Deploy Uniswap V2/V3, Aave V3 (their published npm bytecode), ERC-4626 vaults and LSTs on anvil with web3.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from math import isqrt
from typing import Any

from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from chains.evm.protocols.v3math import sqrt_ratio_at_tick
from devnet.common import NODE_MODULES
from devnet.evm.node import artifact as own_artifact

# The published build outputs inside the pinned npm packages (devnet/package.json).
NPM_ARTIFACTS = {
    "UniswapV2Factory": "@uniswap/v2-core/build/UniswapV2Factory.json",
    "UniswapV2Pair": "@uniswap/v2-core/build/UniswapV2Pair.json",
    "UniswapV3Factory": "@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json",
    "UniswapV3Pool": "@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json",
    "NonfungiblePositionManager": "@uniswap/v3-periphery/artifacts/contracts/NonfungiblePositionManager.sol/NonfungiblePositionManager.json",
    "NFTDescriptor": "@uniswap/v3-periphery/artifacts/contracts/libraries/NFTDescriptor.sol/NFTDescriptor.json",
    "NonfungibleTokenPositionDescriptor": "@uniswap/v3-periphery/artifacts/contracts/NonfungibleTokenPositionDescriptor.sol/NonfungibleTokenPositionDescriptor.json",
    "SwapRouter": "@uniswap/v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json",
    "WETH9": "@aave/core-v3/artifacts/contracts/dependencies/weth/WETH9.sol/WETH9.json",
}
_AAVE = "@aave/core-v3/artifacts/contracts/"
for _name, _path in {
    "PoolAddressesProvider": "protocol/configuration/PoolAddressesProvider.sol",
    "ACLManager": "protocol/configuration/ACLManager.sol",
    "Pool": "protocol/pool/Pool.sol",
    "PoolConfigurator": "protocol/pool/PoolConfigurator.sol",
    "AaveOracle": "misc/AaveOracle.sol",
    "AaveProtocolDataProvider": "misc/AaveProtocolDataProvider.sol",
    "AToken": "protocol/tokenization/AToken.sol",
    "StableDebtToken": "protocol/tokenization/StableDebtToken.sol",
    "VariableDebtToken": "protocol/tokenization/VariableDebtToken.sol",
    "DefaultReserveInterestRateStrategy": "protocol/pool/DefaultReserveInterestRateStrategy.sol",
    **{lib: f"protocol/libraries/logic/{lib}.sol" for lib in (
        "SupplyLogic", "BorrowLogic", "BridgeLogic", "EModeLogic", "LiquidationLogic", "PoolLogic",
        "FlashLoanLogic", "ConfiguratorLogic")},
}.items():
    NPM_ARTIFACTS[_name] = f"{_AAVE}{_path}/{_name}.json"

DEPLOYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
# anvil dev accounts #3 and #4: the DeFi wallets of the demo (the balance scenario uses #1 and #2).
CAROL = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
DAVE = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
TREASURY = to_checksum_address("0x" + "7e" * 20)

ETH = 10**18
USDC = 10**6
RAY = 10**27
DEADLINE = 2**63
V3_FEE = 3000
V3_SPACING = 60
GAS = 15_000_000
FEED_DECIMALS = 8
GAS_PRICE = 3 * 10**9  # above anvil's base fee: web3 then asks no fee questions


def npm_artifact(name: str) -> dict[str, Any]:
    """``{abi, bytecode, linkReferences}`` of a contract from the pinned npm packages."""
    data = json.loads((NODE_MODULES / NPM_ARTIFACTS[name]).read_text())
    bytecode = data.get("bytecode") or data["evm"]["bytecode"]["object"]
    if isinstance(bytecode, dict):
        bytecode = bytecode["object"]
    return {"abi": data["abi"], "bytecode": bytecode if bytecode.startswith("0x") else "0x" + bytecode,
            "linkReferences": data.get("linkReferences") or {}}


def link(bytecode: str, references: dict[str, dict[str, list[dict[str, int]]]], libraries: dict[str, str]) -> str:
    """Splice deployed library addresses into ``bytecode`` at the offsets the compiler recorded.
    Raises ``KeyError`` naming a library that was not deployed."""
    code = bytecode[2:]  # hex text: the placeholders ("__$...$__") are not hex digits
    for libs in references.values():
        for lib, spots in libs.items():
            address = libraries[lib][2:].lower()
            for spot in spots:
                start = 2 * spot["start"]
                code = code[:start] + address + code[start + 2 * spot["length"]:]
    return "0x" + code


@dataclass
class Chain:
    """web3 over the devnet with the unlocked anvil accounts; every transaction must succeed."""

    url: str
    w3: Web3 = field(init=False)
    libraries: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 60}))
        # The validation middleware asks eth_chainId before every transaction and the ENS one resolves
        # names we never use: on a devnet that is two thirds of the requests of a deployment.
        for name in ("validation", "ens_name_to_address"):
            self.w3.middleware_onion.remove(name)

    def _wait(self, tx_hash: Any, what: str) -> Any:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.01)
        if receipt["status"] != 1:
            raise RuntimeError(f"{what} reverted (tx {tx_hash.hex()})")
        return receipt

    def deploy(self, name: str, *args: Any, sender: str = DEPLOYER, own: bool = False) -> Contract:
        """Deploy ``name`` (an npm artifact, or with ``own`` one of devnet/evm/artifacts), linking the
        libraries deployed so far. Raises ``RuntimeError`` when the deployment reverts."""
        art = own_artifact(name) if own else npm_artifact(name)
        bytecode = link(art["bytecode"], art.get("linkReferences") or {}, self.libraries)
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=bytecode)
        tx = factory.constructor(*args).transact({"from": sender, "gas": GAS, "gasPrice": GAS_PRICE})
        address = self._wait(tx, f"deploying {name}")["contractAddress"]
        return self.w3.eth.contract(address=address, abi=art["abi"])

    def library(self, name: str) -> None:
        self.libraries[name] = self.deploy(name).address

    def at(self, name: str, address: str, own: bool = False) -> Contract:
        abi = (own_artifact(name) if own else npm_artifact(name))["abi"]
        return self.w3.eth.contract(address=to_checksum_address(address), abi=abi)

    def send(self, fn: Any, sender: str = DEPLOYER, value: int = 0) -> Any:
        """Transact a bound contract function. Raises ``RuntimeError`` when it reverts."""
        tx = fn.transact({"from": sender, "gas": GAS, "gasPrice": GAS_PRICE, "value": value})
        return self._wait(tx, getattr(fn, "fn_name", "call"))


# --------------------------------------------------------------------------- the scenario


def deploy_defi(url: str) -> dict[str, Any]:
    """Build the DeFi part of the devnet and return its expectations (JSON-serialisable):
    ``tokens``, their ``oracles`` and ``prices``, the ``protocols`` mapping a chain's config carries
    (name -> role -> address), the DeFi ``wallets`` and per-protocol ``facts``.
    Raises ``RuntimeError`` when a transaction reverts.
    """
    chain = Chain(url)

    def erc20(name: str, symbol: str, decimals: int) -> str:
        return chain.deploy("DemoToken", name, symbol, decimals, own=True).address

    def feed(description: str, price: str) -> str:
        answer = int(Decimal(price).scaleb(FEED_DECIMALS))
        return chain.deploy("PriceFeed", FEED_DECIMALS, description, answer, own=True).address

    def mint(token: str, to: str, amount: int) -> None:
        chain.send(_erc20(chain, token).functions.mint(to, amount))

    weth = erc20("Devnet Wrapped Ether", "WETHx", 18)
    usdc = erc20("Devnet USD Coin", "USDCx", 6)
    weth_feed, usdc_feed = feed("WETHx / USD", "2000.00"), feed("USDCx / USD", "1.00")
    tokens = {"WETHx": weth, "USDCx": usdc}
    for holder, amounts in ((DEPLOYER, (1_000 * ETH, 5_000_000 * USDC)), (CAROL, (100 * ETH, 100_000 * USDC)),
                            (DAVE, (20 * ETH, 0))):
        for token, amount in zip((weth, usdc), amounts):
            if amount:
                mint(token, holder, amount)

    protocols: dict[str, dict[str, Any]] = {}
    facts: dict[str, Any] = {}
    protocols["uniswap_v2"], facts["uniswap_v2"] = _uniswap_v2(chain, weth, usdc)
    protocols["uniswap_v3"], facts["uniswap_v3"] = _uniswap_v3(chain, weth, usdc)
    protocols["aave_v3"], facts["aave_v3"] = _aave_v3(chain, weth, usdc, weth_feed, usdc_feed)
    protocols["erc4626"], facts["erc4626"] = _vaults(chain, weth, usdc)
    protocols["liquid_staking"], facts["liquid_staking"] = _liquid_staking(chain)
    return {
        "tokens": tokens,
        # As listed assets (the demo and the sync tests price the positions' legs with these feeds).
        "assets": [{"address": weth, "symbol": "WETHx", "name": "Devnet Wrapped Ether", "decimals": 18, "oracle": weth_feed},
                   {"address": usdc, "symbol": "USDCx", "name": "Devnet USD Coin", "decimals": 6, "oracle": usdc_feed}],
        "oracles": {weth: weth_feed, usdc: usdc_feed},
        "prices": {weth: "2000.00", usdc: "1.00"},
        "protocols": protocols,
        "wallets": [{"address": CAROL, "label": "Carol (DeFi, anvil #3)"},
                    {"address": DAVE, "label": "Dave (Aave near liquidation, anvil #4)"}],
        "facts": facts,
    }


def _erc20(chain: Chain, address: str) -> Contract:
    return chain.at("DemoToken", address, own=True)


def _approve(chain: Chain, token: str, spender: str, owner: str, amount: int = 2**256 - 1) -> None:
    chain.send(_erc20(chain, token).functions.approve(spender, amount), owner)


def _uniswap_v2(chain: Chain, weth: str, usdc: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A WETHx/USDCx pair: the deployer seeds it, Carol adds liquidity, a swap moves the reserves."""
    factory = chain.deploy("UniswapV2Factory", DEPLOYER)
    chain.send(factory.functions.createPair(weth, usdc))
    pair = chain.at("UniswapV2Pair", factory.functions.getPair(weth, usdc).call())

    def add(owner: str, weth_amount: int, usdc_amount: int) -> None:
        chain.send(_erc20(chain, weth).functions.transfer(pair.address, weth_amount), owner)
        chain.send(_erc20(chain, usdc).functions.transfer(pair.address, usdc_amount), owner)
        chain.send(pair.functions.mint(owner), owner)

    add(DEPLOYER, 100 * ETH, 200_000 * USDC)
    add(CAROL, 5 * ETH, 10_000 * USDC)
    # Swap 1 WETHx in (the pair's own constant-product rule with its 0.3% fee): the LP share earns.
    reserve0, reserve1, _ = pair.functions.getReserves().call()
    weth_is_0 = pair.functions.token0().call() == weth
    amount_in = ETH
    reserve_in, reserve_out = (reserve0, reserve1) if weth_is_0 else (reserve1, reserve0)
    out = amount_in * 997 * reserve_out // (reserve_in * 1000 + amount_in * 997)
    chain.send(_erc20(chain, weth).functions.transfer(pair.address, amount_in))
    chain.send(pair.functions.swap(0 if weth_is_0 else out, out if weth_is_0 else 0, DEPLOYER, b""))
    return {"factory": factory.address}, {"pair": pair.address, "owner": CAROL,
                                          "lp_balance": str(pair.functions.balanceOf(CAROL).call())}


def _uniswap_v3(chain: Chain, weth: str, usdc: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A WETHx/USDCx 0.3% pool through the real NonfungiblePositionManager: Carol holds one position in
    range and one above the price; swaps push the price through both ranges and back, so both earn fees."""
    factory = chain.deploy("UniswapV3Factory")
    weth9 = chain.deploy("WETH9")
    chain.library("NFTDescriptor")
    descriptor = chain.deploy("NonfungibleTokenPositionDescriptor", weth9.address, b"ETH".ljust(32, b"\0"))
    npm = chain.deploy("NonfungiblePositionManager", factory.address, weth9.address, descriptor.address)
    router = chain.deploy("SwapRouter", factory.address, weth9.address)
    token0, token1 = sorted((weth, usdc), key=lambda a: int(a, 16))
    # 2,000 USDCx per WETHx as a raw-unit price token1/token0, then sqrt(price) * 2^96.
    num, den = (2000 * USDC, ETH) if token0 == weth else (ETH, 2000 * USDC)
    sqrt_price = isqrt(num * (1 << 192) // den)
    chain.send(npm.functions.createAndInitializePoolIfNecessary(token0, token1, V3_FEE, sqrt_price))
    pool = chain.at("UniswapV3Pool", factory.functions.getPool(token0, token1, V3_FEE).call())
    tick0 = pool.functions.slot0().call()[1]
    base = tick0 - tick0 % V3_SPACING
    for owner in (DEPLOYER, CAROL):
        for token in (weth, usdc):
            _approve(chain, token, npm.address, owner)
            _approve(chain, token, router.address, owner)

    def mint(owner: str, lower: int, upper: int, amount0: int, amount1: int) -> int:
        params = (token0, token1, V3_FEE, lower, upper, amount0, amount1, 0, 0, owner, DEADLINE)
        receipt = chain.send(npm.functions.mint(params), owner)
        (event,) = npm.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)  # the Transfer/Mint logs of other contracts
        return int(event["args"]["tokenId"])

    big0, big1 = (100 * ETH, 200_000 * USDC) if token0 == weth else (200_000 * USDC, 100 * ETH)
    mint(DEPLOYER, base - 60 * V3_SPACING * 10, base + 60 * V3_SPACING * 10, big0, big1)
    small0, small1 = (ETH, 2_000 * USDC) if token0 == weth else (2_000 * USDC, ETH)
    in_range = mint(CAROL, base - 50 * V3_SPACING, base + 50 * V3_SPACING, small0, small1)
    # Above the price: all token0 now; the swaps below cross it, then leave it out of range again.
    out_of_range = mint(CAROL, base + 10 * V3_SPACING, base + 30 * V3_SPACING, small0, 0)

    def swap_to(tick: int) -> None:
        zero_for_one = tick < pool.functions.slot0().call()[1]
        token_in, token_out = (token0, token1) if zero_for_one else (token1, token0)
        params = (token_in, token_out, V3_FEE, DEPLOYER, DEADLINE, 10**30, 0, sqrt_ratio_at_tick(tick))
        chain.send(router.functions.exactInputSingle(params))

    swap_to(base + 20 * V3_SPACING)   # up into the upper range
    swap_to(base - 5 * V3_SPACING)    # back down: the upper range is out again, the lower one earned both ways
    return ({"position_manager": npm.address, "factory": factory.address},
            {"pool": pool.address, "owner": CAROL, "in_range": [in_range], "out_of_range": [out_of_range],
             "token0": token0, "token1": token1})


def _aave_v3(chain: Chain, weth: str, usdc: str, weth_feed: str, usdc_feed: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An Aave V3 market with the published Pool (logic libraries linked), configurator, oracle and token
    implementations; Carol borrows to a health factor near 1.5, Dave to one below 1.1."""
    provider = chain.deploy("PoolAddressesProvider", "Devnet", DEPLOYER)
    chain.send(provider.functions.setACLAdmin(DEPLOYER))
    acl = chain.deploy("ACLManager", provider.address)
    chain.send(provider.functions.setACLManager(acl.address))
    chain.send(acl.functions.addPoolAdmin(DEPLOYER))
    for lib in ("SupplyLogic", "BorrowLogic", "BridgeLogic", "EModeLogic", "LiquidationLogic", "PoolLogic",
                "ConfiguratorLogic"):
        chain.library(lib)
    chain.library("FlashLoanLogic")  # links BorrowLogic
    chain.send(provider.functions.setPoolImpl(chain.deploy("Pool", provider.address).address))
    pool = chain.at("Pool", provider.functions.getPool().call())
    chain.send(provider.functions.setPoolConfiguratorImpl(chain.deploy("PoolConfigurator").address))
    configurator = chain.at("PoolConfigurator", provider.functions.getPoolConfigurator().call())
    oracle = chain.deploy("AaveOracle", provider.address, [weth, usdc], [weth_feed, usdc_feed],
                          "0x0000000000000000000000000000000000000000", "0x0000000000000000000000000000000000000000", 10**8)
    chain.send(provider.functions.setPriceOracle(oracle.address))
    data_provider = chain.deploy("AaveProtocolDataProvider", provider.address)
    chain.send(provider.functions.setPoolDataProvider(data_provider.address))
    a_impl = chain.deploy("AToken", pool.address)
    stable_impl = chain.deploy("StableDebtToken", pool.address)
    variable_impl = chain.deploy("VariableDebtToken", pool.address)
    strategy = chain.deploy("DefaultReserveInterestRateStrategy", provider.address, 80 * RAY // 100, 0,
                            4 * RAY // 100, 75 * RAY // 100, 2 * RAY // 100, 75 * RAY // 100, 2 * RAY // 100,
                            5 * RAY // 100, 20 * RAY // 100)
    zero = "0x0000000000000000000000000000000000000000"
    chain.send(configurator.functions.initReserves([
        (a_impl.address, stable_impl.address, variable_impl.address, decimals, strategy.address, asset, TREASURY, zero,
         f"Aave Devnet {symbol}", f"aDev{symbol}", f"Aave Devnet Variable Debt {symbol}", f"variableDebtDev{symbol}",
         f"Aave Devnet Stable Debt {symbol}", f"stableDebtDev{symbol}", b"")
        for asset, symbol, decimals in ((weth, "WETHx", 18), (usdc, "USDCx", 6))
    ]))
    chain.send(configurator.functions.configureReserveAsCollateral(weth, 8000, 8250, 10500))
    chain.send(configurator.functions.configureReserveAsCollateral(usdc, 7700, 8000, 10450))
    for asset in (weth, usdc):
        chain.send(configurator.functions.setReserveBorrowing(asset, True))

    def supply(owner: str, asset: str, amount: int) -> None:
        _approve(chain, asset, pool.address, owner)
        chain.send(pool.functions.supply(asset, amount, owner, 0), owner)

    supply(DEPLOYER, usdc, 1_000_000 * USDC)
    supply(CAROL, weth, 10 * ETH)
    supply(CAROL, usdc, 500 * USDC)
    chain.send(pool.functions.borrow(usdc, 11_000 * USDC, 2, 0, CAROL), CAROL)  # HF (16,500 + 400) / 11,000
    supply(DAVE, weth, 10 * ETH)
    chain.send(pool.functions.borrow(usdc, 15_500 * USDC, 2, 0, DAVE), DAVE)  # HF 16,500 / 15,500
    reserves = {}
    for asset in (weth, usdc):
        data = pool.functions.getReserveData(asset).call()
        reserves[asset] = {"a_token": data[8], "stable_debt": data[9], "variable_debt": data[10]}
    return ({"pool": pool.address, "addresses_provider": provider.address, "data_provider": data_provider.address},
            {"supplier": CAROL, "near_liquidation": DAVE, "reserves": reserves, "oracle": oracle.address})


def _vaults(chain: Chain, weth: str, usdc: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two OpenZeppelin ERC-4626 vaults: one registered for the chain, one only found in Carol's wallet.
    Transfers of the asset into the vaults are their yield."""
    registered = chain.deploy("DemoVault", usdc, "Devnet USDCx Vault", "dvUSDCx", own=True)
    unregistered = chain.deploy("DemoVault", weth, "Devnet WETHx Vault", "dvWETHx", own=True)
    for vault, token, deposit, other, earned in ((registered, usdc, 1_000 * USDC, 4_000 * USDC, 250 * USDC),
                                                 (unregistered, weth, 3 * ETH, 7 * ETH, ETH // 2)):
        for owner, amount in ((CAROL, deposit), (DEPLOYER, other)):
            _approve(chain, token, vault.address, owner)
            chain.send(vault.functions.deposit(amount, owner), owner)
        chain.send(_erc20(chain, token).functions.transfer(vault.address, earned))
    return ({"vaults": [registered.address]},
            {"owner": CAROL, "registered": registered.address, "discovered": unregistered.address})


def _liquid_staking(chain: Chain) -> tuple[dict[str, Any], dict[str, Any]]:
    """stETH-, wstETH- and rETH-style tokens with rewards already accrued: Carol holds each."""
    steth = chain.deploy("DemoStETH", own=True)
    wsteth = chain.deploy("DemoWstETH", steth.address, own=True)
    reth = chain.deploy("DemoRETH", own=True)
    chain.send(steth.functions.submit(DEPLOYER), DEPLOYER, value=95 * ETH)
    chain.send(steth.functions.submit(DEPLOYER), CAROL, value=5 * ETH)
    chain.send(steth.functions.report(105 * ETH))  # 5% rewards: balances rebase
    chain.send(steth.functions.approve(wsteth.address, 2**256 - 1), CAROL)
    chain.send(wsteth.functions.wrap(2 * ETH), CAROL)
    chain.send(reth.functions.deposit(), CAROL, value=3 * ETH)
    chain.send(reth.functions.setTotalEth(33 * ETH // 10))  # 1 rETH = 1.1 ETH
    return ({"steth": steth.address, "wsteth": wsteth.address, "reth": reth.address},
            {"owner": CAROL, "steth_balance": str(steth.functions.balanceOf(CAROL).call()),
             "wsteth_balance": str(wsteth.functions.balanceOf(CAROL).call()),
             "reth_balance": str(reth.functions.balanceOf(CAROL).call())})




def spread_positions(url: str, scenario: dict[str, Any], wallets: list[str], per_transaction: int = 20) -> None:
    """Give every wallet in ``wallets`` a position in every protocol of ``scenario`` (the devnet
    scenario's JSON): V2 LP tokens, a V3 position in Carol's range, an Aave supply, both vaults' shares
    and the three LSTs, through PositionSpreader (one transaction per ``per_transaction`` wallets).
    For call-budget tests and benchmarks. Raises ``RuntimeError`` when a transaction reverts."""
    chain = Chain(url)
    defi = scenario["defi"]
    protocols, facts, tokens = defi["protocols"], defi["facts"], defi["tokens"]
    weth = tokens["WETHx"]
    n = len(wallets)
    spreader = chain.deploy("PositionSpreader", own=True)
    steth = chain.at("DemoStETH", protocols["liquid_staking"]["steth"], own=True)
    wsteth = chain.at("DemoWstETH", protocols["liquid_staking"]["wsteth"], own=True)
    reth = chain.at("DemoRETH", protocols["liquid_staking"]["reth"], own=True)
    chain.send(steth.functions.approve(wsteth.address, 2**256 - 1))
    chain.send(wsteth.functions.wrap(n * ETH // 50))
    chain.send(reth.functions.deposit(), value=n * ETH // 50)
    gifts = [(facts["uniswap_v2"]["pair"], 10**12), (protocols["erc4626"]["vaults"][0], USDC),
             (facts["erc4626"]["discovered"], ETH // 1000), (steth.address, ETH // 100),
             (wsteth.address, ETH // 100), (reth.address, ETH // 100)]
    v3 = facts["uniswap_v3"]
    token0, token1 = v3["token0"], v3["token1"]
    amount0, amount1 = (ETH // 100, 20 * USDC) if token0 == weth else (20 * USDC, ETH // 100)
    supply = ETH // 100
    for token, amount in [*gifts, (token0, amount0 * n), (token1, amount1 * n), (weth, supply * n)]:
        total = amount if token in (token0, token1, weth) else amount * n + 1  # +1: stETH rounds down
        chain.send(_erc20(chain, token).functions.transfer(spreader.address, total))
    for token, spender in ((token0, protocols["uniswap_v3"]["position_manager"]), (token1, protocols["uniswap_v3"]["position_manager"]),
                           (weth, protocols["aave_v3"]["pool"])):
        chain.send(spreader.functions.approve(token, spender))
    pool = chain.at("UniswapV3Pool", v3["pool"])
    tick = pool.functions.slot0().call()[1]
    base = tick - tick % V3_SPACING
    mint = (token0, token1, V3_FEE, base - 50 * V3_SPACING, base + 50 * V3_SPACING, amount0, amount1, 0, 0, DEPLOYER, DEADLINE)
    for start in range(0, n, per_transaction):
        chunk = [to_checksum_address(w) for w in wallets[start:start + per_transaction]]
        chain.send(spreader.functions.spread(chunk, gifts, protocols["uniswap_v3"]["position_manager"], mint,
                                             protocols["aave_v3"]["pool"], weth, supply))
