"""Merkle trees in the style of Certificate Transparency (RFC 6962, RFC 9162 section 2.1).

A tree over ``n`` leaves has the root ``MTH``: for no leaf ``SHA-256()``, for one leaf its
leaf hash ``SHA-256(0x00 || entry)``, and for more ``SHA-256(0x01 || MTH(left) ||
MTH(right))`` where the left part holds the largest power of two of leaves smaller than
``n``. The 0x00 / 0x01 prefixes keep a leaf from passing for an inner node. An inclusion
proof shows that a leaf is in a tree with a given root; a consistency proof shows that a
tree is an earlier state of a larger one (nothing changed, only appended). Both are
``O(log n)`` hashes long.

Functions here take and give raw 32-byte digests; :func:`leaf_hash` turns an entry into a
leaf. :class:`MerkleAccumulator` computes roots while streaming, in ``O(log n)`` memory.

>>> leaves = [leaf_hash(bytes([i])) for i in range(5)]
>>> root = merkle_root(leaves)
>>> verify_inclusion(leaves[3], 3, 5, inclusion_proof(leaves, 3), root)
True
>>> old = merkle_root(leaves[:2])
>>> verify_consistency(2, 5, old, root, consistency_proof(leaves, 2))
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "MerkleAccumulator",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT: Final[bytes] = hashlib.sha256(b"").digest()
"""The root of the tree with no leaf: ``SHA-256`` of nothing."""

_sha256: Final = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``: the hash of one leaf.

    >>> leaf_hash(b"").hex()[:16]
    '6e340b9cffb37a98'
    """
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an inner node."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleAccumulator:
    """The root of a growing tree, one leaf at a time, in ``O(log n)`` memory.

    It keeps the *frontier* (a compact range): the roots of the perfect subtrees the
    leaves so far fall into, largest first, one per set bit of :attr:`size`. Appending costs
    one leaf's worth of hashing on average; :meth:`root` costs ``O(log n)``.

    Parameters
    ----------
    size : int, default 0
        Leaves already in the tree, to resume from a saved state.
    frontier : sequence of bytes, default ()
        Their frontier (:attr:`frontier` of an earlier accumulator).

    Examples
    --------
    >>> leaves = [leaf_hash(bytes([i])) for i in range(7)]
    >>> acc = MerkleAccumulator()
    >>> acc.extend(leaves[:6])
    >>> later = MerkleAccumulator(acc.size, acc.frontier)
    >>> later.append(leaves[6])
    >>> later.root() == merkle_root(leaves), len(later.frontier)
    (True, 3)
    """

    __slots__ = ("_frontier", "_size")

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"size must be an int >= 0, got {size!r}")
        nodes = list(frontier)
        if len(nodes) != size.bit_count():
            raise ValueError(
                f"a tree of {size} leaves has a frontier of {size.bit_count()} hashes, "
                f"got {len(nodes)}"
            )
        for i, node in enumerate(nodes):
            _check_digest(node, f"frontier[{i}]")
        self._size = size
        self._frontier = nodes

    @property
    def size(self) -> int:
        """Number of leaves appended."""
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """Roots of the perfect subtrees, largest first (save it to resume later)."""
        return tuple(self._frontier)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (32 bytes; not checked, for speed)."""
        frontier = self._frontier
        n = self._size
        while n & 1:
            leaf = _sha256(b"\x01" + frontier.pop() + leaf).digest()
            n >>= 1
        frontier.append(leaf)
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add leaf hashes in order."""
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """The root of the tree of the leaves so far (:data:`EMPTY_ROOT` if none)."""
        frontier = self._frontier
        if not frontier:
            return EMPTY_ROOT
        root = frontier[-1]
        for node in reversed(frontier[:-1]):
            root = _sha256(b"\x01" + node + root).digest()
        return root


def _check_digest(value: object, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes, got {value!r}")


def _range_root(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """``MTH(leaves[lo:hi])`` without copying the slice."""
    acc = MerkleAccumulator()
    for i in range(lo, hi):
        acc.append(leaves[i])
    return acc.root()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root of the tree over ``leaves`` (leaf hashes, in order).

    Examples
    --------
    >>> a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    >>> merkle_root([a, b, c]) == node_hash(node_hash(a, b), c)
    True
    >>> merkle_root([]) == EMPTY_ROOT
    True
    """
    return _range_root(leaves, 0, len(leaves))


def _check_size(value: object, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree over ``leaves`` (RFC 6962 ``PATH``).

    Returns the sibling subtree roots from the leaf up to the root; ``O(n)`` hashing.

    Raises
    ------
    ValueError
        ``index`` is not from 0 to ``len(leaves) - 1``.

    Examples
    --------
    >>> leaves = [leaf_hash(bytes([i])) for i in range(3)]
    >>> inclusion_proof(leaves, 2) == [node_hash(leaves[0], leaves[1])]
    True
    """
    n = len(leaves)
    _check_size(index, "index", 0, n - 1)
    siblings: list[bytes] = []
    lo, hi = 0, n
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            siblings.append(_range_root(leaves, lo + k, hi))
            hi = lo + k
        else:
            siblings.append(_range_root(leaves, lo, lo + k))
            lo += k
    siblings.reverse()
    return siblings


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``root``.

    The check of RFC 9162, section 2.1.3.2. A wrong index, size, leaf or root, or a proof
    with a hash changed, added or missing, gives ``False``.
    """
    if index < 0 or index >= tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Proof that the tree over ``leaves[:old_size]`` is a prefix of the one over ``leaves``.

    RFC 6962 ``PROOF(m, D[n])``; empty when ``old_size`` is 0 or ``len(leaves)`` (nothing to
    show). ``O(n)`` hashing.

    Raises
    ------
    ValueError
        ``old_size`` is not from 0 to ``len(leaves)``.

    Examples
    --------
    >>> leaves = [leaf_hash(bytes([i])) for i in range(3)]
    >>> consistency_proof(leaves, 2) == [leaves[2]]
    True
    """
    n = len(leaves)
    m = _check_size(old_size, "old_size", 0, n)
    if m in (0, n):
        return []
    proof: list[bytes] = []
    lo, hi, whole = 0, n, True  # SUBPROOF(m, leaves[lo:hi], whole)
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(_range_root(leaves, lo + k, hi))
            hi = lo + k
        else:
            proof.append(_range_root(leaves, lo, lo + k))
            lo += k
            m -= k
            whole = False
    if not whole:
        proof.append(_range_root(leaves, lo, hi))
    proof.reverse()
    return proof


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree ``old_root`` is the first ``old_size`` leaves of
    the tree ``new_root``.

    The check of RFC 9162, section 2.1.4.2; with ``old_size`` 0 the proof must be empty and
    ``old_root`` the empty root, with equal sizes empty and the roots equal.
    """
    if old_size < 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
