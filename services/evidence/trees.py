"""Merkle trees stored as their leaves, once per tree (revision 0022).

A hash-only intake batch and an anchored batch each keep their leaves in tree order, 32 bytes
apiece, instead of a path per row: a path is about 1 KB of JSON at 10,000 leaves, most of a
row. A row's path is rebuilt from the stored leaves and the row's own leaf when it is served;
the rebuilt tree is kept for the next request (a stored tree never changes).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from offerseal_verify.hexbytes import to_hex
from offerseal_verify.merkle import MerkleTree

LEAF_BYTES = 32
JSON_NULL = "null"  # what a row's path column holds when its tree's leaves are stored


def tree_of(stored: bytes | None) -> MerkleTree:
    """The tree whose leaves `leaves_of` wrote."""
    if not stored or len(stored) % LEAF_BYTES:
        raise ValueError(f"stored leaves must be a non-empty multiple of {LEAF_BYTES} bytes")
    return MerkleTree.build([stored[i : i + LEAF_BYTES] for i in range(0, len(stored), LEAF_BYTES)])


def path_hex(tree: MerkleTree, leaf: bytes) -> list[str]:
    """A leaf's path to the root as the rows used to store it (`0x` hex, leaf to root)."""
    return [to_hex(node) for node in tree.proof(leaf)]


class TreeCache:
    """The trees last rebuilt from stored leaves, by key; at most `size` of them (a tree of
    10,000 leaves is about 2 MB of nodes)."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._trees: OrderedDict[tuple[str, int], MerkleTree] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int], load: Callable[[], bytes | None]) -> MerkleTree:
        with self._lock:
            tree = self._trees.get(key)
            if tree is not None:
                self._trees.move_to_end(key)
                return tree
        tree = tree_of(load())  # outside the lock: two requests may both build it, same tree
        with self._lock:
            self._trees[key] = tree
            self._trees.move_to_end(key)
            while len(self._trees) > self.size:
                self._trees.popitem(last=False)
        return tree


def leaves_of(values: Sequence[bytes]) -> bytes:
    """Leaves in tree order (sorted, as `MerkleTree.build` orders them) as one stored value."""
    return b"".join(sorted(values))
