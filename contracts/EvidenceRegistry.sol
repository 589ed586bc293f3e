// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IEvidenceRegistry} from "./IEvidenceRegistry.sol";

/**
 * @title EvidenceRegistry
 * @notice Anchors Merkle roots of OfferSeal evidence batches (see {IEvidenceRegistry}).
 */
contract EvidenceRegistry is IEvidenceRegistry, AccessControl {
    /// @notice Role allowed to call {anchor}.
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    mapping(bytes32 root => uint64 timestamp) private _anchoredAt;

    /// @notice The admin and the anchorer must be real accounts, and not the same one: the key
    /// that anchors is online, the one that grants roles should not be.
    error InvalidRoleHolders(address admin, address anchorer);

    /**
     * @param admin Account that manages roles: a cold key or a multisig, kept off the server.
     * @param anchorer Account allowed to anchor roots (the evidence service's online signer).
     * @dev Reverts with {InvalidRoleHolders} for a zero account. The same account for both is
     * allowed only on a local development chain (chain id 31337).
     */
    constructor(address admin, address anchorer) {
        if (admin == address(0) || anchorer == address(0) || (admin == anchorer && block.chainid != 31337)) {
            revert InvalidRoleHolders(admin, anchorer);
        }
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHORER_ROLE, anchorer);
    }

    /// @inheritdoc IEvidenceRegistry
    function anchor(bytes32 root) external onlyRole(ANCHORER_ROLE) {
        if (root == bytes32(0)) revert ZeroRoot();
        if (_anchoredAt[root] != 0) revert RootAlreadyAnchored(root);
        uint64 timestamp = uint64(block.timestamp);
        _anchoredAt[root] = timestamp;
        emit Anchored(root, timestamp, msg.sender);
    }

    /// @inheritdoc IEvidenceRegistry
    function anchoredAt(bytes32 root) external view returns (uint64) {
        return _anchoredAt[root];
    }

    /// @inheritdoc IEvidenceRegistry
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external view returns (bool) {
        return _anchoredAt[root] != 0 && MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @inheritdoc IEvidenceRegistry
    function version() external pure returns (string memory) {
        return "1.1.0";
    }
}
