// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {NodeRegistry} from "./NodeRegistry.sol";
import {Payments} from "./Payments.sol";

/// @title Epoch rewards: a cap per epoch from the schedule and the revenue Payments recorded,
///        quorum-signed reward roots, Merkle claims, and the compute reservoir.
/// @notice Holds the emission allocation (50 % of HEU, moved here at deploy); nothing is ever
///         minted. Once an epoch is over, validators holding 2/3 of validator stake co-sign
///         (epoch, root, total); the root is accepted only if total <= cap. What the cap leaves
///         unused (plus, on the whitepaper schedule, E_max − E) goes to the reservoir then.
///         Each epoch's root posts once, an empty one (0x0) included.
///         Leaves are OpenZeppelin StandardMerkleTree leaves of (address account, uint256 amount).
contract Emission is EIP712, ReentrancyGuard {
    using SafeERC20 for IERC20;

    enum Schedule { Whitepaper, Season2 }

    bytes32 public constant REWARD_ROOT_TYPEHASH = keccak256("RewardRoot(uint256 epoch,bytes32 root,uint256 total)");
    uint256 public constant WAD = 1e18;
    uint256 public constant YEAR_SECONDS = 31_536_000;
    uint256 public constant TOTAL_SUPPLY = 1_000_000_000 ether;
    uint256 public constant E_MAX_WAD = 5e16;
    uint256 public constant E_BASE_WAD = 1.25e16;

    IERC20 public immutable heu;
    Payments public immutable payments;
    NodeRegistry public immutable registry;
    address public immutable reservoir;
    Schedule public immutable schedule;
    uint256 public immutable epochSeconds;
    uint256 public immutable s2Base;
    uint256 public immutable s2MaxDynamic;
    uint256 public immutable s2HalfSaturation;

    mapping(uint256 => bytes32) public roots;
    /// Whether the epoch's root is on chain. A root may be 0x0 (nobody earned points), so
    /// `roots` alone cannot say it: a replayed postRoot of an empty epoch would pay the cap
    /// to the reservoir again.
    mapping(uint256 => bool) public posted;
    mapping(uint256 => uint256) public totals;
    mapping(uint256 => uint256) public claimedTotal;
    mapping(uint256 => mapping(address => bool)) public claimed;

    event RootPosted(uint256 indexed epoch, bytes32 root, uint256 total, uint256 cap, uint256 toReservoir);
    event Claimed(uint256 indexed epoch, address indexed account, uint256 amount);

    error EpochNotOver(uint256 epoch);
    error RootExists(uint256 epoch);
    error OverCap(uint256 total, uint256 cap);
    error NoQuorum();
    error NoRoot(uint256 epoch);
    error AlreadyClaimed(uint256 epoch, address account);
    error BadProof();

    constructor(
        IERC20 heu_, Payments payments_, NodeRegistry registry_, address reservoir_, Schedule schedule_,
        uint256 s2Base_, uint256 s2MaxDynamic_, uint256 s2HalfSaturation_
    ) EIP712("Heurist", "1") {
        heu = heu_;
        payments = payments_;
        registry = registry_;
        reservoir = reservoir_;
        schedule = schedule_;
        epochSeconds = payments_.epochSeconds();
        s2Base = s2Base_;
        s2MaxDynamic = s2MaxDynamic_;
        s2HalfSaturation = s2HalfSaturation_;
    }

    function currentEpoch() public view returns (uint256) {
        return payments.currentEpoch();
    }

    /// Whitepaper: E = min(E_max, E_base + R/2) with R the revenue annualised as a share of supply.
    function whitepaperEpochCap(uint256 rev, uint256 t) public pure returns (uint256 emission, uint256 toReservoir) {
        uint256 share = rev * YEAR_SECONDS * WAD / (t * TOTAL_SUPPLY);
        uint256 rate = E_BASE_WAD + share / 2;
        if (rate > E_MAX_WAD) rate = E_MAX_WAD;
        emission = TOTAL_SUPPLY * rate * t / (WAD * YEAR_SECONDS);
        toReservoir = TOTAL_SUPPLY * (E_MAX_WAD - rate) * t / (WAD * YEAR_SECONDS);
    }

    /// Season 2: per pool, base + maxDynamic · u / (u + halfSaturation).
    function season2PoolCap(uint256 organic) public view returns (uint256) {
        if (organic == 0) return s2Base;
        return s2Base + s2MaxDynamic * organic / (organic + s2HalfSaturation);
    }

    /// The epoch's cap and the part the schedule sends to the reservoir regardless of the root.
    function capOf(uint256 epoch) public view returns (uint256 cap, uint256 toReservoir) {
        (uint256 llm, uint256 image) = payments.epochRevenue(epoch);
        if (schedule == Schedule.Whitepaper) return whitepaperEpochCap(llm + image, epochSeconds);
        return (season2PoolCap(llm) + season2PoolCap(image), 0);
    }

    function rootDigest(uint256 epoch, bytes32 root, uint256 total) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(REWARD_ROOT_TYPEHASH, epoch, root, total)));
    }

    /// `signatures` must come from distinct validators in strictly increasing address order.
    function postRoot(uint256 epoch, bytes32 root, uint256 total, bytes[] calldata signatures) external nonReentrant {
        if (epoch >= currentEpoch()) revert EpochNotOver(epoch);
        if (posted[epoch]) revert RootExists(epoch);
        (uint256 cap, uint256 toReservoir) = capOf(epoch);
        if (total > cap) revert OverCap(total, cap);
        bytes32 digest = rootDigest(epoch, root, total);
        address[] memory signers = new address[](signatures.length);
        for (uint256 i = 0; i < signatures.length; i++) signers[i] = ECDSA.recover(digest, signatures[i]);
        if (!registry.isQuorum(signers)) revert NoQuorum();
        posted[epoch] = true;
        roots[epoch] = root;
        totals[epoch] = total;
        toReservoir += cap - total;
        if (toReservoir > 0) heu.safeTransfer(reservoir, toReservoir);
        emit RootPosted(epoch, root, total, cap, toReservoir);
    }

    function claim(uint256 epoch, address account, uint256 amount, bytes32[] calldata proof) external nonReentrant {
        if (!posted[epoch]) revert NoRoot(epoch);
        bytes32 root = roots[epoch];
        if (claimed[epoch][account]) revert AlreadyClaimed(epoch, account);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, amount))));
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert BadProof();
        // A proof cannot pay past the signed total even if the tree were malformed.
        if (claimedTotal[epoch] + amount > totals[epoch]) revert OverCap(claimedTotal[epoch] + amount, totals[epoch]);
        claimed[epoch][account] = true;
        claimedTotal[epoch] += amount;
        heu.safeTransfer(account, amount);
        emit Claimed(epoch, account, amount);
    }
}
