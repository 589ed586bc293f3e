// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/**
 * @title IEvidenceRegistry
 * @notice Timestamps Merkle roots of OfferSeal evidence batches. Only roots are stored: no document
 * hash and no personal data ever reaches the chain. Anyone can check a root or a proof.
 */
interface IEvidenceRegistry {
    /// @notice The root was anchored before, at `anchoredAt`.
    error RootAlreadyAnchored(bytes32 root);

    /// @notice The zero root cannot be anchored (it is the "never anchored" marker).
    error ZeroRoot();

    /// @notice `root` was anchored by `anchorer` in a block with timestamp `timestamp`.
    event Anchored(bytes32 indexed root, uint64 timestamp, address indexed anchorer);

    /**
     * @notice Records `root` with the current block timestamp.
     * @dev Restricted to accounts holding the anchorer role. Reverts with {RootAlreadyAnchored}
     * when `root` was anchored before, so a root is timestamped exactly once.
     * @param root Merkle root of a batch of evidence leaves.
     */
    function anchor(bytes32 root) external;

    /**
     * @notice The block timestamp at which `root` was anchored, or 0 if it never was.
     * @param root Merkle root to look up.
     * @return timestamp Unix seconds of the anchoring block, 0 if unknown.
     */
    function anchoredAt(bytes32 root) external view returns (uint64 timestamp);

    /**
     * @notice True only if `root` is anchored and `proof` proves `leaf` under it.
     * @dev Uses OpenZeppelin MerkleProof (sorted-pair hashing), the same scheme as
     * OpenZeppelin's StandardMerkleTree.
     * @param proof Sibling hashes from the leaf up to the root.
     * @param root Anchored Merkle root.
     * @param leaf Leaf hash (double keccak of the ABI-encoded leaf values).
     */
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external view returns (bool);

    /// @notice Version of this registry implementation.
    function version() external pure returns (string memory);
}
