"""Mainnet contract addresses of the supported protocols, per EVM chain id: what the admin rows are seeded with."""

from __future__ import annotations

from typing import Any

ETHEREUM, OPTIMISM, POLYGON, BASE, ARBITRUM = 1, 10, 137, 8453, 42161

# Where each address was checked (the protocols' own publications):
SOURCES = {
    "uniswap_v2": "docs.uniswap.org/contracts/v2/reference/smart-contracts/v2-deployments",
    "uniswap_v3": "github.com/Uniswap/v3-periphery deploys.md (Ethereum, Polygon, Optimism, Arbitrum); "
                  "docs.uniswap.org/contracts/v3/reference/deployments/base-deployments (Base)",
    "aave_v3": "github.com/bgd-labs/aave-address-book src/AaveV3<Network>.sol (POOL_ADDRESSES_PROVIDER, POOL)",
    "liquid_staking": "Lido and Rocket Pool token addresses on Ethereum (docs.lido.fi, rocket-pool/rocketpool)",
}

_UNISWAP_V3_CANONICAL = {
    "position_manager": "0xC36442b4a4522E871399CD717aBDD847Ab11FE88",
    "factory": "0x1F98431c8aD98523631AE4a59f267346ea31F984",
}
_AAVE_V3_L2 = {  # one address set shared by Arbitrum, Optimism and Polygon
    "addresses_provider": "0xa97684ead0e402dC232d5A977953DF7ECBaB3CDb",
    "pool": "0x794a61358D6845594F94dc1DB02A252b5b4814aD",
}

# chain id -> protocol (chains.evm.protocols.PROTOCOLS key) -> role -> address. ``erc4626`` with no
# registered vault still finds the vaults a wallet holds. Liquid staking only on Ethereum: the
# bridged wstETH and rETH of the L2s are plain ERC-20s without the rate functions (they are priced
# as tokens instead).
DEPLOYMENTS: dict[int, dict[str, dict[str, Any]]] = {
    ETHEREUM: {
        "uniswap_v2": {"factory": "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f",
                       "router": "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"},
        "uniswap_v3": dict(_UNISWAP_V3_CANONICAL),
        "aave_v3": {"addresses_provider": "0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e",
                    "pool": "0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2"},
        "erc4626": {"vaults": []},
        "liquid_staking": {"steth": "0xae7ab96520DE3A18E5e111B5EaAb095312D7fE84",
                           "wsteth": "0x7f39C581F595B53c5cb19bD0b3f8dA6c935E2Ca0",
                           "reth": "0xae78736Cd615f374D3085123A210448E74Fc6393"},
    },
    ARBITRUM: {
        "uniswap_v2": {"factory": "0xf1D7CC64Fb4452F05c498126312eBE29f30Fbcf9",
                       "router": "0x4752ba5DBc23f44D87826276BF6Fd6b1C372aD24"},
        "uniswap_v3": dict(_UNISWAP_V3_CANONICAL),
        "aave_v3": dict(_AAVE_V3_L2),
        "erc4626": {"vaults": []},
    },
    OPTIMISM: {
        "uniswap_v2": {"factory": "0x0c3c1c532F1e39EdF36BE9Fe0bE1410313E074Bf",
                       "router": "0x4A7b5Da61326A6379179b40d00F57E5bbDC962c2"},
        "uniswap_v3": dict(_UNISWAP_V3_CANONICAL),
        "aave_v3": dict(_AAVE_V3_L2),
        "erc4626": {"vaults": []},
    },
    BASE: {
        "uniswap_v2": {"factory": "0x8909Dc15e40173Ff4699343b6eB8132c65e18eC6",
                       "router": "0x4752ba5DBc23f44D87826276BF6Fd6b1C372aD24"},
        "uniswap_v3": {"position_manager": "0x03a520b32C04BF3bEEf7BEb72E919cf822Ed34f1",
                       "factory": "0x33128a8fC17869897dcE68Ed026d694621f6FDfD"},
        "aave_v3": {"addresses_provider": "0xe20fCBdBfFC4Dd138cE8b2E6FBb6CB49777ad64D",
                    "pool": "0xA238Dd80C259a72e81d7e4664a9801593F98d1c5"},
        "erc4626": {"vaults": []},
    },
    POLYGON: {
        "uniswap_v2": {"factory": "0x9e5A52f57b3038F1B8EeE45F28b3C1967e22799C",
                       "router": "0xedf6066a2b290C185783862C7F4776A2C8077AD1"},
        "uniswap_v3": dict(_UNISWAP_V3_CANONICAL),
        "aave_v3": dict(_AAVE_V3_L2),
        "erc4626": {"vaults": []},
    },
}


def deployments_for(chain_id: int | None) -> dict[str, dict[str, Any]]:
    """The protocol contracts known for ``chain_id`` (a fresh copy; empty for other chains)."""
    return {name: {role: (list(v) if isinstance(v, list) else v) for role, v in roles.items()}
            for name, roles in DEPLOYMENTS.get(chain_id or 0, {}).items()}
