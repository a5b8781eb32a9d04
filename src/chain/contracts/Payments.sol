// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {PodRegistry} from "./PodRegistry.sol";
import {NodeRegistry} from "./NodeRegistry.sol";

/// @title Compute credits and cumulative vouchers, with the revenue split and revenue per epoch.
/// @notice A payer deposits HEU, then signs vouchers payer → miner per pod whose amount only
///         grows. Redeeming the latest voucher pays the difference to what was already
///         redeemed, in one transaction for any number of jobs; an older or equal voucher pays
///         nothing. The split (floor, in basis points) is pod deployer / frontend / node, and
///         the amount counts as the epoch's revenue in the voucher's pool. The epoch clock
///         (genesis, epochSeconds) lives here; Emission reads it.
contract Payments is EIP712, ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Voucher {
        address payer;
        address miner;
        bytes32 podId;
        uint8 pool;
        address frontend;
        uint256 cumulativeAmount;
    }

    bytes32 public constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address payer,address miner,bytes32 podId,uint8 pool,address frontend,uint256 cumulativeAmount)"
    );
    uint256 public constant BPS = 10_000;
    uint8 public constant POOLS = 2;

    IERC20 public immutable heu;
    PodRegistry public immutable podRegistry;
    NodeRegistry public immutable nodeRegistry;
    uint16 public immutable frontendBps;
    uint256 public immutable genesis;
    uint256 public immutable epochSeconds;
    uint256 public immutable withdrawDelay;

    mapping(address => uint256) public deposits;
    mapping(address => uint256) public pendingWithdrawal;
    mapping(address => uint256) public withdrawableAt;
    /// Already redeemed per payer → miner → pod.
    mapping(address => mapping(address => mapping(bytes32 => uint256))) public redeemed;
    /// Revenue per epoch per pool (0 LLM, 1 image).
    mapping(uint256 => mapping(uint8 => uint256)) public revenue;

    event Deposited(address indexed payer, uint256 amount, uint256 balance);
    event WithdrawalRequested(address indexed payer, uint256 amount, uint256 at);
    event DepositWithdrawn(address indexed payer, uint256 amount);
    event Redeemed(
        address indexed payer, address indexed miner, bytes32 indexed podId, uint8 pool,
        uint256 amount, uint256 nodeShare, uint256 podShare, uint256 frontendShare
    );

    error BadSignature();
    error BadPool(uint8 pool);
    error InsufficientDeposit(uint256 balance, uint256 needed);
    error ZeroAmount();
    error WithdrawalNotReady(uint256 at);

    constructor(
        IERC20 heu_, PodRegistry pods_, NodeRegistry nodes_, uint16 frontendBps_,
        uint256 epochSeconds_, uint256 withdrawDelay_
    ) EIP712("Heurist", "1") {
        heu = heu_;
        podRegistry = pods_;
        nodeRegistry = nodes_;
        frontendBps = frontendBps_;
        genesis = block.timestamp;
        epochSeconds = epochSeconds_;
        withdrawDelay = withdrawDelay_;
    }

    function currentEpoch() public view returns (uint256) {
        return (block.timestamp - genesis) / epochSeconds;
    }

    function deposit(uint256 amount) external nonReentrant {
        depositFor(msg.sender, amount);
    }

    function depositFor(address payer, uint256 amount) public {
        if (amount == 0) revert ZeroAmount();
        deposits[payer] += amount;
        heu.safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(payer, amount, deposits[payer]);
    }

    /// Withdrawals wait `withdrawDelay`, so miners can redeem the vouchers they hold first.
    function requestWithdrawal(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        if (amount > deposits[msg.sender]) revert InsufficientDeposit(deposits[msg.sender], amount);
        pendingWithdrawal[msg.sender] = amount;
        withdrawableAt[msg.sender] = block.timestamp + withdrawDelay;
        emit WithdrawalRequested(msg.sender, amount, withdrawableAt[msg.sender]);
    }

    function withdrawDeposit() external nonReentrant returns (uint256 amount) {
        uint256 at = withdrawableAt[msg.sender];
        if (at == 0 || block.timestamp < at) revert WithdrawalNotReady(at);
        amount = pendingWithdrawal[msg.sender];
        if (amount > deposits[msg.sender]) amount = deposits[msg.sender];
        deposits[msg.sender] -= amount;
        pendingWithdrawal[msg.sender] = 0;
        withdrawableAt[msg.sender] = 0;
        heu.safeTransfer(msg.sender, amount);
        emit DepositWithdrawn(msg.sender, amount);
    }

    function voucherDigest(Voucher calldata v) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, v)));
    }

    /// Pays `v.cumulativeAmount` minus what was already redeemed; 0 (and no transfer) when the
    /// voucher is not above it. Anyone may submit; the money goes to the node's payout address.
    function redeem(Voucher calldata v, bytes calldata signature) external nonReentrant returns (uint256 amount) {
        if (v.pool >= POOLS) revert BadPool(v.pool);
        if (ECDSA.recover(voucherDigest(v), signature) != v.payer) revert BadSignature();
        uint256 done = redeemed[v.payer][v.miner][v.podId];
        if (v.cumulativeAmount <= done) return 0;
        amount = v.cumulativeAmount - done;
        uint256 balance = deposits[v.payer];
        if (balance < amount) revert InsufficientDeposit(balance, amount);
        redeemed[v.payer][v.miner][v.podId] = v.cumulativeAmount;
        deposits[v.payer] = balance - amount;

        revenue[currentEpoch()][v.pool] += amount;
        _distribute(v, amount);
    }

    function _distribute(Voucher calldata v, uint256 amount) private {
        (address podDeployer, uint16 podBps) = podRegistry.revenueShare(v.podId);
        uint256 fBps = v.frontend == address(0) ? 0 : frontendBps;
        (uint256 nodeShare, uint256 podShare, uint256 frontendShare) = splitRevenue(amount, podBps, fBps);
        if (podShare > 0) heu.safeTransfer(podDeployer, podShare);
        if (frontendShare > 0) heu.safeTransfer(v.frontend, frontendShare);
        if (nodeShare > 0) heu.safeTransfer(nodeRegistry.payoutOf(v.miner), nodeShare);
        emit Redeemed(v.payer, v.miner, v.podId, v.pool, amount, nodeShare, podShare, frontendShare);
    }

    /// The split, all floor: pod = a·podBps/1e4, frontend = a·frontendBps/1e4, node = the rest.
    function splitRevenue(uint256 amount, uint256 podBps, uint256 fBps)
        public pure returns (uint256 nodeShare, uint256 podShare, uint256 frontendShare)
    {
        podShare = amount * podBps / BPS;
        frontendShare = amount * fBps / BPS;
        nodeShare = amount - podShare - frontendShare;
    }

    function epochRevenue(uint256 epoch) external view returns (uint256 llm, uint256 image) {
        return (revenue[epoch][0], revenue[epoch][1]);
    }
}
