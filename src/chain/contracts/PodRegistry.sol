// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Pods: a model (by the sha256 of its weights, which is also the pod id), its kind,
///        minimum VRAM, deployer and the deployer's revenue share in basis points.
contract PodRegistry {
    struct Pod {
        address deployer;
        uint8 kind; // 0 LLM, 1 image (same numbering as the pools)
        uint32 minVramMb;
        uint16 revenueBps;
    }

    uint16 public immutable maxRevenueBps;
    mapping(bytes32 => Pod) public pods;

    event PodRegistered(bytes32 indexed podId, address indexed deployer, uint8 kind, uint32 minVramMb, uint16 revenueBps);

    error PodExists(bytes32 podId);
    error BadKind(uint8 kind);
    error RevenueShareTooHigh(uint16 bps, uint16 max);
    error NotDeployer();

    constructor(uint16 maxRevenueBps_) {
        maxRevenueBps = maxRevenueBps_;
    }

    function registerPod(bytes32 modelId, uint8 kind, uint32 minVramMb, uint16 revenueBps) external {
        if (pods[modelId].deployer != address(0)) revert PodExists(modelId);
        if (kind > 1) revert BadKind(kind);
        if (revenueBps > maxRevenueBps) revert RevenueShareTooHigh(revenueBps, maxRevenueBps);
        pods[modelId] = Pod(msg.sender, kind, minVramMb, revenueBps);
        emit PodRegistered(modelId, msg.sender, kind, minVramMb, revenueBps);
    }

    /// The deployer and revenue share of a pod; (0, 0) when it is not registered.
    function revenueShare(bytes32 podId) external view returns (address deployer, uint16 bps) {
        Pod storage p = pods[podId];
        return (p.deployer, p.revenueBps);
    }
}
