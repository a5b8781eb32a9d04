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
/// @notice A payer deposits HEU, then signs vouchers payer → miner per channel (pod id, the pod
///         share the voucher names) whose amount only grows. Redeeming the latest voucher pays
///         the difference to what was already redeemed, in one transaction for any number of
///         jobs; an older or equal voucher pays nothing. The split (floor, in basis points) is
///         protocol fee / pod deployer / frontend / node:
///         - the protocol fee goes to the stHEU vault, whose exchange rate rises (whitepaper
///           §3.4.3 "compute payment buybacks"); it also makes paying yourself cost money;
///         - the pod deployer is paid only when the voucher names it and its share, and both
///           match PodRegistry: a pod share applies only to requests that named the pod, so
///           registering a popular model's id first takes nothing from requests that did not;
///         - revenue between related parties (the payer's or the frontend's payout address is
///           the node's) is kept apart and does not raise the epoch's emission cap.
///         Pay-by-User (whitepaper §2.3.2): a user or agent signs a PaymentAuthorization for one
///         frontend (gateway) — a cumulative bound per session and an expiry — and the frontend
///         settles many requests in one call with per-miner allocations, paid out of the *user's*
///         deposit with the same split; the frontend never holds the user's funds.
///         The epoch clock (genesis, epochSeconds) lives here; Emission reads it.
contract Payments is EIP712, ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Voucher {
        address payer;
        address miner;
        bytes32 podId;
        address podDeployer;
        uint16 podBps;
        uint8 pool;
        address frontend;
        uint256 cumulativeAmount;
    }

    /// A user's signed bound for one frontend's session: everything the frontend settles under
    /// (payer, frontend, session) together stays ≤ maxAmount of the signature it submits, and
    /// only until expiry. Re-signing the same session with a higher maxAmount raises the bound
    /// (cumulative, like a voucher); a new session starts from zero.
    struct PaymentAuthorization {
        address payer;
        address frontend;
        bytes32 session;
        uint256 maxAmount;
        uint256 expiry;
    }

    /// One miner's cumulative amount on one channel (pod share, pool) of a session.
    struct Allocation {
        address miner;
        bytes32 podId;
        address podDeployer;
        uint16 podBps;
        uint8 pool;
        uint256 cumulativeAmount;
    }

    bytes32 public constant AUTHORIZATION_TYPEHASH = keccak256(
        "PaymentAuthorization(address payer,address frontend,bytes32 session,uint256 maxAmount,uint256 expiry)"
    );
    /// Most allocations per settlement: bounds the gas of one call.
    uint256 public constant MAX_ALLOCATIONS = 64;

    bytes32 public constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address payer,address miner,bytes32 podId,address podDeployer,uint16 podBps,uint8 pool,address frontend,uint256 cumulativeAmount)"
    );
    uint256 public constant BPS = 10_000;
    uint8 public constant POOLS = 2;

    IERC20 public immutable heu;
    PodRegistry public immutable podRegistry;
    NodeRegistry public immutable nodeRegistry;
    /// The stHEU vault: receives the protocol fee of every redemption.
    address public immutable stakingVault;
    uint16 public immutable frontendBps;
    uint16 public immutable protocolFeeBps;
    uint256 public immutable genesis;
    uint256 public immutable epochSeconds;
    uint256 public immutable withdrawDelay;

    mapping(address => uint256) public deposits;
    mapping(address => uint256) public pendingWithdrawal;
    mapping(address => uint256) public withdrawableAt;
    /// Already redeemed per channel (see channelOf).
    mapping(bytes32 => uint256) public redeemed;
    /// Settled so far per Pay-by-User session (see sessionOf).
    mapping(bytes32 => uint256) public sessionSpent;
    /// Revenue per epoch per pool (0 LLM, 1 image): what the emission cap reads.
    mapping(uint256 => mapping(uint8 => uint256)) public revenue;
    /// Revenue between related parties per epoch per pool: paid, but no cap rises with it.
    mapping(uint256 => mapping(uint8 => uint256)) public relatedRevenue;

    event Deposited(address indexed payer, uint256 amount, uint256 balance);
    event WithdrawalRequested(address indexed payer, uint256 amount, uint256 at);
    event DepositWithdrawn(address indexed payer, uint256 amount);
    /// `frontend`: the voucher's or the settling authorization's frontend (0 when none). Points
    /// read it: a Pay-by-User settlement's receipts were requested by the frontend, not the payer.
    event Redeemed(
        address indexed payer, address indexed miner, bytes32 indexed podId, uint8 pool,
        uint256 amount, uint256 nodeShare, uint256 podShare, uint256 frontendShare, uint256 protocolFee, bool related,
        address frontend
    );

    event AuthorizationSettled(
        address indexed payer, address indexed frontend, bytes32 indexed session, uint256 amount, uint256 spent
    );

    error BadSignature();
    error NotFrontend(address frontend);
    error AuthorizationExpired(uint256 expiry);
    error OverAuthorized(uint256 maxAmount, uint256 total);
    error TooManyAllocations(uint256 count);
    error BadPool(uint8 pool);
    error InsufficientDeposit(uint256 balance, uint256 needed);
    error ZeroAmount();
    error WithdrawalNotReady(uint256 at);
    error SharesOverLimit(uint256 bps);

    constructor(
        IERC20 heu_, PodRegistry pods_, NodeRegistry nodes_, address stakingVault_, uint16 frontendBps_,
        uint16 protocolFeeBps_, uint256 epochSeconds_, uint256 withdrawDelay_
    ) EIP712("Heurist", "1") {
        uint256 most = uint256(pods_.maxRevenueBps()) + frontendBps_ + protocolFeeBps_;
        if (most > BPS) revert SharesOverLimit(most);
        heu = heu_;
        podRegistry = pods_;
        nodeRegistry = nodes_;
        stakingVault = stakingVault_;
        frontendBps = frontendBps_;
        protocolFeeBps = protocolFeeBps_;
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

    /// A voucher's channel: payer, miner, pod and the pod share it names. Each channel has its
    /// own cumulative total, so jobs that named a pod and jobs that did not never share one.
    function channelOf(Voucher calldata v) public pure returns (bytes32) {
        return keccak256(abi.encode(v.payer, v.miner, v.podId, v.podDeployer, v.podBps));
    }

    function redeemedOf(Voucher calldata v) external view returns (uint256) {
        return redeemed[channelOf(v)];
    }

    /// Related parties: the payer or the frontend is paid out to the node's own payout address
    /// (a miner paying itself, or acting as its own frontend). Their revenue raises no cap.
    function isRelated(Voucher memory v, address nodePayout) public view returns (bool) {
        if (nodeRegistry.payoutOf(v.payer) == nodePayout) return true;
        return v.frontend != address(0) && nodeRegistry.payoutOf(v.frontend) == nodePayout;
    }

    /// Pays `v.cumulativeAmount` minus what was already redeemed; 0 (and no transfer) when the
    /// voucher is not above it. Anyone may submit; the money goes to the node's payout address.
    function redeem(Voucher calldata v, bytes calldata signature) external nonReentrant returns (uint256 amount) {
        if (v.pool >= POOLS) revert BadPool(v.pool);
        if (ECDSA.recover(voucherDigest(v), signature) != v.payer) revert BadSignature();
        bytes32 channel = channelOf(v);
        uint256 done = redeemed[channel];
        if (v.cumulativeAmount <= done) return 0;
        amount = v.cumulativeAmount - done;
        uint256 balance = deposits[v.payer];
        if (balance < amount) revert InsufficientDeposit(balance, amount);
        redeemed[channel] = v.cumulativeAmount;
        deposits[v.payer] = balance - amount;
        _book(v, amount);
    }

    function authorizationDigest(PaymentAuthorization calldata a) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(AUTHORIZATION_TYPEHASH, a)));
    }

    /// A Pay-by-User session: one payer, one frontend, one session id.
    function sessionOf(address payer, address frontend, bytes32 session) public pure returns (bytes32) {
        return keccak256(abi.encode(payer, frontend, session));
    }

    /// An allocation's channel: the session, the miner, the pod share and the pool. Cumulative
    /// per channel, so resubmitting a settlement pays nothing twice.
    function allocationChannel(bytes32 sid, Allocation calldata x) public pure returns (bytes32) {
        return keccak256(abi.encode(sid, x.miner, x.podId, x.podDeployer, x.podBps, x.pool));
    }

    /// Pay-by-User settlement: the frontend named in the user's authorization submits it with
    /// each miner's cumulative amount; every allocation pays its rise since the last settlement
    /// out of the payer's deposit, split as a voucher is (node, pod, frontend, protocol fee).
    /// Refused: another sender than the named frontend, after expiry, a signature that is not
    /// the payer's under this chain and contract, or a session total above maxAmount.
    function settleAuthorized(PaymentAuthorization calldata a, bytes calldata signature, Allocation[] calldata allocations)
        external nonReentrant returns (uint256 total)
    {
        if (msg.sender != a.frontend) revert NotFrontend(a.frontend);
        if (block.timestamp > a.expiry) revert AuthorizationExpired(a.expiry);
        if (allocations.length > MAX_ALLOCATIONS) revert TooManyAllocations(allocations.length);
        if (ECDSA.recover(authorizationDigest(a), signature) != a.payer) revert BadSignature();
        bytes32 sid = sessionOf(a.payer, a.frontend, a.session);
        uint256[] memory amounts = new uint256[](allocations.length);
        for (uint256 i = 0; i < allocations.length; i++) {
            if (allocations[i].pool >= POOLS) revert BadPool(allocations[i].pool);
            bytes32 ch = allocationChannel(sid, allocations[i]);
            uint256 done = redeemed[ch];
            if (allocations[i].cumulativeAmount <= done) continue;
            amounts[i] = allocations[i].cumulativeAmount - done;
            redeemed[ch] = allocations[i].cumulativeAmount;
            total += amounts[i];
        }
        if (total == 0) return 0;
        uint256 spent = sessionSpent[sid] + total;
        if (spent > a.maxAmount) revert OverAuthorized(a.maxAmount, spent);
        uint256 balance = deposits[a.payer];
        if (balance < total) revert InsufficientDeposit(balance, total);
        sessionSpent[sid] = spent;
        deposits[a.payer] = balance - total;
        for (uint256 i = 0; i < allocations.length; i++) {
            if (amounts[i] > 0) _payAllocation(a, allocations[i], amounts[i]);
        }
        emit AuthorizationSettled(a.payer, a.frontend, a.session, total, spent);
    }

    function _payAllocation(PaymentAuthorization calldata a, Allocation calldata x, uint256 amount) private {
        _book(Voucher(a.payer, x.miner, x.podId, x.podDeployer, x.podBps, x.pool, a.frontend, x.cumulativeAmount), amount);
    }

    /// Books `amount` as this epoch's revenue of the voucher's pool (related revenue, which no cap
    /// reads, when payer or frontend is the miner's) and pays its shares: one rule for vouchers and
    /// Pay-by-User settlements.
    function _book(Voucher memory v, uint256 amount) private {
        address nodePayout = nodeRegistry.payoutOf(v.miner);
        bool related = isRelated(v, nodePayout);
        if (related) relatedRevenue[currentEpoch()][v.pool] += amount;
        else revenue[currentEpoch()][v.pool] += amount;
        _distribute(v, amount, nodePayout, related);
    }

    /// The pod's share in basis points when the voucher names the registered deployer and share; else 0.
    function podShareOf(Voucher memory v) public view returns (uint16) {
        if (v.podDeployer == address(0)) return 0;
        (address deployer, uint16 bps) = podRegistry.revenueShare(v.podId);
        return deployer == v.podDeployer && bps == v.podBps ? bps : 0;
    }

    function _distribute(Voucher memory v, uint256 amount, address nodePayout, bool related) private {
        uint256 fBps = v.frontend == address(0) ? 0 : frontendBps;
        (uint256 nodeShare, uint256 podShare, uint256 frontendShare, uint256 fee) =
            splitRevenue(amount, podShareOf(v), fBps, protocolFeeBps);
        if (fee > 0) heu.safeTransfer(stakingVault, fee);
        if (podShare > 0) heu.safeTransfer(v.podDeployer, podShare);
        if (frontendShare > 0) heu.safeTransfer(v.frontend, frontendShare);
        if (nodeShare > 0) heu.safeTransfer(nodePayout, nodeShare);
        _emitRedeemed(v, amount, [nodeShare, podShare, frontendShare, fee], related);
    }

    /// Its own frame: the event's eleven fields do not fit the stack beside _distribute's locals.
    function _emitRedeemed(Voucher memory v, uint256 amount, uint256[4] memory s, bool related) private {
        emit Redeemed(v.payer, v.miner, v.podId, v.pool, amount, s[0], s[1], s[2], s[3], related, v.frontend);
    }

    /// The split, all floor: protocol = a·feeBps/1e4, pod = a·podBps/1e4, frontend = a·fBps/1e4,
    /// node = the rest (src/economics splitRevenue is the same math; a parity test holds them equal).
    function splitRevenue(uint256 amount, uint256 podBps, uint256 fBps, uint256 feeBps)
        public pure returns (uint256 nodeShare, uint256 podShare, uint256 frontendShare, uint256 protocolFee)
    {
        if (podBps + fBps + feeBps > BPS) revert SharesOverLimit(podBps + fBps + feeBps);
        protocolFee = amount * feeBps / BPS;
        podShare = amount * podBps / BPS;
        frontendShare = amount * fBps / BPS;
        nodeShare = amount - protocolFee - podShare - frontendShare;
    }

    function epochRevenue(uint256 epoch) external view returns (uint256 llm, uint256 image) {
        return (revenue[epoch][0], revenue[epoch][1]);
    }

    function epochRelatedRevenue(uint256 epoch) external view returns (uint256 llm, uint256 image) {
        return (relatedRevenue[epoch][0], relatedRevenue[epoch][1]);
    }
}
