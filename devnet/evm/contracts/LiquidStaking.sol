// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice stETH-style rebasing token (devnet only): balances are shares x pooled ether / total shares,
/// with Lido's function names. `report` stands in for the oracle report that adds staking rewards.
contract DemoStETH {
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    string public constant name = "Devnet Liquid staked Ether";
    string public constant symbol = "stETHx";
    uint8 public constant decimals = 18;
    // Shares are what holders own; balances follow the pooled ether (the rebase).
    mapping(address => uint256) public sharesOf;
    uint256 public totalShares;
    uint256 public totalPooledEther;
    mapping(address => mapping(address => uint256)) public allowance;
    address public owner;

    constructor() { owner = msg.sender; }

    function totalSupply() external view returns (uint256) { return totalPooledEther; }

    function balanceOf(address who) public view returns (uint256) { return getPooledEthByShares(sharesOf[who]); }

    function getPooledEthByShares(uint256 shares) public view returns (uint256) {
        return totalShares == 0 ? shares : shares * totalPooledEther / totalShares;
    }

    function getSharesByPooledEth(uint256 amount) public view returns (uint256) {
        return totalPooledEther == 0 ? amount : amount * totalShares / totalPooledEther;
    }

    function submit(address) external payable returns (uint256 shares) {
        shares = getSharesByPooledEth(msg.value);
        totalShares += shares;
        totalPooledEther += msg.value;
        sharesOf[msg.sender] += shares;
        emit Transfer(address(0), msg.sender, msg.value);
    }

    function report(uint256 newTotalPooledEther) external {
        require(msg.sender == owner, "not owner");
        totalPooledEther = newTotalPooledEther;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        _transfer(from, to, amount);
        return true;
    }

    function transferShares(address to, uint256 shares) external returns (uint256) {
        sharesOf[msg.sender] -= shares;
        sharesOf[to] += shares;
        emit Transfer(msg.sender, to, getPooledEthByShares(shares));
        return getPooledEthByShares(shares);
    }

    function _transfer(address from, address to, uint256 amount) internal {
        uint256 shares = getSharesByPooledEth(amount);
        sharesOf[from] -= shares;
        sharesOf[to] += shares;
        emit Transfer(from, to, amount);
    }
}

/// @notice wstETH-style wrapper: one token per stETH share, Lido's rate functions.
contract DemoWstETH is ERC20 {
    DemoStETH public immutable stETH;

    constructor(DemoStETH stETH_) ERC20("Devnet Wrapped liquid staked Ether", "wstETHx") { stETH = stETH_; }

    function wrap(uint256 stETHAmount) external returns (uint256 wrapped) {
        wrapped = stETH.getSharesByPooledEth(stETHAmount);
        _mint(msg.sender, wrapped);
        stETH.transferFrom(msg.sender, address(this), stETHAmount);
    }

    function getStETHByWstETH(uint256 amount) external view returns (uint256) { return stETH.getPooledEthByShares(amount); }

    function getWstETHByStETH(uint256 amount) external view returns (uint256) { return stETH.getSharesByPooledEth(amount); }

    function stEthPerToken() external view returns (uint256) { return stETH.getPooledEthByShares(1 ether); }
}

/// @notice rETH-style exchange-rate token: ETH value = amount x total ETH / supply, Rocket Pool's names.
contract DemoRETH is ERC20 {
    address public owner;
    uint256 public totalEth;

    constructor() ERC20("Devnet Rocket Pool ETH", "rETHx") { owner = msg.sender; }

    function deposit() external payable {
        uint256 minted = totalSupply() == 0 ? msg.value : msg.value * totalSupply() / totalEth;
        totalEth += msg.value;
        _mint(msg.sender, minted);
    }

    function setTotalEth(uint256 total) external {
        require(msg.sender == owner, "not owner");
        totalEth = total;
    }

    function getEthValue(uint256 rethAmount) public view returns (uint256) {
        uint256 supply = totalSupply();
        return supply == 0 ? rethAmount : rethAmount * totalEth / supply;
    }

    function getRethValue(uint256 ethAmount) external view returns (uint256) {
        uint256 supply = totalSupply();
        return totalEth == 0 ? ethAmount : ethAmount * supply / totalEth;
    }

    function getExchangeRate() external view returns (uint256) { return getEthValue(1 ether); }
}
