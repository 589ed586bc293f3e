"""Merkle trees exactly as OpenZeppelin's StandardMerkleTree builds them.

Leaves are `keccak256(keccak256(abi.encode(bytes32 sha256, bytes32 salt)))`; inner nodes hash
the sorted pair, so a proof verifies with `MerkleProof.verify` on chain and with
`StandardMerkleTree.verify` of `@openzeppelin/merkle-tree`. The layout (leaves sorted by hash,
stored right-to-left at the end of a flat array) matches the npm package, so roots agree too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

try:  # safe-pysha3's C Keccak is ~6x faster than eth-hash's pycryptodome backend
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        return bytes(_keccak_256(data).digest())

except ImportError:  # pragma: no cover
    from Crypto.Hash import keccak as _pycryptodome_keccak  # pycryptodome, as eth-hash uses

    def keccak(data: bytes) -> bytes:
        return bytes(_pycryptodome_keccak.new(digest_bits=256, data=data).digest())


LEAF_ENCODING = ("bytes32", "bytes32")


def leaf_hash(document_sha256: bytes, salt: bytes) -> bytes:
    """The StandardMerkleTree leaf for `[sha256, salt]` with encoding `["bytes32", "bytes32"]`."""
    if len(document_sha256) != 32 or len(salt) != 32:
        raise ValueError("leaf values must be 32 bytes each")
    # abi.encode of two bytes32 is their plain concatenation.
    return keccak(keccak(document_sha256 + salt))


def leaf_hashes(document_sha256s: bytes, salts: bytes) -> list[bytes]:
    """`leaf_hash` of many leaves at once: the i-th of the 32-byte values concatenated in
    `document_sha256s` with the i-th in `salts`."""
    if len(document_sha256s) != len(salts) or len(salts) % 32:
        raise ValueError("leaf values must be 32 bytes each, as many sha256 values as salts")
    return [
        keccak(keccak(document_sha256s[i : i + 32] + salts[i : i + 32]))
        for i in range(0, len(salts), 32)
    ]


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` leads to from `leaf` (OpenZeppelin `MerkleProof.processProof`)."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node


def verify(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    return process_proof(leaf, proof) == root


@dataclass(frozen=True)
class MerkleTree:
    """A built tree: `root`, and `proof(leaf)` for every leaf it was built from."""

    nodes: tuple[bytes, ...]
    positions: dict[bytes, int]

    @classmethod
    def build(cls, leaves: Sequence[bytes]) -> MerkleTree:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        if len(set(leaves)) != len(leaves):
            raise ValueError("leaves must be distinct")
        ordered = sorted(leaves)
        size = 2 * len(ordered) - 1
        nodes: list[bytes] = [b""] * size
        positions: dict[bytes, int] = {}
        for i, leaf in enumerate(ordered):
            position = size - 1 - i
            nodes[position] = leaf
            positions[leaf] = position
        for i in range(size - 1 - len(ordered), -1, -1):
            nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2])
        return cls(tuple(nodes), positions)

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    def proof(self, leaf: bytes) -> list[bytes]:
        index = self.positions[leaf]
        path: list[bytes] = []
        while index > 0:
            sibling = index + 1 if index % 2 == 1 else index - 1
            path.append(self.nodes[sibling])
            index = (index - 1) // 2
        return path
