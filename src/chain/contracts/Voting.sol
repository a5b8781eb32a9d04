// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title stHEU votes for nodes and pods.
/// @notice Voting escrows the stHEU in this contract, so one share backs one vote at a time:
///         it can never be counted twice, and `unvote*` returns it at once.
contract Voting is ReentrancyGuard {
    using SafeERC20 for IERC20;

    IERC20 public immutable stheu;

    mapping(address => uint256) public nodeVotes;
    mapping(bytes32 => uint256) public podVotes;
    mapping(address => mapping(address => uint256)) public nodeVotesBy;
    mapping(address => mapping(bytes32 => uint256)) public podVotesBy;
    /// All stHEU a voter has escrowed here, over every node and pod.
    mapping(address => uint256) public votesOf;

    event NodeVote(address indexed voter, address indexed node, int256 delta, uint256 total);
    event PodVote(address indexed voter, bytes32 indexed podId, int256 delta, uint256 total);

    error ZeroAmount();
    error NotEnoughVotes(uint256 have, uint256 want);

    constructor(IERC20 stheu_) {
        stheu = stheu_;
    }

    function voteNode(address node, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        nodeVotesBy[msg.sender][node] += amount;
        nodeVotes[node] += amount;
        votesOf[msg.sender] += amount;
        stheu.safeTransferFrom(msg.sender, address(this), amount);
        emit NodeVote(msg.sender, node, int256(amount), nodeVotes[node]);
    }

    function unvoteNode(address node, uint256 amount) external nonReentrant {
        uint256 have = nodeVotesBy[msg.sender][node];
        if (amount == 0) revert ZeroAmount();
        if (amount > have) revert NotEnoughVotes(have, amount);
        nodeVotesBy[msg.sender][node] = have - amount;
        nodeVotes[node] -= amount;
        votesOf[msg.sender] -= amount;
        stheu.safeTransfer(msg.sender, amount);
        emit NodeVote(msg.sender, node, -int256(amount), nodeVotes[node]);
    }

    function votePod(bytes32 podId, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        podVotesBy[msg.sender][podId] += amount;
        podVotes[podId] += amount;
        votesOf[msg.sender] += amount;
        stheu.safeTransferFrom(msg.sender, address(this), amount);
        emit PodVote(msg.sender, podId, int256(amount), podVotes[podId]);
    }

    function unvotePod(bytes32 podId, uint256 amount) external nonReentrant {
        uint256 have = podVotesBy[msg.sender][podId];
        if (amount == 0) revert ZeroAmount();
        if (amount > have) revert NotEnoughVotes(have, amount);
        podVotesBy[msg.sender][podId] = have - amount;
        podVotes[podId] -= amount;
        votesOf[msg.sender] -= amount;
        stheu.safeTransfer(msg.sender, amount);
        emit PodVote(msg.sender, podId, -int256(amount), podVotes[podId]);
    }
}
