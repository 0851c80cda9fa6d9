// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Events with indexed dynamic types (string, bytes, a struct) for abigen-cpp's end-to-end test:
/// their topics are hashes; the same values come unindexed too, to compare.
contract Events {
    struct Tag {
        string key;
        uint32 weight;
    }

    event Noted(string indexed topic, bytes indexed blob, Tag indexed tag, address by, string text, Tag plain);
    event Counted(uint256 indexed n, bool even);
    // No topic 0: found by its address and topic count, decoded only when asked for by name.
    event Whispered(address indexed by, uint256 n) anonymous;

    function note(string calldata topic, bytes calldata blob, Tag calldata tag) external {
        emit Noted(topic, blob, tag, msg.sender, topic, tag);
    }

    function whisper(uint256 n) external {
        emit Whispered(msg.sender, n);
    }

    function count(uint256 upTo) external {
        for (uint256 i = 1; i <= upTo; i++) emit Counted(i, i % 2 == 0);
    }
}
