"""Canonical encoding and the SHA-256 hash chain of audit events.

Every event is stored as a canonical JSON *body* and a *hash* that covers the hash of
the event before it, so changing, deleting, inserting or reordering any stored event
breaks the chain at that event. Nothing here touches a database: the store persists
``(seq, prev_hash, hash, body)`` rows computed here and streams them back to
:func:`verify_chain`.

A chain of one hash covers only what is stored beside it: whoever can rewrite every
event after some point can also recompute their hashes, and dropping the newest events
leaves a shorter, valid chain. Hashes kept elsewhere (a published head, an earlier
verification) close both holes when passed as ``checkpoints``.

>>> body = event_body(seq=1, type="project.created", at="2024-01-01T00:00:00Z",
...                   actor="admin", project="triage", payload={"labels": ["no", "sí"]})
>>> body
'{"actor":"admin","at":"2024-01-01T00:00:00Z","payload":{"labels":["no","sí"]},"project":"triage","seq":1,"type":"project.created"}'
>>> h = event_hash(GENESIS, body)
>>> print(verify_chain([(1, GENESIS, h, body)]))
ok: 1 event, head 8c1505b56d45a0b1
>>> print(verify_chain([(1, GENESIS, h, body.replace("admin", "eve"))]))  # doctest: +ELLIPSIS
BROKEN at event 1 (hash): stored hash 8c1505b56d45a0b1 differs from the recomputed ...
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import json.scanner
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

__all__ = [
    "GENESIS",
    "PROBLEM_KINDS",
    "ChainProblem",
    "VerifyResult",
    "canonical_json",
    "event_body",
    "event_hash",
    "link",
    "verify_chain",
]

GENESIS: Final[str] = "0" * 64
"""The ``prev_hash`` of the first event of a chain."""

PROBLEM_KINDS: Final[tuple[str, ...]] = ("gap", "order", "prev_hash", "hash", "body")
"""Every :attr:`ChainProblem.kind` :func:`verify_chain` reports."""

_HASH_RE: Final = re.compile(r"[0-9a-f]{64}")

_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_DECODER: Final = json.JSONDecoder()


# ---------------------------------------------------------------------------------------
# canonical JSON


def canonical_json(obj: Any) -> str:
    """Encode ``obj`` as canonical JSON: sorted keys, no spaces, UTF-8 text as is.

    The result equals ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False, allow_nan=False)`` wherever that accepts ``obj``; the same value
    always gives the same text. orjson writes it when its text is the same (no float in
    exponent form or below 1e-4, no ``null``), several times faster than ``json``.

    Raises
    ------
    ValueError
        ``obj`` holds NaN or an infinity (the message names which, and where), a
        circular reference, or a string that is not valid Unicode (a lone surrogate).
    TypeError
        A dict key is not a ``str``, or a value is not JSON (list, tuple, dict, str,
        int, float, bool, None).

    Examples
    --------
    >>> canonical_json({"b": [1, 2.5, None], "a": "é"})
    '{"a":"é","b":[1,2.5,null]}'
    >>> canonical_json({"x": [0.0, float("-inf")]})
    Traceback (most recent call last):
    ...
    ValueError: -Infinity is not valid JSON (at $.x[1])
    """
    try:
        fast = orjson.dumps(obj, option=_ORJSON_STRICT)
    except TypeError:  # not JSON data, a key not a str, a lone surrogate, a huge int
        pass
    else:
        if b"0e" not in fast.translate(_DIGITS_AS_ZERO) and not (
            b"0.0000" in fast or b"null" in fast
        ):
            return fast.decode()
        try:  # every key is a str (orjson checked it); json.dumps refuses NaN itself
            return _ENCODER.encode(obj)
        except ValueError:
            pass  # named below
    try:
        text = _ENCODER.encode(obj)
    except (ValueError, TypeError) as exc:
        found = _safe_locate(obj)
        if found is not None:
            raise found[0](found[1]) from None
        raise type(exc)(f"cannot encode as JSON: {exc}") from None
    except RecursionError:
        raise ValueError("cannot encode as JSON: nested too deeply") from None
    if not _keys_are_str(obj):
        found = _safe_locate(obj)
        raise TypeError(found[1] if found is not None else "dict keys must be str")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"cannot encode as JSON: a string holds a lone surrogate {exc.object[exc.start]!r}"
            ) from None
    return text


_ORJSON_STRICT: Final = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
"""orjson refusing what ``json.dumps`` refuses (dataclasses, datetimes) or may write
differently (subclasses of str, int, dict, list: an ``IntEnum``, a ``StrEnum``)."""

_DIGITS_AS_ZERO: Final = bytes.maketrans(b"123456789", b"000000000")
"""With every digit read as 0, ``0e`` marks a float in exponent form; ``0.0000`` (as written)
one below 1e-4, which ``json.dumps`` writes with an exponent, orjson not; orjson also writes
NaN and infinities as ``null``. Where any of these appear, ``json.dumps`` writes the text (strings
that merely look like them only cost that slower path)."""


def _keys_are_str(obj: Any) -> bool:
    """Whether every dict key inside ``obj`` is a ``str`` (fast path, no messages)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                return False
            if isinstance(value, dict | list | tuple) and not _keys_are_str(value):
                return False
    elif isinstance(obj, list | tuple):
        for value in obj:
            if isinstance(value, dict | list | tuple) and not _keys_are_str(value):
                return False
    return True


def _safe_locate(obj: Any) -> tuple[type[Exception], str] | None:
    try:
        return _locate(obj, "$")
    except RecursionError:  # circular or very deep
        return None


def _locate(obj: Any, path: str) -> tuple[type[Exception], str] | None:
    """The first non-finite float or non-``str`` key in ``obj``, as (error, message)."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return ValueError, f"NaN is not valid JSON (at {path})"
        if math.isinf(obj):
            sign = "-" if obj < 0 else ""
            return ValueError, f"{sign}Infinity is not valid JSON (at {path})"
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                return TypeError, f"dict keys must be str, got {key!r} (at {path})"
            found = _locate(value, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            found = _locate(value, f"{path}[{i}]")
            if found is not None:
                return found
    return None


_Chunks = Callable[[Any, int], Sequence[str]]
_Scan = Callable[[str, int], tuple[Any, int]]


def _make_fast_codec() -> tuple[_Chunks, _Scan]:
    """The canonical encoder (as chunks) and a JSON scanner for :func:`verify_chain`.

    CPython's C accelerators are called directly (no circular-reference bookkeeping,
    which parsed JSON never needs), about a third faster than ``json.dumps`` /
    ``json.loads``. If they are missing or behave differently, the public API is used.
    """
    slow: tuple[_Chunks, _Scan] = (
        lambda obj, _level: (_ENCODER.encode(obj),),
        _DECODER.raw_decode,
    )
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    make_scanner = getattr(json.scanner, "c_make_scanner", None)
    if make_encoder is None or make_scanner is None:  # pragma: no cover - not CPython
        return slow
    try:
        encode = make_encoder(
            None,  # markers: no circular check
            _ENCODER.default,
            json.encoder.encode_basestring,  # ensure_ascii=False
            None,  # indent
            ":",
            ",",
            True,  # sort_keys
            False,  # skipkeys
            False,  # allow_nan
        )
        scan = make_scanner(_DECODER)
        sample = '{"a":[1,-2.5e-07,true,false,null,"\\"é\\u0000"],"b":{"":{}},"c":1e+300}'
        obj, end = scan(sample, 0)
        if (obj, end) != _DECODER.raw_decode(sample, 0):  # pragma: no cover
            return slow
        if "".join(encode(obj, 0)) != _ENCODER.encode(obj) or _ENCODER.encode(obj) != sample:
            return slow  # pragma: no cover
        try:
            encode(float("nan"), 0)
        except ValueError:
            pass
        else:  # pragma: no cover - only if the accelerator ignored allow_nan
            return slow
    except Exception:  # pragma: no cover - an accelerator with another signature
        return slow
    return encode, scan


_encode_chunks, _scan = _make_fast_codec()


# ---------------------------------------------------------------------------------------
# events and hashes


def event_body(
    *,
    seq: int,
    type: str,
    at: str,
    actor: str | None,
    project: str | None,
    payload: dict[str, Any],
) -> str:
    """The canonical JSON body of one event.

    Parameters
    ----------
    seq : int
        Position in the chain (1, 2, ...).
    type : str
        What happened, e.g. ``"decision.made"``; the store keeps it beside the body too.
    at : str
        When, as an ISO-8601 UTC timestamp made by the caller.
    actor, project : str or None
        Who did it, and in which project.
    payload : dict
        The details; any JSON object with ``str`` keys and finite numbers.

    Examples
    --------
    >>> event_body(seq=7, type="user.created", at="2024-01-01T00:00:00Z", actor=None,
    ...            project=None, payload={"name": "ada", "role": "reviewer"})
    '{"actor":null,"at":"2024-01-01T00:00:00Z","payload":{"name":"ada","role":"reviewer"},"project":null,"seq":7,"type":"user.created"}'
    """
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise TypeError(f"seq must be an int, got {seq!r}")
    return canonical_json(
        {
            "seq": seq,
            "type": type,
            "at": at,
            "actor": actor,
            "project": project,
            "payload": payload,
        }
    )


def _check_hash_arg(value: object, name: str) -> None:
    if not isinstance(value, str) or _HASH_RE.fullmatch(value) is None:
        raise ValueError(f"{name} must be 64 lowercase hex digits, got {value!r}")


def event_hash(prev_hash: str, body: str) -> str:
    """SHA-256 of ``prev_hash``, a newline and ``body`` (UTF-8), as 64 hex digits.

    Examples
    --------
    >>> event_hash(GENESIS, "{}")[:16]
    '5649d09ed68c1715'
    """
    _check_hash_arg(prev_hash, "prev_hash")
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + body.encode("utf-8")).hexdigest()


def link(prev_hash: str, bodies: Sequence[str]) -> list[str]:
    """Hashes of consecutive events whose bodies follow the event hashed ``prev_hash``.

    ``link(h, [b1, b2])`` is ``[h1, h2]`` with ``h1 = event_hash(h, b1)`` and
    ``h2 = event_hash(h1, b2)``; each ``prev_hash`` is the hash before it in the list.

    Examples
    --------
    >>> a, b = link(GENESIS, ["{}", "[]"])
    >>> a == event_hash(GENESIS, "{}") and b == event_hash(a, "[]")
    True
    """
    _check_hash_arg(prev_hash, "prev_hash")
    sha256 = hashlib.sha256
    out: list[str] = []
    append = out.append
    h = prev_hash
    for body in bodies:
        h = sha256(f"{h}\n{body}".encode()).hexdigest()
        append(h)
    return out


# ---------------------------------------------------------------------------------------
# verification


@dataclass(frozen=True)
class ChainProblem:
    """The first place where a chain is broken.

    Attributes
    ----------
    seq : int or None
        The sequence number at which the chain breaks: the row's position in the
        chain (for ``gap`` and ``order``, the number expected there). ``None`` only
        for a problem not tied to one event (``verify_chain`` always names one).
    kind : str
        ``"gap"`` a sequence number is missing; ``"order"`` a number repeats or goes
        back; ``"prev_hash"`` the row's ``prev_hash`` is not the previous event's hash;
        ``"hash"`` the stored hash is not the recomputed one (or not the checkpointed
        one); ``"body"`` the body is not canonical JSON of an object, or its ``seq`` or
        ``type`` disagrees with the row.
    message : str
        One human-readable sentence.
    """

    seq: int | None
    kind: str
    message: str


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify_chain` found.

    Attributes
    ----------
    ok : bool
        No problem found.
    n_events : int
        Events verified (before the problem, if any).
    head_seq : int or None
        Sequence number of the last verified event; ``None`` if none was.
    head_hash : str
        Hash of the last verified event (``start_hash`` if none was).
    problem : ChainProblem or None
        The first problem, or ``None`` when ``ok``.
    """

    ok: bool
    n_events: int
    head_seq: int | None
    head_hash: str
    problem: ChainProblem | None

    def __str__(self) -> str:
        if self.problem is None:
            noun = "event" if self.n_events == 1 else "events"
            return f"ok: {self.n_events} {noun}, head {self.head_hash[:16]}"
        p = self.problem
        where = f" at event {p.seq}" if p.seq is not None else ""
        return f"BROKEN{where} ({p.kind}): {p.message}"


def verify_chain(
    rows: Iterable[Sequence[Any]],
    *,
    start_seq: int = 1,
    start_hash: str = GENESIS,
    checkpoints: Mapping[int, str] | None = None,
) -> VerifyResult:
    """Check a stored chain, streaming, and name the first problem.

    Parameters
    ----------
    rows : iterable of tuples
        ``(seq, prev_hash, hash, body)`` or ``(seq, prev_hash, hash, body, type)`` in
        stored order (``ORDER BY seq``), as tuples or any sequence (database rows).
        Consumed once, in constant memory.
    start_seq, start_hash : int, str
        The first expected ``seq`` and the hash of the event before it; pass the head of
        an earlier verification to check only what was appended since.
    checkpoints : mapping of int to str, optional
        Hashes known from elsewhere (a published head, an earlier verification). An event
        whose ``seq`` is listed must have that hash (else a ``"hash"`` problem), and the
        chain must reach the largest listed ``seq`` (else a ``"gap"`` problem): this
        catches a rewritten chain and dropped newest events. Entries before
        ``start_seq`` are ignored.

    Returns
    -------
    VerifyResult
        ``ok`` and the head, or the first problem. Per row the checks are, in order:
        ``seq`` is the next number, ``prev_hash`` is the previous hash, the body is
        canonical JSON of an object whose ``seq`` (and ``type``, in 5-tuples) match the
        row, and the stored hash is ``event_hash(prev_hash, body)``.

    Examples
    --------
    >>> bodies = [canonical_json({"seq": i, "type": "t"}) for i in (1, 2, 3)]
    >>> hashes = link(GENESIS, bodies)
    >>> rows = list(zip((1, 2, 3), [GENESIS, *hashes[:2]], hashes, bodies))
    >>> print(verify_chain(rows[:1] + rows[2:]))
    BROKEN at event 2 (gap): event 2 is missing (the next stored event is 3)
    """
    _check_hash_arg(start_hash, "start_hash")
    if isinstance(start_seq, bool) or not isinstance(start_seq, int):
        raise TypeError(f"start_seq must be an int, got {start_seq!r}")
    cps: dict[int, str] | None = None
    if checkpoints:
        cps = {}
        for cp_seq, cp_hash in checkpoints.items():
            _check_hash_arg(cp_hash, f"checkpoints[{cp_seq!r}]")
            if cp_seq >= start_seq:
                cps[cp_seq] = cp_hash
        if not cps:
            cps = None

    encode = _encode_chunks
    scan = _scan
    join = "".join
    sha256 = hashlib.sha256
    expected = start_seq
    prev = start_hash
    n = 0

    for row in rows:
        if len(row) == 5:
            seq, prev_hash, stored, body, type_ = row
        else:
            seq, prev_hash, stored, body = row
            type_ = None
        if seq != expected:
            return _fail(n, expected, prev, *_seq_problem(seq, expected))
        if prev_hash != prev:
            return _fail(
                n,
                expected,
                prev,
                "prev_hash",
                f"prev_hash {_short(prev_hash)} is not the hash of "
                + (f"event {expected - 1}" if n else "start_hash")
                + f" ({prev[:16]})",
            )
        try:
            obj = scan(body, 0)[0]
            if join(encode(obj, 0)) != body:
                return _fail(n, expected, prev, *_body_problem(body))
            digest = sha256(f"{prev_hash}\n{body}".encode()).hexdigest()
        except (ValueError, TypeError, StopIteration, RecursionError):
            return _fail(n, expected, prev, *_body_problem(body))
        if obj.__class__ is not dict:
            return _fail(
                n, expected, prev, "body", f"body is JSON {_json_kind(obj)}, not an object"
            )
        body_seq = obj.get("seq")
        if body_seq.__class__ is not int or body_seq != seq:
            return _fail(n, expected, prev, "body", _field_message(obj, "seq", seq))
        if type_ is not None and obj.get("type") != type_:
            return _fail(n, expected, prev, "body", _field_message(obj, "type", type_))
        if digest != stored:
            return _fail(
                n,
                expected,
                prev,
                "hash",
                f"stored hash {_short(stored)} differs from the recomputed {digest[:16]}",
            )
        if cps is not None and seq in cps and cps[seq] != digest:
            return _fail(
                n,
                expected,
                prev,
                "hash",
                f"hash {digest[:16]} differs from the checkpoint {cps[seq][:16]}"
                " (the chain was rewritten at or before this event)",
            )
        prev = digest
        expected += 1
        n += 1

    if cps is not None:
        last = max(cps)
        if last >= expected:
            return _fail(
                n,
                expected,
                prev,
                "gap",
                f"the chain ends before event {expected}, but a checkpoint names event "
                f"{last} ({cps[last][:16]}): events {expected}..{last} are missing",
            )
    return VerifyResult(
        ok=True,
        n_events=n,
        head_seq=expected - 1 if n else None,
        head_hash=prev,
        problem=None,
    )


def _fail(n: int, expected: int, prev: str, kind: str, message: str) -> VerifyResult:
    """The result for a problem at event ``expected`` after ``n`` verified events."""
    return VerifyResult(
        ok=False,
        n_events=n,
        head_seq=expected - 1 if n else None,
        head_hash=prev,
        problem=ChainProblem(seq=expected, kind=kind, message=message),
    )


def _short(value: object) -> str:
    return value[:16] if isinstance(value, str) else repr(value)


def _field_message(obj: dict[str, Any], field: str, row_value: object) -> str:
    if field not in obj:
        return f"body has no {field!r} (the row says {row_value!r})"
    return f"body says {field} {obj[field]!r}, the row says {row_value!r}"


def _json_kind(obj: object) -> str:
    if isinstance(obj, list):
        return "an array"
    if isinstance(obj, str):
        return "a string"
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "a boolean"
    return "a number"


def _seq_problem(seq: object, expected: int) -> tuple[str, str]:
    """(kind, message) for a row whose seq is not ``expected`` (slow path)."""
    try:
        if isinstance(seq, bool):
            raise TypeError
        number = operator.index(seq)  # type: ignore[arg-type]
    except TypeError:
        return "order", f"sequence number {seq!r} is not an integer"
    if number > expected:
        missing = (
            f"event {expected} is"
            if number == expected + 1
            else f"events {expected}..{number - 1} are"
        )
        return "gap", f"{missing} missing (the next stored event is {number})"
    if number == expected - 1:
        return "order", f"event {number} appears twice"
    return "order", f"event {number} comes after event {expected - 1}"


def _body_problem(body: object) -> tuple[str, str]:
    """(kind, message) for a body that is not canonical JSON (slow path)."""
    if not isinstance(body, str):
        return "body", f"body is {type(body).__name__}, not str"
    try:
        obj = _DECODER.decode(body)
    except ValueError as exc:
        return "body", f"body is not valid JSON: {exc}"
    except RecursionError:
        return "body", "body is nested too deeply"
    try:
        canon = canonical_json(obj)
    except (ValueError, TypeError) as exc:
        return "body", f"body is not canonical JSON: {exc}"
    if canon != body:
        i = next(
            (i for i, (a, b) in enumerate(zip(canon, body, strict=False)) if a != b),
            min(len(canon), len(body)),
        )
        return "body", f"body is not canonical JSON (first difference at character {i})"
    try:
        body.encode("utf-8")
    except UnicodeEncodeError as exc:
        return "body", f"body is not valid Unicode (lone surrogate at character {exc.start})"
    return "body", "body cannot be checked"  # pragma: no cover - defensive
