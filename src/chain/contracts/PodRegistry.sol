// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Pods: a model (by the sha256 of its weights, which is also the pod id), its kind,
///        minimum VRAM, deployer and the deployer's revenue share in basis points.
/// @notice `deployPod` also records a unique name and the URL miners pull the weights from
///         (checked against the id), so a miner needs nothing but the chain to host a pod.
///         A retired pod is no longer hosted; vouchers already signed for it still pay out.
contract PodRegistry {
    struct Pod {
        address deployer;
        uint8 kind; // 0 LLM, 1 image (same numbering as the pools)
        uint32 minVramMb;
        uint16 revenueBps;
    }

    struct PodMeta {
        string name;
        string uri;
        bool retired;
    }

    uint16 public immutable maxRevenueBps;
    uint256 public constant MAX_NAME_BYTES = 64;
    uint256 public constant MAX_URI_BYTES = 1024;
    mapping(bytes32 => Pod) public pods;
    mapping(bytes32 => PodMeta) public meta;
    /// keccak256(name) → pod id, so a name points at one pod only.
    mapping(bytes32 => bytes32) public podByName;
    /// Every registered pod id, in registration order (for listing).
    bytes32[] public podIds;

    event PodRegistered(bytes32 indexed podId, address indexed deployer, uint8 kind, uint32 minVramMb, uint16 revenueBps);
    event PodDeployed(bytes32 indexed podId, string name, string uri);
    event PodRetired(bytes32 indexed podId);

    error PodExists(bytes32 podId);
    error BadKind(uint8 kind);
    error RevenueShareTooHigh(uint16 bps, uint16 max);
    error NotDeployer();
    error UnknownPod(bytes32 podId);
    error AlreadyRetired(bytes32 podId);
    error NameTaken(string name);
    error BadName();
    error BadUri();

    constructor(uint16 maxRevenueBps_) {
        maxRevenueBps = maxRevenueBps_;
    }

    function registerPod(bytes32 modelId, uint8 kind, uint32 minVramMb, uint16 revenueBps) public {
        if (pods[modelId].deployer != address(0)) revert PodExists(modelId);
        if (kind > 1) revert BadKind(kind);
        if (revenueBps > maxRevenueBps) revert RevenueShareTooHigh(revenueBps, maxRevenueBps);
        pods[modelId] = Pod(msg.sender, kind, minVramMb, revenueBps);
        podIds.push(modelId);
        emit PodRegistered(modelId, msg.sender, kind, minVramMb, revenueBps);
    }

    /// Registers a pod with its name (unique, 1–64 bytes) and the URL of its weights.
    function deployPod(
        bytes32 modelId, uint8 kind, uint32 minVramMb, uint16 revenueBps, string calldata name, string calldata uri
    ) external {
        if (bytes(name).length == 0 || bytes(name).length > MAX_NAME_BYTES) revert BadName();
        if (bytes(uri).length == 0 || bytes(uri).length > MAX_URI_BYTES) revert BadUri();
        bytes32 key = keccak256(bytes(name));
        if (podByName[key] != bytes32(0)) revert NameTaken(name);
        registerPod(modelId, kind, minVramMb, revenueBps);
        podByName[key] = modelId;
        meta[modelId] = PodMeta(name, uri, false);
        emit PodDeployed(modelId, name, uri);
    }

    /// The deployer stops the pod: miners unload it and gateways stop routing to it.
    function retirePod(bytes32 podId) external {
        Pod storage p = pods[podId];
        if (p.deployer == address(0)) revert UnknownPod(podId);
        if (p.deployer != msg.sender) revert NotDeployer();
        if (meta[podId].retired) revert AlreadyRetired(podId);
        meta[podId].retired = true;
        emit PodRetired(podId);
    }

    function podCount() external view returns (uint256) {
        return podIds.length;
    }

    /// The deployer and revenue share of a pod; (0, 0) when it is not registered.
    function revenueShare(bytes32 podId) external view returns (address deployer, uint16 bps) {
        Pod storage p = pods[podId];
        return (p.deployer, p.revenueBps);
    }
}
