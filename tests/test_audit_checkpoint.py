"""Tests of signed checkpoints (``loopwise.audit.checkpoint``) and the streaming trail
verification (``loopwise.audit.trail``)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from loopwise.audit import (
    GENESIS,
    TRAIL_PROBLEM_KINDS,
    Checkpoint,
    MerkleAccumulator,
    TrailResult,
    checkpoint_message,
    consistency_proof,
    event_body,
    event_leaf,
    generate_private_key,
    inclusion_proof,
    link,
    load_private_key,
    load_public_key,
    merkle_root,
    private_key_pem,
    public_key_id,
    public_key_pem,
    sign_checkpoint,
    verify_chain,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_trail,
)

Row = tuple[Any, ...]

# RFC 8032, section 7.1, TEST 1
RFC8032_SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_SIGNATURE = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

KEY = load_private_key(bytes.fromhex(RFC8032_SECRET))
OTHER_KEY = load_private_key(bytes(range(1, 33)))
AT = "2024-05-01T12:00:00Z"


# ------------------------------------------------------------------------------ helpers
def event(seq: int) -> tuple[str, str | None, dict[str, Any]]:
    """(type, actor, payload) of event ``seq`` of a realistic, complete trail."""
    if seq == 1:
        return "user.created", None, {"name": "ada", "role": "admin"}
    if seq == 2:
        return "user.created", "ada", {"name": "eve", "role": "expert"}
    if seq == 3:
        return "user.created", "ada", {"name": "rex", "role": "reviewer"}
    if seq % 37 == 0:
        return "decision.overridden", "eve", {"item": seq, "label": "b", "reason": "misread"}
    if seq == 120:
        return "project.stopped", "ada", {"reason": "drift on group B"}
    if seq == 130:
        return "project.resumed", "ada", {"reason": "model rolled back"}
    kinds = ("item.received", "route.decided", "review.submitted", "decision.made")
    return kinds[seq % 4], "rex", {"item": seq // 4, "label": "a", "confidence": 0.93}


def body_of(seq: int, change: dict[str, Any] | None = None) -> str:
    type_, actor, payload = event(seq)
    fields: dict[str, Any] = {"type": type_, "actor": actor, "payload": payload, **(change or {})}
    return event_body(seq=seq, at=AT, project="triage", **fields)


def chain_rows(bodies: list[str], start_hash: str = GENESIS, first: int = 1) -> list[Row]:
    hashes = link(start_hash, bodies)
    prevs = [start_hash, *hashes[:-1]]
    types = [body.rsplit('"type":"', 1)[1][:-2] for body in bodies]
    seqs = range(first, first + len(bodies))
    return list(zip(seqs, prevs, hashes, bodies, types, strict=True))


def make_log(n: int = 200) -> list[Row]:
    return chain_rows([body_of(s) for s in range(1, n + 1)])


def checkpoints_of(rows: list[Row], every: int, key: Any = KEY) -> list[Checkpoint]:
    acc, out = MerkleAccumulator(), list[Checkpoint]()
    for row in rows:
        acc.append(event_leaf(row[2]))
        if row[0] % every == 0:
            cp = Checkpoint(len(out) + 1, row[0], acc.root().hex(), row[2], AT)
            out.append(sign_checkpoint(cp, key) if key is not None else cp)
    return out


LOG = make_log()
CPS = checkpoints_of(LOG, 50)
KEYS = [KEY.public_key()]


def rewrite(rows: list[Row], seq: int, change: dict[str, Any]) -> list[Row]:
    """Change event ``seq`` and recompute every hash from it on: a consistent chain."""
    i = seq - 1
    bodies = [r[3] for r in rows]
    bodies[i] = body_of(seq, change)
    return rows[:i] + chain_rows(bodies[i:], rows[i][1], seq)


# -------------------------------------------------------------------------------- keys
def test_keys_follow_rfc8032() -> None:
    public = KEY.public_key()
    assert public.public_bytes_raw().hex() == RFC8032_PUBLIC
    assert KEY.sign(b"").hex() == RFC8032_SIGNATURE
    assert public_key_id(KEY) == public_key_id(public)
    assert public_key_id(public) == hashlib.sha256(bytes.fromhex(RFC8032_PUBLIC)).hexdigest()


def test_keys_round_trip_through_pem_and_raw_bytes() -> None:
    key = generate_private_key()
    pem = private_key_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    for loaded in (load_private_key(pem), load_private_key(pem.decode())):
        assert public_key_id(loaded) == public_key_id(key)
    locked = private_key_pem(key, password=b"s3cret")
    assert b"ENCRYPTED" in locked
    assert public_key_id(load_private_key(locked, password=b"s3cret")) == public_key_id(key)
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        load_private_key(locked, password=b"wrong")
    pub_pem = public_key_pem(key)
    assert public_key_pem(key.public_key()) == pub_pem
    for pub in (load_public_key(pub_pem), load_public_key(pub_pem.decode())):
        assert public_key_id(pub) == public_key_id(key)
    raw = key.public_key().public_bytes_raw()
    assert public_key_id(load_public_key(raw)) == public_key_id(key)


def test_keys_of_another_kind_or_garbage_are_refused() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match=r"the PEM holds .*, not an Ed25519 private key"):
        load_private_key(ec_pem)
    ec_pub = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match=r"the PEM holds .*, not an Ed25519 public key"):
        load_public_key(ec_pub)
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        load_public_key(b"not a key")
    with pytest.raises(TypeError, match="Ed25519"):
        public_key_id(ec_key.public_key())  # type: ignore[arg-type]


# -------------------------------------------------------------------------- checkpoints
def test_a_signed_checkpoint_verifies_and_names_its_key() -> None:
    cp = CPS[1]
    assert cp.signed and cp.key_id == public_key_id(KEY)
    assert verify_checkpoint(cp, KEY.public_key())
    assert checkpoint_message(cp).startswith(b"loopwise checkpoint v1\n{")
    assert Checkpoint.from_dict(cp.to_dict()) == cp


def test_a_signature_is_rejected_under_another_key_or_after_any_change() -> None:
    cp = CPS[1]
    assert not verify_checkpoint(cp, OTHER_KEY.public_key())
    # the other key's id with the right signature: still not the other key's signature
    assert not verify_checkpoint(
        dataclasses.replace(cp, key_id=public_key_id(OTHER_KEY)), OTHER_KEY.public_key()
    )
    changes: dict[str, Any] = {
        "seq": cp.seq + 1,
        "tree_size": cp.tree_size - 1,
        "root": "f" * 64,
        "head_hash": LOG[0][2],
        "at": "2024-05-01T12:00:01Z",
        "key_id": public_key_id(OTHER_KEY),
    }
    for name, value in changes.items():
        assert not verify_checkpoint(dataclasses.replace(cp, **{name: value}), KEY.public_key())
    for i in range(0, 128, 16):  # a flipped signature digit
        digit = "0" if cp.signature[i] != "0" else "1"
        bad = cp.signature[:i] + digit + cp.signature[i + 1 :]
        assert not verify_checkpoint(dataclasses.replace(cp, signature=bad), KEY.public_key())
    assert not verify_checkpoint(dataclasses.replace(cp, signature=""), KEY.public_key())


def test_checkpoint_fields_are_validated() -> None:
    good: dict[str, Any] = {
        "seq": 1,
        "tree_size": 5,
        "root": "a" * 64,
        "head_hash": "b" * 64,
        "at": AT,
    }
    for name, value, error in [
        ("seq", 0, ValueError),
        ("seq", True, TypeError),
        ("tree_size", 0, ValueError),
        ("root", "A" * 64, ValueError),
        ("head_hash", "b" * 63, ValueError),
        ("at", 5, TypeError),
        ("signature", "ab", ValueError),
        ("key_id", "k", ValueError),
    ]:
        with pytest.raises(error, match=f"checkpoint {name}"):
            Checkpoint(**{**good, name: value})
    with pytest.raises(ValueError, match=r"unknown keys \['x'\], missing keys \['at'\]"):
        Checkpoint.from_dict({**{k: v for k, v in good.items() if k != "at"}, "x": 1})


def test_event_leaf_hashes_the_raw_event_hash() -> None:
    h = LOG[4][2]
    assert event_leaf(h) == hashlib.sha256(b"\x00" + bytes.fromhex(h)).digest()


def test_proofs_against_checkpoints() -> None:
    """A third party holding two checkpoints checks one event and the log's growth."""
    leaves = [event_leaf(r[2]) for r in LOG]
    cp2, cp4 = CPS[1], CPS[3]
    for i in (0, 41, 99):
        proof = inclusion_proof(leaves[: cp2.tree_size], i)
        assert verify_inclusion(leaves[i], i, cp2.tree_size, proof, bytes.fromhex(cp2.root))
    grow = consistency_proof(leaves[: cp4.tree_size], cp2.tree_size)
    old, new = bytes.fromhex(cp2.root), bytes.fromhex(cp4.root)
    assert verify_consistency(cp2.tree_size, cp4.tree_size, old, new, grow)
    forged = [event_leaf(r[2]) for r in rewrite(LOG, 60, {"payload": {"x": 1}})]
    assert not verify_consistency(cp2.tree_size, cp4.tree_size, old, merkle_root(forged), grow)


# -------------------------------------------------------------------------- verify_trail
def test_an_intact_trail_verifies() -> None:
    r = verify_trail(LOG, CPS, keys=KEYS)
    assert r.ok and r.problem is None
    assert (r.n_events, r.head_seq, r.head_hash) == (200, 200, LOG[-1][2])
    assert r.root == merkle_root([event_leaf(row[2]) for row in LOG]).hex() == CPS[-1].root
    assert r.n_checkpoints == 4 and r.last_checkpoint == CPS[-1] and r.signatures_checked
    assert dict(r.roles) == {"ada": "admin", "eve": "expert", "rex": "reviewer"}
    c = r.completeness
    assert (c.n_overrides, c.n_stops, c.n_resumes, dict(c.open_stops)) == (5, 1, 1, {})
    assert str(r).startswith(f"ok: 200 events, head {LOG[-1][2][:16]}, root {r.root[:16]}")
    assert str(r).endswith("4 checkpoints (signatures checked)")
    without = verify_trail([row[:4] for row in LOG], CPS)  # 4-tuples, no keys
    assert without.ok and without.root == r.root and without.completeness == c
    assert not without.signatures_checked and "NOT checked" in str(without)


def test_an_empty_trail() -> None:
    r = verify_trail([])
    assert r.ok and r.n_events == 0 and r.head_seq is None and r.head_hash == GENESIS
    assert r.root == hashlib.sha256(b"").hexdigest()


def test_naive_tampering_is_caught_by_the_chain() -> None:
    altered = [*LOG]
    altered[76] = (*LOG[76][:3], LOG[76][3].replace('"label":"a"', '"label":"b"'), LOG[76][4])
    deleted = LOG[:76] + LOG[77:]
    inserted = [*LOG[:76], LOG[10], *LOG[76:]]
    swapped = [*LOG[:76], LOG[77], LOG[76], *LOG[78:]]
    for rows, kind in [(altered, "hash"), (deleted, "gap"), (inserted, "order"), (swapped, "gap")]:
        r = verify_trail(rows, CPS, keys=KEYS)
        assert not r.ok and r.problem is not None
        assert (r.problem.seq, r.problem.kind) == (77, kind)
        assert r.head_seq == 76 and r.n_events == 76 and r.n_checkpoints == 1


def test_a_rewritten_chain_is_caught_only_by_checkpoints() -> None:
    forged = rewrite(LOG, 77, {"payload": {"item": 19, "label": "b", "confidence": 0.93}})
    assert verify_chain(forged).ok  # the chain alone cannot tell
    assert verify_trail(forged).ok
    r = verify_trail(forged, CPS, keys=KEYS)
    assert r.problem is not None and (r.problem.seq, r.problem.kind) == (100, "hash")
    assert "checkpoint" in r.problem.message
    assert r.head_seq == 99 and r.n_checkpoints == 1


def test_checkpoints_rewritten_with_the_chain_fail_their_signatures() -> None:
    forged = rewrite(LOG, 77, {"actor": "ada"})
    stale = checkpoints_of(forged, 50)
    # the attacker's checkpoints under the server's old signatures
    replayed = [
        dataclasses.replace(new, signature=old.signature)
        for old, new in zip(CPS, stale, strict=True)
    ]
    r = verify_trail(forged, replayed, keys=KEYS)
    assert r.problem is not None
    assert (r.problem.seq, r.problem.kind, r.problem.checkpoint) == (100, "signature", 2)
    assert "changed after it was signed" in r.problem.message
    # ... or signed with the attacker's own key
    own = checkpoints_of(forged, 50, key=OTHER_KEY)
    r = verify_trail(forged, own, keys=KEYS)
    assert r.problem is not None and (r.problem.kind, r.problem.checkpoint) == ("signature", 1)
    assert "unknown key" in r.problem.message
    # ... or not signed at all
    r = verify_trail(forged, checkpoints_of(forged, 50, key=None), keys=KEYS)
    assert r.problem is not None and "not signed" in r.problem.message
    # with the attacker's key trusted, the forgery is consistent
    assert verify_trail(forged, own, keys=[OTHER_KEY.public_key()]).ok


def test_a_signed_checkpoint_with_a_wrong_root_is_named() -> None:
    bad = sign_checkpoint(dataclasses.replace(CPS[2], root="0" * 64, signature=""), KEY)
    r = verify_trail(LOG, [*CPS[:2], bad, *CPS[3:]], keys=KEYS)
    assert r.problem is not None
    assert (r.problem.seq, r.problem.kind, r.problem.checkpoint) == (150, "root", 3)
    assert "checkpoint 3 says 0000000000000000" in r.problem.message
    # the result stops before the event that shows the problem
    assert r.head_seq == 149 and r.head_hash == LOG[148][2]
    assert r.root == merkle_root([event_leaf(row[2]) for row in LOG[:149]]).hex()


def test_a_truncated_trail_is_caught_by_the_last_checkpoint() -> None:
    r = verify_trail(LOG[:170], CPS, keys=KEYS)
    assert r.problem is not None and (r.problem.seq, r.problem.kind) == (171, "gap")
    assert r.n_checkpoints == 3 and r.head_seq == 170


def test_checkpoint_numbers_and_sizes_are_checked() -> None:
    assert verify_trail(LOG, CPS[::-1], keys=KEYS).ok  # any order
    assert verify_trail(LOG, [*CPS, *CPS[1:3]], keys=KEYS).ok  # identical copies
    other = sign_checkpoint(dataclasses.replace(CPS[1], tree_size=60, signature=""), KEY)
    cases = [
        ([CPS[0], CPS[2]], "checkpoint 2 is missing"),
        ([CPS[1]], "checkpoint 1 is missing"),
        ([CPS[0], CPS[1], other], "checkpoint 2 exists in two different versions"),
    ]
    for cps, message in cases:
        r = verify_trail(LOG, cps, keys=KEYS)
        assert r.problem is not None and r.problem.kind == "checkpoint"
        assert r.problem.message.startswith(message) and r.n_events == 0
    r = verify_trail(LOG, [CPS[0], CPS[2]], keys=KEYS)
    assert r.problem is not None and (r.problem.seq, r.problem.checkpoint) == (51, 2)
    shrunk = sign_checkpoint(dataclasses.replace(CPS[1], tree_size=40, signature=""), KEY)
    r = verify_trail(LOG, [CPS[0], shrunk], keys=KEYS)
    assert r.problem is not None and "no more than checkpoint 1 (50)" in r.problem.message
    with pytest.raises(TypeError, match="Checkpoint objects"):
        verify_trail(LOG, [CPS[0].to_dict()])  # type: ignore[list-item]


def test_deleted_checkpoints_are_caught_by_the_interval_or_a_saved_copy() -> None:
    """A rewriter who also deletes the checkpoints after the change needs no key."""
    forged = rewrite(LOG, 77, {"actor": "ada"})
    assert verify_trail(forged, CPS[:1], keys=KEYS).ok  # the trail alone cannot tell
    r = verify_trail(forged, CPS[:1], keys=KEYS, max_unchecked=60)
    assert r.problem is not None and (r.problem.seq, r.problem.kind) == (111, "checkpoint")
    assert r.problem.message == (
        "events 51..200 are covered by no checkpoint: more than 60 (were checkpoints deleted?)"
    )
    assert verify_trail(LOG, CPS, keys=KEYS, max_unchecked=50).ok
    r = verify_trail(LOG, CPS, keys=KEYS, max_unchecked=49)
    assert r.problem is not None and (r.problem.seq, r.problem.checkpoint) == (50, 1)
    # a copy of the latest checkpoint kept elsewhere: the numbering has a hole
    r = verify_trail(forged, [*CPS[:1], CPS[-1]], keys=KEYS)
    assert r.problem is not None and r.problem.message == "checkpoint 2 is missing"
    # ... and the end of the trail cannot be dropped with its checkpoint
    r = verify_trail(LOG[:170], [*CPS[:3], CPS[-1]], keys=KEYS)
    assert r.problem is not None and (r.problem.seq, r.problem.kind) == (171, "gap")
    with pytest.raises(ValueError, match="max_unchecked must be an int >= 1"):
        verify_trail(LOG, max_unchecked=0)


def test_verifying_since_an_earlier_result_equals_verifying_all() -> None:
    full = verify_trail(LOG, CPS, keys=KEYS)
    for cut in (0, 1, 50, 77, 150, 199, 200):
        first = verify_trail(LOG[:cut], [cp for cp in CPS if cp.tree_size <= cut], keys=KEYS)
        rest = verify_trail(LOG[cut:], CPS, keys=KEYS, since=first)
        assert rest.ok, (cut, rest)
        assert (rest.head_seq, rest.head_hash, rest.root) == (200, full.head_hash, full.root)
        assert rest.n_events == 200 - cut and rest.last_checkpoint == CPS[-1]
        assert first.n_checkpoints + rest.n_checkpoints == 4
    # resuming still catches what comes after
    broken = [*LOG[:100], *rewrite(LOG, 120, {"payload": {"reason": " "}})[100:]]
    first = verify_trail(broken[:100], CPS[:2], keys=KEYS)
    rest = verify_trail(broken[100:], CPS, keys=KEYS, since=first)
    assert rest.problem is not None and (rest.problem.seq, rest.problem.kind) == (120, "reason")
    with pytest.raises(ValueError, match="ok result"):
        verify_trail(LOG[150:], CPS, since=rest)
    with pytest.raises(ValueError, match="verify from the start"):
        verify_trail(LOG[120:], CPS, since=verify_trail(LOG[:120], CPS[:1]))


def test_completeness_is_checked_while_streaming() -> None:
    cases: list[tuple[int, dict[str, Any], str, str]] = [
        (74, {"actor": "rex"}, "role", "decision.overridden by role 'reviewer'"),
        (74, {"payload": {"item": 74, "label": "b"}}, "reason", "has no reason"),
        (120, {"payload": {}}, "reason", "project.stopped by role 'admin' has no reason"),
        (130, {"actor": "eve"}, "role", "the stop at event 120 of project 'triage'"),
        (130, {"actor": None}, "role", "by an actor of unknown role"),
        (130, {"actor": "mallory"}, "role", "by an actor of unknown role"),
    ]
    for seq, change, kind, text in cases:
        rows = rewrite(LOG, seq, change)
        r = verify_trail(rows)
        assert r.problem is not None and (r.problem.seq, r.problem.kind) == (seq, kind), change
        assert text in r.problem.message
        assert r.head_seq == seq - 1 and r.head_hash == rows[seq - 1][1]
        four = verify_trail([row[:4] for row in rows])
        assert four.problem == r.problem


def test_roles_of_actors_the_trail_does_not_create() -> None:
    rows = rewrite(LOG, 130, {"actor": "boss"})
    assert not verify_trail(rows).ok
    assert verify_trail(rows, roles={"boss": "admin"}).ok
    # the trail's own record of a role wins over the given mapping
    assert verify_trail(LOG, roles={"eve": "reviewer", "ada": "reviewer"}).ok


def test_a_still_stopped_project_is_reported_not_a_problem() -> None:
    r = verify_trail(LOG[:125])
    assert r.ok and dict(r.completeness.open_stops) == {"triage": 120}


def test_a_body_that_only_mentions_a_watched_type_is_not_mistaken_for_it() -> None:
    rows = rewrite(LOG, 5, {"payload": {"note": '"type":"project.resumed"'}})
    for r in (verify_trail(rows), verify_trail([row[:4] for row in rows])):
        assert r.ok and r.completeness.n_resumes == 1


def test_every_kind_is_listed() -> None:
    assert set(TRAIL_PROBLEM_KINDS) == {
        "gap",
        "order",
        "prev_hash",
        "hash",
        "body",
        "checkpoint",
        "signature",
        "root",
        "reason",
        "role",
    }
    assert isinstance(verify_trail(LOG[:3]), TrailResult)
