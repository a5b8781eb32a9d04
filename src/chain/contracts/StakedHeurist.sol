// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title stHEU: an ERC4626 vault over HEU whose exchange rate rises as rewards arrive
///        (anyone may transfer HEU to the vault; it raises every share's value).
/// @notice Leaving is two-step: `unstake` burns shares at the current rate and opens a vesting
///         position; `withdraw()` pays the matured positions after `lockup` seconds.
///         The ERC4626 `withdraw(assets,receiver,owner)` and `redeem` paths are closed so the
///         lockup cannot be skipped.
contract StakedHeurist is ERC4626, ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Position {
        uint128 amount;
        uint64 unlockAt;
    }

    uint256 public immutable lockup;
    uint256 public totalVesting;
    mapping(address => Position[]) private _positions;
    /// Index of the first position not yet paid, per user (positions mature in order).
    mapping(address => uint256) private _nextPosition;

    event Unstaked(address indexed user, uint256 shares, uint256 assets, uint256 unlockAt);
    event Withdrawn(address indexed user, uint256 assets);

    error LockupRequired();
    error NothingMatured(uint256 nextUnlockAt);
    error ZeroAmount();

    constructor(IERC20 heu, uint256 lockupSeconds) ERC20("Staked Heurist", "stHEU") ERC4626(heu) {
        lockup = lockupSeconds;
    }

    /// HEU held for stakers: the balance minus what already vests toward leavers.
    function totalAssets() public view override returns (uint256) {
        return IERC20(asset()).balanceOf(address(this)) - totalVesting;
    }

    /// Burns `shares` of the caller and opens a vesting position worth them at today's rate.
    function unstake(uint256 shares) external nonReentrant returns (uint256 assets) {
        if (shares == 0) revert ZeroAmount();
        assets = previewRedeem(shares);
        _burn(msg.sender, shares);
        uint256 unlockAt = block.timestamp + lockup;
        _positions[msg.sender].push(Position(uint128(assets), uint64(unlockAt)));
        totalVesting += assets;
        emit Unstaked(msg.sender, shares, assets, unlockAt);
    }

    /// Pays every matured vesting position of the caller.
    function withdraw() external nonReentrant returns (uint256 paid) {
        Position[] storage ps = _positions[msg.sender];
        uint256 i = _nextPosition[msg.sender];
        while (i < ps.length && ps[i].unlockAt <= block.timestamp) {
            paid += ps[i].amount;
            i++;
        }
        if (paid == 0) revert NothingMatured(i < ps.length ? ps[i].unlockAt : 0);
        _nextPosition[msg.sender] = i;
        totalVesting -= paid;
        IERC20(asset()).safeTransfer(msg.sender, paid);
        emit Withdrawn(msg.sender, paid);
    }

    /// What `user` has vesting in total, how much of it is matured, and the next unlock time.
    function vestingOf(address user) external view returns (uint256 total, uint256 matured, uint256 nextUnlockAt) {
        Position[] storage ps = _positions[user];
        for (uint256 i = _nextPosition[user]; i < ps.length; i++) {
            total += ps[i].amount;
            if (ps[i].unlockAt <= block.timestamp) matured += ps[i].amount;
            else if (nextUnlockAt == 0) nextUnlockAt = ps[i].unlockAt;
        }
    }

    function maxWithdraw(address) public pure override returns (uint256) { return 0; }
    function maxRedeem(address) public pure override returns (uint256) { return 0; }

    function withdraw(uint256, address, address) public pure override returns (uint256) { revert LockupRequired(); }
    function redeem(uint256, address, address) public pure override returns (uint256) { revert LockupRequired(); }
}
