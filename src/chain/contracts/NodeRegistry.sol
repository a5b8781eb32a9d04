// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title Operators (miners) with HEU collateral, and validators with their own stake.
/// @notice The operator key lives on the mining box; the owner (a cold wallet) gets the
///         collateral back on exit and the node's payouts. Exits wait `exitCooldown` seconds
///         so that a slash for recent work can still land.
///         Registering needs the operator's consent: the operator sends `register` itself, or
///         signs a Registration (owner, nonce, deadline) that the owner submits with
///         `registerWithConsent` (a cold-wallet owner paying the collateral for a mining box).
///         Without it anyone could register a stranger's operator address (public: it is read
///         off the miner's PeerId) with themselves as owner and take its payouts.
contract NodeRegistry is EIP712, ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Node {
        address owner;
        uint256 collateral;
        uint64 exitAt; // 0 = active
    }

    struct Validator {
        uint256 stake;
        uint64 exitAt;
    }

    bytes32 public constant REGISTRATION_TYPEHASH = keccak256(
        "Registration(address operator,address owner,uint256 nonce,uint256 deadline)"
    );

    IERC20 public immutable heu;
    uint256 public immutable minCollateral;
    uint256 public immutable minValidatorStake;
    uint256 public immutable exitCooldown;
    address public immutable deployer;
    address public slasher;

    mapping(address => Node) public nodes;
    /// Consents used per operator: a signed Registration is good for one registration only.
    mapping(address => uint256) public nonces;
    /// When the operator's last registration ended (completeExit); 0 if it never exited.
    /// Slashing refuses receipts that started by then: they belong to a previous registration,
    /// whose collateral is gone, and must not slash collateral posted since.
    mapping(address => uint64) public exitedAt;
    mapping(address => Validator) public validators;
    uint256 public totalValidatorStake;

    event NodeRegistered(address indexed operator, address indexed owner, uint256 collateral);
    event CollateralAdded(address indexed operator, uint256 amount, uint256 collateral);
    event ExitRequested(address indexed account, uint256 exitAt);
    event Exited(address indexed account, address indexed to, uint256 amount);
    event ValidatorRegistered(address indexed validator, uint256 stake);
    event Slashed(address indexed operator, uint256 amount);

    error CollateralBelowMinimum(uint256 amount, uint256 minimum);
    error AlreadyRegistered(address operator);
    error NotRegistered(address account);
    error NotOwnerOrOperator();
    error Exiting(address account);
    error NotExiting(address account);
    error CooldownNotOver(uint256 exitAt);
    error OnlySlasher();
    error SlasherAlreadySet();
    error ZeroAddress();
    error SignersNotSorted();
    error ConsentExpired(uint256 deadline);
    error BadConsent();

    constructor(IERC20 heu_, uint256 minCollateral_, uint256 minValidatorStake_, uint256 exitCooldown_) EIP712("Heurist", "1") {
        heu = heu_;
        minCollateral = minCollateral_;
        minValidatorStake = minValidatorStake_;
        exitCooldown = exitCooldown_;
        deployer = msg.sender;
    }

    /// One-time link to the Slashing contract (set by the deployer right after deploy).
    function setSlasher(address s) external {
        if (msg.sender != deployer) revert OnlySlasher();
        if (slasher != address(0)) revert SlasherAlreadySet();
        slasher = s;
    }

    /// The operator (the sender) registers itself, owned by `owner`, paying `collateral`.
    function register(address owner, uint256 collateral) external nonReentrant {
        _register(msg.sender, owner, collateral);
    }

    /// The owner (the sender) registers `operator` with the operator's EIP-712 consent, paying
    /// `collateral`. The consent names the owner, so it cannot serve anyone else.
    function registerWithConsent(address operator, uint256 collateral, uint256 deadline, bytes calldata signature)
        external nonReentrant
    {
        if (block.timestamp > deadline) revert ConsentExpired(deadline);
        uint256 nonce = nonces[operator];
        if (ECDSA.recover(registrationDigest(operator, msg.sender, nonce, deadline), signature) != operator) revert BadConsent();
        nonces[operator] = nonce + 1;
        _register(operator, msg.sender, collateral);
    }

    function registrationDigest(address operator, address owner, uint256 nonce, uint256 deadline) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(REGISTRATION_TYPEHASH, operator, owner, nonce, deadline)));
    }

    function _register(address operator, address owner, uint256 collateral) private {
        if (operator == address(0) || owner == address(0)) revert ZeroAddress();
        if (nodes[operator].owner != address(0)) revert AlreadyRegistered(operator);
        if (collateral < minCollateral) revert CollateralBelowMinimum(collateral, minCollateral);
        nodes[operator] = Node(owner, collateral, 0);
        heu.safeTransferFrom(msg.sender, address(this), collateral);
        emit NodeRegistered(operator, owner, collateral);
    }

    function addCollateral(address operator, uint256 amount) external nonReentrant {
        Node storage n = nodes[operator];
        if (n.owner == address(0)) revert NotRegistered(operator);
        if (n.exitAt != 0) revert Exiting(operator);
        n.collateral += amount;
        heu.safeTransferFrom(msg.sender, address(this), amount);
        emit CollateralAdded(operator, amount, n.collateral);
    }

    function requestExit(address operator) external {
        Node storage n = nodes[operator];
        if (n.owner == address(0)) revert NotRegistered(operator);
        if (msg.sender != operator && msg.sender != n.owner) revert NotOwnerOrOperator();
        if (n.exitAt != 0) revert Exiting(operator);
        n.exitAt = uint64(block.timestamp + exitCooldown);
        emit ExitRequested(operator, n.exitAt);
    }

    /// After the cooldown, returns what is left of the collateral to the owner.
    function completeExit(address operator) external nonReentrant {
        Node memory n = nodes[operator];
        if (n.owner == address(0)) revert NotRegistered(operator);
        if (n.exitAt == 0) revert NotExiting(operator);
        if (block.timestamp < n.exitAt) revert CooldownNotOver(n.exitAt);
        delete nodes[operator];
        exitedAt[operator] = uint64(block.timestamp);
        heu.safeTransfer(n.owner, n.collateral);
        emit Exited(operator, n.owner, n.collateral);
    }

    /// Whether `operator` is registered and not exiting (exiting nodes can still be slashed).
    function isActive(address operator) external view returns (bool) {
        return nodes[operator].owner != address(0) && nodes[operator].exitAt == 0;
    }

    /// Where a node's payouts go: its owner when registered, else the address itself.
    function payoutOf(address operator) external view returns (address) {
        address o = nodes[operator].owner;
        return o == address(0) ? operator : o;
    }

    function collateralOf(address operator) external view returns (uint256) {
        return nodes[operator].collateral;
    }


    function registerValidator(uint256 stake) external nonReentrant {
        Validator storage v = validators[msg.sender];
        if (v.exitAt != 0) revert Exiting(msg.sender);
        uint256 next = v.stake + stake;
        if (next < minValidatorStake) revert CollateralBelowMinimum(next, minValidatorStake);
        v.stake = next;
        totalValidatorStake += stake;
        heu.safeTransferFrom(msg.sender, address(this), stake);
        emit ValidatorRegistered(msg.sender, next);
    }

    /// A validator leaving stops counting toward quorums at once; its stake returns after the cooldown.
    function requestValidatorExit() external {
        Validator storage v = validators[msg.sender];
        if (v.stake == 0) revert NotRegistered(msg.sender);
        if (v.exitAt != 0) revert Exiting(msg.sender);
        v.exitAt = uint64(block.timestamp + exitCooldown);
        totalValidatorStake -= v.stake;
        emit ExitRequested(msg.sender, v.exitAt);
    }

    function completeValidatorExit() external nonReentrant {
        Validator memory v = validators[msg.sender];
        if (v.exitAt == 0) revert NotExiting(msg.sender);
        if (block.timestamp < v.exitAt) revert CooldownNotOver(v.exitAt);
        delete validators[msg.sender];
        heu.safeTransfer(msg.sender, v.stake);
        emit Exited(msg.sender, msg.sender, v.stake);
    }

    /// Stake of active validators among `signers`; they must be strictly increasing (no double count).
    function signerStake(address[] memory signers) public view returns (uint256 stake) {
        address prev;
        for (uint256 i = 0; i < signers.length; i++) {
            if (signers[i] <= prev) revert SignersNotSorted();
            prev = signers[i];
            Validator storage v = validators[signers[i]];
            if (v.exitAt == 0) stake += v.stake;
        }
    }

    /// True when `signers` hold at least 2/3 of the active validator stake.
    function isQuorum(address[] memory signers) external view returns (bool) {
        uint256 total = totalValidatorStake;
        return total > 0 && signerStake(signers) * 3 >= total * 2;
    }

    /// Called by Slashing: takes `amount` of the operator's collateral and sends it to the slasher.
    function slash(address operator, uint256 amount) external nonReentrant {
        if (msg.sender != slasher) revert OnlySlasher();
        Node storage n = nodes[operator];
        if (n.owner == address(0)) revert NotRegistered(operator);
        n.collateral -= amount;
        heu.safeTransfer(msg.sender, amount);
        emit Slashed(operator, amount);
    }
}
