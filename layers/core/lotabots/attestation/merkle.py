"""A binary SHA-256 Merkle tree over fixed-size leaves, domain-separated (0x00 leaf, 0x01 node).

The leaf count is fixed by the challenge size, so an odd node at the end of a level is carried
up unchanged (no duplication, hence no second-preimage ambiguity for a known leaf count). The
leaf hash includes the leaf's index, so a segment cannot be presented at another position.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence


def leaf_hash(index: int, data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + index.to_bytes(8, "big") + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first, root last."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    tree = [list(leaves)]
    while len(tree[-1]) > 1:
        below = tree[-1]
        above = [node_hash(below[k], below[k + 1]) for k in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        tree.append(above)
    return tree


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    return levels(list(leaf_hashes))[-1][0]


def path(tree: list[list[bytes]], index: int) -> list[str]:
    """Sibling hashes (hex) from the leaf up; a level where the node has no sibling is skipped."""
    siblings: list[str] = []
    for level in tree[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            siblings.append(level[sibling].hex())
        index //= 2
    return siblings


def verify_path(leaf: bytes, index: int, count: int, siblings: Sequence[str], root: str) -> bool:
    """True when `leaf` at `index` of a tree with `count` leaves hashes up to `root`."""
    if not 0 <= index < count:
        return False
    node, remaining, width = leaf, list(siblings), count
    try:
        while width > 1:
            sibling_index = index ^ 1
            if sibling_index < width:
                if not remaining:
                    return False
                sibling = bytes.fromhex(remaining.pop(0))
                if len(sibling) != 32:
                    return False
                node = node_hash(sibling, node) if index % 2 else node_hash(node, sibling)
            index //= 2
            width = (width + 1) // 2
    except ValueError:
        return False
    return not remaining and node.hex() == root
