// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Overloads of each arity, views and transactions, for abigen-cpp's end-to-end test: each
/// overload answers differently, so a call reaching the wrong one shows.
contract Overloads {
    uint256 public total;

    function f() external pure returns (uint256) {
        return 100;
    }

    function f(uint256 a) external pure returns (uint256) {
        return a * 2;
    }

    function f(uint256 a, address b) external pure returns (uint256, address) {
        return (a + 3, b);
    }

    function f(uint256 a, address b, string calldata c) external pure returns (string memory) {
        return string.concat(c, ":", a == 0 ? "zero" : "nonzero", b == address(0) ? ":none" : ":some");
    }

    function add() external {
        total += 1;
    }

    function add(uint256 n) external {
        total += n;
    }

    function add(uint256 n, uint256 times) external {
        total += n * times;
    }
}
