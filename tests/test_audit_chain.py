"""Tests of the hash-chained audit log logic (``loopwise.audit``)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopwise.audit import (
    GENESIS,
    PROBLEM_KINDS,
    ChainProblem,
    VerifyResult,
    canonical_json,
    event_body,
    event_hash,
    link,
    verify_chain,
)
from loopwise.audit import chain as chain_module

Row = tuple[Any, ...]

TYPES = ("item.submitted", "decision.made", "review.submitted", "policy.changed")


def make_body(seq: int, payload: dict[str, Any] | None = None) -> str:
    return event_body(
        seq=seq,
        type=TYPES[seq % len(TYPES)],
        at=f"2024-05-01T12:{seq // 60 % 60:02d}:{seq % 60:02d}.000000Z",
        actor=None if seq % 7 == 0 else f"user-{seq % 5}",
        project="triage" if seq % 3 else None,
        payload=payload
        if payload is not None
        else {"item": seq, "label": "bénin", "score": seq / 7, "tags": ["a", "名前"], "ok": True},
    )


def make_rows(
    n: int,
    *,
    start_seq: int = 1,
    start_hash: str = GENESIS,
    payloads: list[dict[str, Any]] | None = None,
) -> list[Row]:
    """A valid chain as 5-tuples (seq, prev_hash, hash, body, type)."""
    seqs = range(start_seq, start_seq + n)
    bodies = [make_body(s, payloads[i] if payloads else None) for i, s in enumerate(seqs)]
    hashes = link(start_hash, bodies)
    prevs = [start_hash, *hashes[:-1]]
    return [
        (s, p, h, b, TYPES[s % len(TYPES)])
        for s, p, h, b in zip(seqs, prevs, hashes, bodies, strict=True)
    ]


def relink(rows: list[Row], start_hash: str = GENESIS) -> list[Row]:
    """Recompute prev_hash and hash of every row, keeping seq, body and type."""
    out: list[Row] = []
    prev = start_hash
    for row in rows:
        # surrogatepass: a few tests store bodies that are not valid Unicode
        h = hashlib.sha256(f"{prev}\n{row[3]}".encode("utf-8", "surrogatepass")).hexdigest()
        out.append((row[0], prev, h, *row[3:]))
        prev = h
    return out


def other_hash(h: str) -> str:
    return ("1" if h[0] == "0" else "0") + h[1:]


N = 3000


@pytest.fixture(scope="module")
def chain() -> list[Row]:
    return make_rows(N)


# --------------------------------------------------------------------------------------
# canonical JSON, bodies, hashes


def test_canonical_json_matches_json_dumps_and_sorts() -> None:
    obj = {"b": [1, 2.5, None, True], "a": {"z": "é", "y": "名"}, "c": -0.0, "d": (1, 2)}
    assert canonical_json(obj) == json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    assert canonical_json(obj) == (
        '{"a":{"y":"名","z":"é"},"b":[1,2.5,null,true],"c":-0.0,"d":[1,2]}'
    )


@pytest.mark.parametrize(
    ("value", "name"),
    [(float("nan"), "NaN"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity")],
)
def test_canonical_json_rejects_non_finite_and_says_which(value: float, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} is not valid JSON \(at \$\.a\.b\[1\]\)$"):
        canonical_json({"a": {"b": [0.5, value]}})


def test_event_body_with_nan_payload_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"NaN .*\$\.payload\.score"):
        event_body(
            seq=1,
            type="t",
            at="2024-01-01T00:00:00Z",
            actor=None,
            project=None,
            payload={"score": float("nan")},
        )


@pytest.mark.parametrize("obj", [{1: "a"}, {"a": {True: 1}}, {"a": [{None: 1}]}, {"a": 1, 2: 3}])
def test_canonical_json_requires_str_keys(obj: Any) -> None:
    with pytest.raises(TypeError, match="dict keys must be str"):
        canonical_json(obj)


def test_canonical_json_rejects_other_bad_input() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match=r"[Cc]ircular"):
        canonical_json({"a": loop})
    with pytest.raises(ValueError, match="lone surrogate"):
        canonical_json({"a": "x\ud800"})
    with pytest.raises(TypeError, match="not JSON serializable"):
        canonical_json({"a": object()})


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
payloads = st.dictionaries(st.text(max_size=5), json_values, max_size=4)


@given(json_values)
def test_canonical_json_is_json_dumps_and_a_fixed_point(obj: Any) -> None:
    text = canonical_json(obj)
    assert text == json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    assert canonical_json(json.loads(text)) == text


@settings(max_examples=3000)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=4))
def test_canonical_json_writes_every_float_as_json_dumps(values: list[float]) -> None:
    """Its fast path (orjson) writes some floats differently (1e-05, 1e+16): never seen."""
    assert canonical_json({"v": values}) == json.dumps({"v": values}, separators=(",", ":"))


def test_canonical_json_writes_subclasses_and_refuses_others_as_json_dumps() -> None:
    class Colour(enum.StrEnum):
        RED = "red"

    class Size(enum.IntEnum):
        BIG = 3

    @dataclasses.dataclass
    class Point:
        x: int

    obj = {"c": Colour.RED, "s": Size.BIG, "t": True, "big": 2**64}
    assert canonical_json(obj) == '{"big":18446744073709551616,"c":"red","s":3,"t":true}'
    for bad in (datetime.datetime(2024, 1, 1), Point(1)):
        with pytest.raises(TypeError, match="not JSON serializable"):
            canonical_json({"a": bad})


def test_event_body_fields() -> None:
    body = event_body(
        seq=3,
        type="decision.made",
        at="2024-01-01T00:00:00Z",
        actor="ada",
        project="p",
        payload={"label": "x"},
    )
    assert json.loads(body) == {
        "seq": 3,
        "type": "decision.made",
        "at": "2024-01-01T00:00:00Z",
        "actor": "ada",
        "project": "p",
        "payload": {"label": "x"},
    }
    assert canonical_json(json.loads(body)) == body
    with pytest.raises(TypeError):
        event_body(seq=True, type="t", at="", actor=None, project=None, payload={})


def test_event_hash_is_the_documented_formula() -> None:
    body = make_body(1)
    expected = hashlib.sha256(GENESIS.encode("ascii") + b"\n" + body.encode("utf-8"))
    assert event_hash(GENESIS, body) == expected.hexdigest()
    assert GENESIS == "0" * 64
    with pytest.raises(ValueError, match="64 lowercase hex"):
        event_hash(GENESIS.upper().replace("0", "A"), body)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        event_hash("abc", body)


def test_link_chains_event_hash() -> None:
    bodies = [make_body(s) for s in range(1, 30)]
    hashes = link(GENESIS, bodies)
    prev = GENESIS
    for body, h in zip(bodies, hashes, strict=True):
        assert h == event_hash(prev, body)
        prev = h
    assert link(GENESIS, []) == []
    with pytest.raises(ValueError):
        link("not a hash", bodies)


# --------------------------------------------------------------------------------------
# valid chains


def test_valid_chain_verifies(chain: list[Row]) -> None:
    res = verify_chain(chain)
    assert res == VerifyResult(
        ok=True, n_events=N, head_seq=N, head_hash=chain[-1][2], problem=None
    )
    assert str(res) == f"ok: {N} events, head {chain[-1][2][:16]}"
    four = [row[:4] for row in chain]
    assert verify_chain(iter(four)) == res
    assert verify_chain([list(row) for row in chain]) == res  # e.g. database rows


def test_many_events_stream_through_a_generator() -> None:
    n = 50_000

    def rows() -> Iterator[tuple[int, str, str, str]]:
        prev = GENESIS
        for seq in range(1, n + 1):
            body = f'{{"payload":{{"i":{seq}}},"seq":{seq},"type":"t"}}'
            h = event_hash(prev, body)
            yield seq, prev, h, body
            prev = h

    gen = rows()
    res = verify_chain(gen)
    assert res.ok and res.n_events == n and res.head_seq == n
    assert next(gen, None) is None  # consumed exactly once


def test_empty_chain_is_ok() -> None:
    res = verify_chain(iter([]))
    assert res == VerifyResult(ok=True, n_events=0, head_seq=None, head_hash=GENESIS, problem=None)
    assert str(res) == f"ok: 0 events, head {GENESIS[:16]}"
    h = "ab" * 32
    assert verify_chain([], start_seq=5, start_hash=h).head_hash == h


def test_single_event_str() -> None:
    res = verify_chain(make_rows(1))
    assert str(res).startswith("ok: 1 event, head ")


def test_verify_a_segment_from_an_earlier_head(chain: list[Row]) -> None:
    k = 1000
    res = verify_chain(chain[k:], start_seq=k + 1, start_hash=chain[k - 1][2])
    assert res.ok and res.n_events == N - k and res.head_hash == chain[-1][2]
    assert problem(verify_chain(chain[k:], start_seq=k + 1)) == (k + 1, "prev_hash")
    assert not verify_chain(chain[k:]).ok  # starts at 1 by default: a gap
    with pytest.raises(ValueError, match="start_hash"):
        verify_chain(chain, start_hash="0" * 63)


# --------------------------------------------------------------------------------------
# single-event tampering on a chain of a few thousand events

POSITIONS = [1, 2, 1500, N - 1, N]


def problem(res: VerifyResult) -> tuple[int | None, str]:
    assert not res.ok
    assert res.problem is not None
    assert res.problem.kind in PROBLEM_KINDS
    assert str(res).startswith(f"BROKEN at event {res.problem.seq} ({res.problem.kind}): ")
    return res.problem.seq, res.problem.kind


@pytest.mark.parametrize("k", POSITIONS)
def test_altered_body_is_detected(chain: list[Row], k: int) -> None:
    rows = list(chain)
    seq, prev, h, body, type_ = rows[k - 1]
    rows[k - 1] = (seq, prev, h, body.replace("bénin", "malin"), type_)
    assert problem(verify_chain(rows)) == (k, "hash")
    res = verify_chain(rows)
    assert res.n_events == k - 1 and res.head_seq == (k - 1 or None)
    assert res.head_hash == (chain[k - 2][2] if k > 1 else GENESIS)


def test_every_byte_of_a_body_is_covered(chain: list[Row]) -> None:
    k = 40
    seq, prev, h, body, type_ = chain[k - 1]
    raw = body.encode("utf-8")
    for i in range(len(raw)):
        for bit in (0x01, 0x80):
            mutated = bytearray(raw)
            mutated[i] ^= bit
            text = bytes(mutated).decode("utf-8", errors="surrogateescape")
            rows = [*chain[: k - 1], (seq, prev, h, text, type_), *chain[k:]]
            seq_found, kind = problem(verify_chain(rows))
            assert seq_found == k, (i, bit, kind)
            assert kind in ("hash", "body")


@pytest.mark.parametrize("k", POSITIONS)
def test_changed_stored_hash_is_detected(chain: list[Row], k: int) -> None:
    rows = list(chain)
    seq, prev, h, body, type_ = rows[k - 1]
    rows[k - 1] = (seq, prev, other_hash(h), body, type_)
    assert problem(verify_chain(rows)) == (k, "hash")


@pytest.mark.parametrize("k", POSITIONS)
def test_changed_prev_hash_is_detected(chain: list[Row], k: int) -> None:
    rows = list(chain)
    seq, prev, h, body, type_ = rows[k - 1]
    rows[k - 1] = (seq, other_hash(prev), h, body, type_)
    assert problem(verify_chain(rows)) == (k, "prev_hash")


@pytest.mark.parametrize("k", POSITIONS[:-1])
def test_deleted_event_is_a_gap(chain: list[Row], k: int) -> None:
    rows = chain[: k - 1] + chain[k:]
    res = verify_chain(rows)
    assert problem(res) == (k, "gap")
    assert res.problem is not None
    assert res.problem.message == f"event {k} is missing (the next stored event is {k + 1})"


def test_deleted_and_renumbered_event_breaks_prev_hash(chain: list[Row]) -> None:
    k = 1500
    rows = chain[: k - 1] + [(r[0] - 1, *r[1:]) for r in chain[k:]]
    assert problem(verify_chain(rows)) == (k, "prev_hash")


def test_deleted_newest_event_needs_a_checkpoint(chain: list[Row]) -> None:
    rows = chain[:-1]
    assert verify_chain(rows).ok  # a shorter chain is a valid chain ...
    res = verify_chain(rows, checkpoints={N: chain[-1][2]})  # ... unless its head is known
    assert problem(res) == (N, "gap")
    assert verify_chain(chain, checkpoints={N: chain[-1][2], 10: chain[9][2]}).ok
    res = verify_chain(chain[:100], checkpoints={N: chain[-1][2]})
    assert problem(res) == (101, "gap")
    assert res.problem is not None and f"events 101..{N} are missing" in res.problem.message


def test_rewritten_tail_is_caught_only_by_a_checkpoint(chain: list[Row]) -> None:
    k = 2000
    forged = [(*r[:3], r[3].replace("bénin", "malin"), r[4]) for r in chain[k - 1 :]]
    rows = chain[: k - 1] + relink(forged, start_hash=chain[k - 2][2])
    assert verify_chain(rows).ok
    res = verify_chain(rows, checkpoints={N: chain[-1][2]})
    assert problem(res) == (N, "hash")
    res = verify_chain(rows, checkpoints={k: chain[k - 1][2], N: chain[-1][2]})
    assert problem(res) == (k, "hash")
    # checkpoints before the verified segment are ignored
    seg = verify_chain(
        chain[k:], start_seq=k + 1, start_hash=chain[k - 1][2], checkpoints={5: "f" * 64}
    )
    assert seg.ok


@pytest.mark.parametrize("k", POSITIONS[:-1])
def test_inserted_event_is_detected(chain: list[Row], k: int) -> None:
    # a well-formed forged event, correctly linked to event k - 1, placed before event k
    prev = chain[k - 2][2] if k > 1 else GENESIS
    body = make_body(k, {"forged": True})
    forged = (k, prev, event_hash(prev, body), body, TYPES[k % len(TYPES)])
    rows = [*chain[: k - 1], forged, *chain[k - 1 :]]
    assert problem(verify_chain(rows)) == (k + 1, "order")
    # the same, with the following events renumbered to make room
    renumbered = [*chain[: k - 1], forged, *[(r[0] + 1, *r[1:]) for r in chain[k - 1 :]]]
    assert problem(verify_chain(renumbered)) == (k + 1, "prev_hash")
    # a copy of an event stored again right after it
    dup = [*chain[:k], chain[k - 1], *chain[k:]]
    res = verify_chain(dup)
    assert problem(res) == (k + 1, "order")
    assert res.problem is not None and res.problem.message == f"event {k} appears twice"


@pytest.mark.parametrize("k", POSITIONS[:-1])
def test_swapped_events_are_detected(chain: list[Row], k: int) -> None:
    a, b = chain[k - 1], chain[k]
    swapped = [*chain[: k - 1], b, a, *chain[k + 1 :]]  # stored out of order
    assert problem(verify_chain(swapped)) == (k, "gap")
    renumbered = [*chain[: k - 1], (k, *b[1:]), (k + 1, *a[1:]), *chain[k + 1 :]]
    assert problem(verify_chain(renumbered)) == (k, "prev_hash")
    bodies_only = [*chain[: k - 1], (*a[:3], b[3], a[4]), (*b[:3], a[3], b[4]), *chain[k + 1 :]]
    assert problem(verify_chain(bodies_only)) == (k, "body")  # body seq is k + 1


def test_changed_type_column_is_detected(chain: list[Row]) -> None:
    k = 700
    rows = list(chain)
    rows[k - 1] = (*rows[k - 1][:4], "user.deleted")
    res = verify_chain(rows)
    assert problem(res) == (k, "body")
    assert res.problem is not None and "type" in res.problem.message
    assert verify_chain([r[:4] for r in rows]).ok  # the 4-tuple form does not check type


def test_the_first_problem_is_named_not_a_later_one(chain: list[Row]) -> None:
    rows = list(chain)
    for k in (2500, 900, 1800):
        rows[k - 1] = (*rows[k - 1][:2], other_hash(rows[k - 1][2]), *rows[k - 1][3:])
    del rows[100]  # event 101 missing, before all of those
    res = verify_chain(rows)
    assert problem(res) == (101, "gap")
    assert res.n_events == 100 and res.head_seq == 100 and res.head_hash == chain[99][2]


@pytest.mark.parametrize(("seq", "kind"), [(1499, "order"), (1400, "order"), (1510, "gap")])
def test_wrong_seq_column(chain: list[Row], seq: int, kind: str) -> None:
    k = 1500
    rows = list(chain)
    rows[k - 1] = (seq, *rows[k - 1][1:])
    assert problem(verify_chain(rows)) == (k, kind)


@pytest.mark.parametrize("bad", ["7", None, 7.5, True])
def test_non_integer_seq_is_an_order_problem(bad: Any) -> None:
    rows = make_rows(10)
    rows[6] = (bad, *rows[6][1:])
    res = verify_chain(rows)
    assert problem(res) == (7, "order")
    assert res.problem is not None and "not an integer" in res.problem.message


# --------------------------------------------------------------------------------------
# bodies that are not canonical (with hashes that agree, so only the body check fires)

GOOD = '{"actor":null,"at":"t","payload":{"x":"é"},"project":null,"seq":2,"type":"t"}'


@pytest.mark.parametrize(
    "body",
    [
        GOOD.replace(",", ", "),  # whitespace
        GOOD + " ",
        GOOD + "{}",  # trailing data
        " " + GOOD,
        '{"at":"t","actor":null,"payload":{"x":"é"},"project":null,"seq":2,"type":"t"}',  # order
        GOOD.replace('"seq":2', '"seq":2,"seq":2'),  # duplicate key
        GOOD.replace('"seq":2', '"seq":1,"seq":2'),  # duplicate key hiding another seq
        GOOD.replace("é", "\\u00e9"),  # needless escape
        GOOD.replace('"x"', '"\\/x"'),
        GOOD.replace('"x":"é"', '"x":1.50'),  # non-canonical number
        GOOD.replace('"x":"é"', '"x":1E5'),
        GOOD.replace('"x":"é"', '"x":-0'),
        GOOD.replace('"x":"é"', '"x":NaN'),
        GOOD.replace('"x":"é"', '"x":Infinity'),
        GOOD.replace('"x":"é"', '"x":"\ud800"'),  # not valid Unicode
        GOOD.replace('"seq":2', '"seq":true'),
        GOOD.replace('"seq":2', '"seq":"2"'),
        GOOD.replace('"seq":2', '"seq":2.0'),
        GOOD.replace('"seq":2', '"seq":3'),
        GOOD.replace('"seq":2,', ""),  # no seq
        GOOD.replace('"type":"t"', '"type":"u"'),  # differs from the type column
        GOOD[:-1],  # not JSON
        "",
        "[2]",
        '"x"',
        "null",
        "[" * 100_000 + "]" * 100_000,
    ],
)
@pytest.mark.parametrize("codec", ["c-accelerated", "public-json-api"])
def test_non_canonical_body_is_a_body_problem(
    body: str, codec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if codec == "public-json-api":  # the fallback used where the C accelerators are missing
        encoder, decoder = chain_module._ENCODER, chain_module._DECODER
        monkeypatch.setattr(chain_module, "_encode_chunks", lambda obj, _: (encoder.encode(obj),))
        monkeypatch.setattr(chain_module, "_scan", decoder.raw_decode)
    else:
        assert type(chain_module._scan).__module__ == "_json"
    first = make_rows(1)
    rows = relink([first[0], (2, "", "", body, "t"), make_rows(1, start_seq=3)[0]])
    res = verify_chain(rows)
    assert problem(res) == (2, "body"), res
    assert res.n_events == 1 and res.head_hash == rows[0][2]
    assert body != GOOD
    assert verify_chain(relink([first[0], (2, "", "", GOOD, "t")])).ok


def test_body_of_the_wrong_python_type_is_a_body_problem() -> None:
    rows = make_rows(3)
    rows[1] = (*rows[1][:3], rows[1][3].encode(), rows[1][4])
    assert problem(verify_chain(rows)) == (2, "body")


# --------------------------------------------------------------------------------------
# property: any single mutation of a random chain is detected where it happened

MUTATIONS = (
    "body_char",
    "body_bit",
    "hash",
    "prev_hash",
    "seq",
    "type",
    "delete",
    "insert",
    "duplicate",
    "swap",
    "swap_renumbered",
)


@settings(max_examples=200, deadline=None)
@given(
    payload_list=st.lists(payloads, min_size=2, max_size=12),
    mutation=st.sampled_from(MUTATIONS),
    where=st.integers(min_value=0),
    detail=st.integers(min_value=0),
    char=st.characters(),
    four=st.booleans(),
)
def test_any_single_mutation_is_detected_at_its_position(
    payload_list: list[dict[str, Any]],
    mutation: str,
    where: int,
    detail: int,
    char: str,
    four: bool,
) -> None:
    n = len(payload_list)
    chain = make_rows(n, payloads=payload_list)
    rows: list[Row] = list(chain)
    k = where % n + 1  # the mutated position, 1-based
    if mutation in ("swap", "swap_renumbered") and k == n:
        k = n - 1
    seq, prev, h, body, type_ = rows[k - 1]
    if mutation == "body_char":
        i = detail % len(body)
        if body[i] == char:
            char = "x" if char != "x" else "y"
        rows[k - 1] = (seq, prev, h, body[:i] + char + body[i + 1 :], type_)
    elif mutation == "body_bit":
        raw = bytearray(body.encode())
        raw[detail % len(raw)] ^= 1 << (detail // len(raw) % 8)
        rows[k - 1] = (seq, prev, h, raw.decode(errors="surrogateescape"), type_)
    elif mutation == "hash":
        rows[k - 1] = (seq, prev, other_hash(h), body, type_)
    elif mutation == "prev_hash":
        rows[k - 1] = (seq, other_hash(prev), h, body, type_)
    elif mutation == "seq":
        rows[k - 1] = (
            seq + 1 + detail % 5 if detail % 2 else seq - 1 - detail % 5,
            *rows[k - 1][1:],
        )
    elif mutation == "type":
        rows[k - 1] = (seq, prev, h, body, type_ + "x")
    elif mutation == "delete":
        del rows[k - 1]
    elif mutation == "insert":  # a well-formed event linked to its predecessor
        forged_body = make_body(k, {"forged": detail})
        rows.insert(k - 1, (k, prev, event_hash(prev, forged_body), forged_body, type_))
    elif mutation == "duplicate":
        rows.insert(k, rows[k - 1])
    elif mutation == "swap":
        rows[k - 1], rows[k] = rows[k], rows[k - 1]
    elif mutation == "swap_renumbered":
        nxt = rows[k]
        rows[k - 1], rows[k] = (seq, *nxt[1:]), (nxt[0], *rows[k - 1][1:])
    if four and mutation != "type":  # 4-tuples carry no type column to check
        rows = [r[:4] for r in rows]
    # the newest event's hash is known from elsewhere, so dropping it is detected too
    res = verify_chain(rows, checkpoints={n: chain[-1][2]})
    assert not res.ok, (mutation, k)
    assert res.problem is not None
    assert res.problem.seq in (k, k + 1), (mutation, k, res)
    assert res.n_events == res.problem.seq - 1
    assert res.head_hash == (rows[res.n_events - 1][2] if res.n_events else GENESIS)


def test_verify_result_str_for_a_problem() -> None:
    res = VerifyResult(
        ok=False,
        n_events=16,
        head_seq=16,
        head_hash="a" * 64,
        problem=ChainProblem(seq=17, kind="hash", message="stored hash x differs"),
    )
    assert str(res) == "BROKEN at event 17 (hash): stored hash x differs"
    res = VerifyResult(False, 0, None, GENESIS, ChainProblem(None, "order", "m"))
    assert str(res) == "BROKEN (order): m"
