// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface ISpreadToken {
    function transfer(address to, uint256 amount) external returns (bool);
    function approve(address spender, uint256 amount) external returns (bool);
}

interface ISpreadPositionManager {
    struct MintParams {
        address token0; address token1; uint24 fee; int24 tickLower; int24 tickUpper;
        uint256 amount0Desired; uint256 amount1Desired; uint256 amount0Min; uint256 amount1Min;
        address recipient; uint256 deadline;
    }
    function mint(MintParams calldata params) external payable returns (uint256, uint128, uint256, uint256);
}

interface ISpreadLendingPool {
    function supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode) external;
}

/// @notice Devnet/benchmark helper: gives many wallets a position in every protocol in one transaction
/// (token transfers, a Uniswap V3 mint for the wallet, an Aave supply on its behalf). It spends what it holds.
contract PositionSpreader {
    struct Gift { address token; uint256 amount; }

    function approve(address token, address spender) external {
        ISpreadToken(token).approve(spender, type(uint256).max);
    }

    function spread(
        address[] calldata wallets, Gift[] calldata gifts, address positionManager,
        ISpreadPositionManager.MintParams calldata mint, address lendingPool, address supplyAsset, uint256 supplyAmount
    ) external {
        ISpreadPositionManager.MintParams memory params = mint;
        for (uint256 i = 0; i < wallets.length; i++) {
            for (uint256 j = 0; j < gifts.length; j++) {
                require(ISpreadToken(gifts[j].token).transfer(wallets[i], gifts[j].amount), "transfer");
            }
            params.recipient = wallets[i];
            ISpreadPositionManager(positionManager).mint(params);
            ISpreadLendingPool(lendingPool).supply(supplyAsset, supplyAmount, wallets[i], 0);
        }
    }
}
