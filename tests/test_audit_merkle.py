"""Tests of the RFC 6962 Merkle tree (``loopwise.audit.merkle``)."""

from __future__ import annotations

import hashlib
import random

import pytest

from loopwise.audit.merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_consistency,
    verify_inclusion,
)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def L(entry: bytes) -> bytes:
    """A leaf hash, by hand."""
    return sha(b"\x00" + entry)


def N(left: bytes, right: bytes) -> bytes:
    """An inner node hash, by hand."""
    return sha(b"\x01" + left + right)


# The eight entries of the Certificate Transparency reference tests (RFC 6962 test data,
# google/certificate-transparency merkle_tree_test), and their published tree heads.
CT_ENTRIES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (0-based index, tree size, path)
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_LEAVES = [L(e) for e in CT_ENTRIES]


# --------------------------------------------------------------- a reference, by the RFC
def ref_mth(d: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 MTH, recursive, over leaf hashes."""
    if not d:
        return sha(b"")
    if len(d) == 1:
        return d[0]
    k = 1
    while k * 2 < len(d):
        k *= 2
    return N(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1 PATH(m, D[n])."""
    if len(d) <= 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """RFC 6962 section 2.1.2 SUBPROOF(m, D[n], b)."""
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


LEAVES_40 = [L(b"event %d" % i) for i in range(40)]
ROOTS_40 = [ref_mth(LEAVES_40[:n]) for n in range(41)]


# ------------------------------------------------------------------ hand-computed vectors
def test_primitives_are_the_rfc_prefixes() -> None:
    assert leaf_hash(b"abc") == sha(b"\x00abc")
    assert node_hash(b"a" * 32, b"b" * 32) == sha(b"\x01" + b"a" * 32 + b"b" * 32)
    assert EMPTY_ROOT == sha(b"") == bytes.fromhex(CT_ROOTS[0])


def test_small_trees_by_hand() -> None:
    a, b, c, d, e, f, g = (L(x) for x in (b"a", b"b", b"c", b"d", b"e", b"f", b"g"))
    by_hand = {
        0: sha(b""),
        1: a,
        2: N(a, b),
        3: N(N(a, b), c),
        4: N(N(a, b), N(c, d)),
        5: N(N(N(a, b), N(c, d)), e),
        6: N(N(N(a, b), N(c, d)), N(e, f)),
        7: N(N(N(a, b), N(c, d)), N(N(e, f), g)),
    }
    leaves = [a, b, c, d, e, f, g]
    for n, root in by_hand.items():
        assert merkle_root(leaves[:n]) == root, n
    # PATH of c in the 7-leaf tree: d, then (a,b), then the right half
    assert inclusion_proof(leaves, 2) == [d, N(a, b), N(N(e, f), g)]
    # the 6-leaf tree from the 3-leaf one: c, d, (a,b), (e,f) - RFC 6962 2.1.3's example
    assert consistency_proof(leaves[:6], 3) == [c, d, N(a, b), N(e, f)]
    assert consistency_proof(leaves[:7], 4) == [N(N(e, f), g)]
    assert consistency_proof(leaves[:7], 6) == [N(e, f), g, N(N(a, b), N(c, d))]


def test_certificate_transparency_reference_roots() -> None:
    for n in range(9):
        assert merkle_root(CT_LEAVES[:n]).hex() == CT_ROOTS[n], n
        acc = MerkleAccumulator()
        acc.extend(CT_LEAVES[:n])
        assert acc.root().hex() == CT_ROOTS[n], n


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_certificate_transparency_inclusion_vectors(index: int, size: int, path: list[str]) -> None:
    proof = inclusion_proof(CT_LEAVES[:size], index)
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(CT_ROOTS[size])
    assert verify_inclusion(CT_LEAVES[index], index, size, proof, root)


@pytest.mark.parametrize(("old", "new", "path"), CT_CONSISTENCY)
def test_certificate_transparency_consistency_vectors(old: int, new: int, path: list[str]) -> None:
    proof = consistency_proof(CT_LEAVES[:new], old)
    assert [p.hex() for p in proof] == path
    old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    assert verify_consistency(old, new, old_root, new_root, proof)


# ------------------------------------------------------------------ every leaf, every pair
def test_roots_of_every_size_match_the_recursive_definition() -> None:
    acc = MerkleAccumulator()
    for n in range(41):
        assert merkle_root(LEAVES_40[:n]) == ROOTS_40[n]
        assert acc.size == n and acc.root() == ROOTS_40[n]
        assert len(acc.frontier) == bin(n).count("1")
        if n < 40:
            acc.append(LEAVES_40[n])


def test_inclusion_proofs_for_every_leaf_of_trees_1_to_40() -> None:
    for n in range(1, 41):
        leaves, root = LEAVES_40[:n], ROOTS_40[n]
        for i in range(n):
            proof = inclusion_proof(leaves, i)
            assert proof == ref_path(i, leaves), (n, i)
            assert verify_inclusion(leaves[i], i, n, proof, root), (n, i)
            # the same proof proves nothing about another leaf, index, size or root
            other = (i + 1) % n
            if other != i:
                assert not verify_inclusion(leaves[other], i, n, proof, root)
                assert not verify_inclusion(leaves[i], other, n, proof, root)
            assert not verify_inclusion(leaves[i], i, n, proof, ROOTS_40[n - 1])
            if n < 40:  # nor about the next tree (the size alone only sets the path's shape)
                assert not verify_inclusion(leaves[i], i, n + 1, proof, ROOTS_40[n + 1])


def test_consistency_proofs_for_every_pair_up_to_40() -> None:
    for n in range(41):
        leaves = LEAVES_40[:n]
        for m in range(n + 1):
            proof = consistency_proof(leaves, m)
            expected = ref_subproof(m, leaves, True) if 0 < m < n else []
            assert proof == expected, (m, n)
            assert verify_consistency(m, n, ROOTS_40[m], ROOTS_40[n], proof), (m, n)
            if 0 < m < n:  # another old tree, or another new one, is not consistent
                assert not verify_consistency(m, n, ROOTS_40[m - 1], ROOTS_40[n], proof)
                assert not verify_consistency(m, n, ROOTS_40[m], ROOTS_40[n - 1], proof)
                assert not verify_consistency(m - 1, n, ROOTS_40[m], ROOTS_40[n], proof)
                assert not verify_consistency(m, n - 1, ROOTS_40[m], ROOTS_40[n - 1], proof)


def _flip(h: bytes, bit: int) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def test_tampered_inclusion_proofs_are_rejected() -> None:
    rng = random.Random(6962)
    for n in range(1, 41):
        leaves, root = LEAVES_40[:n], ROOTS_40[n]
        for i in range(n):
            proof = inclusion_proof(leaves, i)
            for j in range(len(proof)):  # any hash changed
                bad = [*proof]
                bad[j] = _flip(bad[j], rng.randrange(8))
                assert not verify_inclusion(leaves[i], i, n, bad, root), (n, i, j)
            if proof:  # a hash missing, or the order changed
                assert not verify_inclusion(leaves[i], i, n, proof[:-1], root)
                if len(set(proof)) > 1:
                    assert not verify_inclusion(leaves[i], i, n, proof[::-1], root)
            assert not verify_inclusion(leaves[i], i, n, [*proof, leaves[0]], root)
            assert not verify_inclusion(_flip(leaves[i], 0), i, n, proof, root)


def test_tampered_consistency_proofs_are_rejected() -> None:
    rng = random.Random(9162)
    for n in range(2, 41):
        for m in range(1, n):
            proof = consistency_proof(LEAVES_40[:n], m)
            args = (m, n, ROOTS_40[m], ROOTS_40[n])
            for j in range(len(proof)):
                bad = [*proof]
                bad[j] = _flip(bad[j], rng.randrange(8))
                assert not verify_consistency(*args, bad), (m, n, j)
            assert not verify_consistency(*args, proof[:-1])
            assert not verify_consistency(*args, [*proof, proof[-1]])
            assert not verify_consistency(*args, [])


def test_degenerate_sizes() -> None:
    a = LEAVES_40[0]
    assert inclusion_proof([a], 0) == []
    assert verify_inclusion(a, 0, 1, [], a)
    assert not verify_inclusion(a, 0, 0, [], EMPTY_ROOT)
    assert not verify_inclusion(a, -1, 1, [], a)
    assert verify_consistency(0, 5, EMPTY_ROOT, ROOTS_40[5], [])
    assert not verify_consistency(0, 5, ROOTS_40[1], ROOTS_40[5], [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, ROOTS_40[5], [a])
    assert verify_consistency(5, 5, ROOTS_40[5], ROOTS_40[5], [])
    assert not verify_consistency(5, 5, ROOTS_40[5], ROOTS_40[5], [a])
    assert not verify_consistency(6, 5, ROOTS_40[6], ROOTS_40[5], [])
    with pytest.raises(ValueError, match="index must be from 0 to 2"):
        inclusion_proof(LEAVES_40[:3], 3)
    with pytest.raises(ValueError, match="index"):
        inclusion_proof([], 0)
    with pytest.raises(ValueError, match="old_size must be from 0 to 3"):
        consistency_proof(LEAVES_40[:3], 4)
    with pytest.raises(TypeError, match="index must be an int"):
        inclusion_proof(LEAVES_40[:3], True)


def test_accumulator_resumes_from_its_frontier() -> None:
    acc = MerkleAccumulator()
    acc.extend(LEAVES_40[:23])
    later = MerkleAccumulator(acc.size, acc.frontier)
    later.extend(LEAVES_40[23:])
    assert later.root() == ROOTS_40[40] and acc.root() == ROOTS_40[23]
    # the frontier is the roots of the perfect subtrees: 23 = 16 + 4 + 2 + 1
    assert acc.frontier == (
        ref_mth(LEAVES_40[:16]),
        ref_mth(LEAVES_40[16:20]),
        ref_mth(LEAVES_40[20:22]),
        LEAVES_40[22],
    )


def test_accumulator_rejects_a_bad_state() -> None:
    with pytest.raises(ValueError, match="frontier of 3 hashes, got 2"):
        MerkleAccumulator(7, LEAVES_40[:2])
    with pytest.raises(ValueError, match=r"frontier\[0\] must be 32 bytes"):
        MerkleAccumulator(1, [b"short"])
    with pytest.raises(ValueError, match="size must be an int >= 0"):
        MerkleAccumulator(-1)
