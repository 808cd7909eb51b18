"""The EVM DeFi protocols the adapter can read: registry name -> class (the name is also Position.protocol)."""

from __future__ import annotations

from chains.evm.protocols.aave_v3 import AaveV3
from chains.evm.protocols.base import EvmProtocol
from chains.evm.protocols.erc4626 import Erc4626
from chains.evm.protocols.liquid_staking import LiquidStaking
from chains.evm.protocols.uniswap_v2 import UniswapV2
from chains.evm.protocols.uniswap_v3 import UniswapV3

PROTOCOLS: dict[str, type[EvmProtocol]] = {
    "uniswap_v2": UniswapV2,
    "uniswap_v3": UniswapV3,
    "aave_v3": AaveV3,
    "erc4626": Erc4626,
    "liquid_staking": LiquidStaking,
}
