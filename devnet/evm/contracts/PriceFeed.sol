// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @notice Chainlink AggregatorV3Interface-compatible feed with a settable answer (devnet only).
contract PriceFeed {
    uint8 public decimals;
    string public description;
    uint256 public constant version = 4;
    address public owner;
    uint80 internal roundId;
    int256 internal answer;
    uint256 internal updatedAt;

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    constructor(uint8 decimals_, string memory description_, int256 answer_) {
        decimals = decimals_; description = description_; owner = msg.sender;
        _set(answer_);
    }

    function setAnswer(int256 answer_) external {
        require(msg.sender == owner, "not owner");
        _set(answer_);
    }

    function latestAnswer() external view returns (int256) { return answer; }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        return (roundId, answer, updatedAt, updatedAt, roundId);
    }

    function _set(int256 answer_) internal {
        roundId += 1; answer = answer_; updatedAt = block.timestamp;
        emit AnswerUpdated(answer_, roundId, block.timestamp);
    }
}
