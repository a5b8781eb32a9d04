// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {NodeRegistry} from "./NodeRegistry.sol";

/// @title Slashing on evidence: a miner's signed receipt plus failing verdicts signed by
///        validators holding at least 2/3 of the validator stake.
/// @notice Takes `slashBps` (F) of the miner's collateral; the reporter gets `reporterBps` of
///         it, the compute reservoir the rest. One slash per receipt, and only against the
///         registration the receipt was earned under: a receipt that started by the time the
///         miner last completed an exit slashes nothing, so collateral posted after an exit
///         answers only for work done after it. (The end of the previous registration, not the
///         start of this one, is the line: a miner's clock may lag the chain's by a little, and
///         a first registration has no previous one at all.)
contract Slashing is EIP712, ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Receipt {
        bytes32 jobId;
        address requester;
        address miner;
        bytes32 modelId;
        uint8 pool;
        bytes32 inputHash;
        bytes32 outputHash;
        bytes32 paramsHash;
        uint256 computeUnits;
        uint64 startedAt;
        uint64 endedAt;
    }

    struct Verdict {
        bytes32 receiptHash;
        address validator;
        bool pass;
        uint8 reason;
    }

    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(bytes32 jobId,address requester,address miner,bytes32 modelId,uint8 pool,bytes32 inputHash,bytes32 outputHash,bytes32 paramsHash,uint256 computeUnits,uint64 startedAt,uint64 endedAt)"
    );
    bytes32 public constant VERDICT_TYPEHASH = keccak256(
        "Verdict(bytes32 receiptHash,address validator,bool pass,uint8 reason)"
    );
    uint256 public constant BPS = 10_000;

    IERC20 public immutable heu;
    NodeRegistry public immutable registry;
    address public immutable reservoir;
    uint16 public immutable slashBps;
    uint16 public immutable reporterBps;

    mapping(bytes32 => bool) public slashed;

    event MinerSlashed(address indexed miner, bytes32 indexed receiptHash, address indexed reporter, uint256 amount, uint256 reporterShare);

    error BadReceiptSignature();
    error BadVerdictSignature(uint256 index);
    error VerdictForOtherReceipt(uint256 index);
    error VerdictPassed(uint256 index);
    error NoQuorum();
    error AlreadySlashed(bytes32 receiptHash);
    error LengthMismatch();
    error ReceiptFromPreviousRegistration(uint64 startedAt, uint64 exitedAt);

    constructor(IERC20 heu_, NodeRegistry registry_, address reservoir_, uint16 slashBps_, uint16 reporterBps_) EIP712("Heurist", "1") {
        heu = heu_;
        registry = registry_;
        reservoir = reservoir_;
        slashBps = slashBps_;
        reporterBps = reporterBps_;
    }

    /// The receipt's EIP-712 digest under this contract's domain: what verdicts sign as `receiptHash`.
    function receiptDigest(Receipt calldata r) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(RECEIPT_TYPEHASH, r)));
    }

    function verdictDigest(Verdict calldata v) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VERDICT_TYPEHASH, v)));
    }

    /// `verdicts` must be sorted by validator address, strictly increasing.
    function slash(
        Receipt calldata receipt, bytes calldata minerSignature,
        Verdict[] calldata verdicts, bytes[] calldata verdictSignatures
    ) external nonReentrant returns (uint256 amount) {
        bytes32 rh = receiptDigest(receipt);
        if (slashed[rh]) revert AlreadySlashed(rh);
        if (ECDSA.recover(rh, minerSignature) != receipt.miner) revert BadReceiptSignature();
        if (verdicts.length != verdictSignatures.length) revert LengthMismatch();
        address[] memory signers = new address[](verdicts.length);
        for (uint256 i = 0; i < verdicts.length; i++) {
            if (verdicts[i].receiptHash != rh) revert VerdictForOtherReceipt(i);
            if (verdicts[i].pass) revert VerdictPassed(i);
            if (ECDSA.recover(verdictDigest(verdicts[i]), verdictSignatures[i]) != verdicts[i].validator) revert BadVerdictSignature(i);
            signers[i] = verdicts[i].validator;
        }
        if (!registry.isQuorum(signers)) revert NoQuorum();
        uint64 exited = registry.exitedAt(receipt.miner);
        if (receipt.startedAt <= exited) revert ReceiptFromPreviousRegistration(receipt.startedAt, exited);
        slashed[rh] = true;
        amount = registry.collateralOf(receipt.miner) * slashBps / BPS;
        uint256 reporterShare = amount * reporterBps / BPS;
        registry.slash(receipt.miner, amount);
        if (reporterShare > 0) heu.safeTransfer(msg.sender, reporterShare);
        if (amount > reporterShare) heu.safeTransfer(reservoir, amount - reporterShare);
        emit MinerSlashed(receipt.miner, rh, msg.sender, amount, reporterShare);
    }
}
