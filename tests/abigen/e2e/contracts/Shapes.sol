// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Tuples for abigen-cpp's end-to-end test: nested structs and struct arrays in and out, and a
/// function with several outputs.
contract Shapes {
    struct Item {
        uint64 id;
        string label;
        bytes32 tag;
    }
    struct Box {
        address owner;
        Item head;
        Item[] items;
        uint256[2] size;
        int32 offset;
    }

    Box private kept;

    function echo(Box calldata box) external pure returns (Box memory) {
        return box;
    }

    function echoAll(Box[] calldata boxes) external pure returns (Box[] memory) {
        return boxes;
    }

    /// The items' ids summed, their count and the first label.
    function summary(Item[] calldata items) external pure returns (uint256 idSum, uint256 count, string memory first) {
        for (uint256 i = 0; i < items.length; i++) idSum += items[i].id;
        count = items.length;
        first = items.length > 0 ? items[0].label : "";
    }

    function keep(Box calldata box) external {
        kept = box;
    }

    function stored() external view returns (Box memory) {
        return kept;
    }
}
