// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Reverts and value for abigen-cpp's end-to-end test: custom errors, require with a reason, a
/// Panic (division by zero), a payable constructor and a payable function.
contract Vault {
    address public owner;
    uint256 public deposited;

    event Deposited(address indexed from, uint256 amount);

    error Unauthorized(address caller);
    error Insufficient(uint256 need, uint256 have);

    constructor(address owner_) payable {
        owner = owner_;
        deposited = msg.value;
    }

    function deposit() external payable {
        require(msg.value > 0, "deposit: no value");
        deposited += msg.value;
        emit Deposited(msg.sender, msg.value);
    }

    function withdraw(uint256 amount) external {
        if (msg.sender != owner) revert Unauthorized(msg.sender);
        if (amount > deposited) revert Insufficient(amount, deposited);
        deposited -= amount;
        (bool ok, ) = payable(msg.sender).call{value: amount}("");
        require(ok, "withdraw: transfer failed");
    }

    function checkPositive(uint256 x) external pure returns (uint256) {
        require(x > 0, "x must be positive");
        return x;
    }

    function divide(uint256 a, uint256 b) external pure returns (uint256) {
        return a / b;
    }
}
