// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title HEU: fixed supply of 1,000,000,000 tokens with 18 decimals, all minted once to `holder`.
/// @dev No mint after deploy: emission is paid out of the 50 % allocation that the deploy
///      script moves into `Emission`, never minted, so total supply is a constant.
contract HeuristToken is ERC20 {
    uint256 public constant TOTAL_SUPPLY = 1_000_000_000 ether;

    constructor(address holder) ERC20("Heurist", "HEU") {
        _mint(holder, TOTAL_SUPPLY);
    }
}
