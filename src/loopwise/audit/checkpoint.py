"""Signed checkpoints of the audit chain: a Merkle root over every event so far.

Every so often the store writes a :class:`Checkpoint`: the number of events it covers
(events ``1..tree_size``), the Merkle root over their hashes, the hash of the last one,
a time, and an Ed25519 signature by a key the server keeps. Whoever holds the public key
can then tell that the events up to a checkpoint were neither rewritten (the hash chain
alone cannot: a rewriter recomputes every later hash) nor dropped, prove one event's
presence with an inclusion proof, and check that a later checkpoint only appended to an
earlier one with a consistency proof (:mod:`loopwise.audit.merkle`).

The leaf of event ``seq`` is ``SHA-256(0x00 || bytes of its hash)`` (:func:`event_leaf`);
the event hash already covers its body and everything before it.

>>> from loopwise.audit.chain import GENESIS, link
>>> from loopwise.audit.merkle import MerkleAccumulator
>>> hashes = link(GENESIS, ['{"seq":1}', '{"seq":2}', '{"seq":3}'])
>>> acc = MerkleAccumulator()
>>> acc.extend(event_leaf(h) for h in hashes)
>>> key = load_private_key(bytes(range(32)))
>>> cp = sign_checkpoint(Checkpoint(seq=1, tree_size=acc.size, root=acc.root().hex(),
...                                 head_hash=hashes[-1], at="2024-01-01T00:00:00Z"), key)
>>> verify_checkpoint(cp, key.public_key()), cp.key_id == public_key_id(key)
(True, True)
>>> verify_checkpoint(Checkpoint.from_dict({**cp.to_dict(), "tree_size": 2}), key.public_key())
False
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from loopwise.audit.chain import canonical_json
from loopwise.audit.merkle import leaf_hash

__all__ = [
    "Checkpoint",
    "checkpoint_message",
    "event_leaf",
    "generate_private_key",
    "load_private_key",
    "load_public_key",
    "private_key_pem",
    "public_key_id",
    "public_key_pem",
    "sign_checkpoint",
    "verify_checkpoint",
]

_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_HEX128: Final = re.compile(r"[0-9a-f]{128}")
_DOMAIN: Final = b"loopwise checkpoint v1\n"
_FIELDS: Final = ("seq", "tree_size", "root", "head_hash", "at", "signature", "key_id")


def event_leaf(event_hash: str) -> bytes:
    """The Merkle leaf hash of an event: ``SHA-256(0x00 || bytes.fromhex(event_hash))``.

    >>> event_leaf("00" * 32).hex()[:16]
    '7f9c9e31ac8256ca'
    """
    return leaf_hash(bytes.fromhex(event_hash))


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement about the chain: its first ``tree_size`` events and their root.

    Attributes
    ----------
    seq : int
        The checkpoint's own number: 1, 2, ... in the order written.
    tree_size : int
        Events covered, ``1..tree_size`` (so also the ``seq`` of the last one), >= 1.
    root : str
        Merkle root over :func:`event_leaf` of their hashes, 64 hex digits.
    head_hash : str
        Hash of event ``tree_size``, 64 hex digits.
    at : str
        When it was written, ISO-8601 UTC (made by the caller).
    signature : str
        Ed25519 signature of :func:`checkpoint_message`, 128 hex digits; ``""`` unsigned.
    key_id : str
        :func:`public_key_id` of the signing key; ``""`` unsigned.

    Raises
    ------
    TypeError, ValueError
        A field of the wrong type or form (the message names it).
    """

    seq: int
    tree_size: int
    root: str
    head_hash: str
    at: str
    signature: str = ""
    key_id: str = ""

    def __post_init__(self) -> None:
        for name in ("seq", "tree_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"checkpoint {name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"checkpoint {name} must be >= 1, got {value}")
        for name in ("root", "head_hash"):
            _check_hex(getattr(self, name), name, _HEX64, "64")
        if not isinstance(self.at, str):
            raise TypeError(f"checkpoint at must be a str, got {self.at!r}")
        if self.signature != "":
            _check_hex(self.signature, "signature", _HEX128, "128")
        if self.key_id != "":
            _check_hex(self.key_id, "key_id", _HEX64, "64")

    @property
    def signed(self) -> bool:
        """Whether it carries a signature (not whether the signature is valid)."""
        return bool(self.signature)

    def to_dict(self) -> dict[str, Any]:
        """Its fields as a JSON-ready dict (for export)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        """The checkpoint :meth:`to_dict` wrote; unknown or missing keys raise ``ValueError``."""
        extra = sorted(set(data) - set(_FIELDS))
        missing = [f for f in _FIELDS[:5] if f not in data]
        if extra or missing:
            raise ValueError(f"checkpoint: unknown keys {extra}, missing keys {missing}")
        return cls(**data)


def _check_hex(value: object, name: str, pattern: re.Pattern[str], digits: str) -> None:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise ValueError(f"checkpoint {name} must be {digits} lowercase hex digits, got {value!r}")


def checkpoint_message(cp: Checkpoint) -> bytes:
    """The bytes signed: a version line, then canonical JSON of every field but the
    signature (``key_id`` included, so a signature names its key).

    >>> cp = Checkpoint(seq=1, tree_size=2, root="a" * 64, head_hash="b" * 64, at="t")
    >>> checkpoint_message(cp)[:50]
    b'loopwise checkpoint v1\\n{"at":"t","head_hash":"bbbb'
    """
    fields = {
        "seq": cp.seq,
        "tree_size": cp.tree_size,
        "root": cp.root,
        "head_hash": cp.head_hash,
        "at": cp.at,
        "key_id": cp.key_id,
    }
    return _DOMAIN + canonical_json(fields).encode("utf-8")


def sign_checkpoint(cp: Checkpoint, private_key: Ed25519PrivateKey) -> Checkpoint:
    """A copy of ``cp`` signed with ``private_key`` (its ``key_id`` and ``signature`` set)."""
    if not isinstance(private_key, Ed25519PrivateKey):
        raise TypeError(f"private_key must be an Ed25519PrivateKey, got {type(private_key)}")
    unsigned = replace(cp, signature="", key_id=public_key_id(private_key))
    signature = private_key.sign(checkpoint_message(unsigned)).hex()
    return replace(unsigned, signature=signature)


def verify_checkpoint(cp: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    """Whether ``cp`` is signed by ``public_key`` and unchanged since.

    ``False`` when it is unsigned, names another key, or any field changed.
    """
    if not isinstance(public_key, Ed25519PublicKey):
        raise TypeError(f"public_key must be an Ed25519PublicKey, got {type(public_key)}")
    if not cp.signature or cp.key_id != public_key_id(public_key):
        return False
    try:
        public_key.verify(bytes.fromhex(cp.signature), checkpoint_message(cp))
    except InvalidSignature:
        return False
    return True


# ---------------------------------------------------------------------------------------
# keys


def generate_private_key() -> Ed25519PrivateKey:
    """A new Ed25519 signing key (from the operating system's random source)."""
    return Ed25519PrivateKey.generate()


def _raw_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise TypeError(f"expected an Ed25519 key, got {type(key)}")
    return key.public_bytes_raw()


def public_key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, 64 hex digits (of a private key: its public's).

    >>> public_key_id(load_private_key(bytes(32)))[:16]
    '139e3940e64b5491'
    """
    return hashlib.sha256(_raw_public(key)).hexdigest()


def load_private_key(data: bytes | str, password: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key from its raw 32 bytes or a PKCS#8 PEM (text or bytes).

    Raises
    ------
    ValueError
        Not a PEM of an Ed25519 private key, or a wrong ``password``.
    """
    if isinstance(data, bytes) and len(data) == 32:
        return Ed25519PrivateKey.from_private_bytes(data)
    pem = data.encode("ascii") if isinstance(data, str) else data
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an Ed25519 private key (raw 32 bytes or PEM): {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"the PEM holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_key(data: bytes | str) -> Ed25519PublicKey:
    """An Ed25519 public key from its raw 32 bytes or a SubjectPublicKeyInfo PEM.

    Raises
    ------
    ValueError
        Not a PEM of an Ed25519 public key.
    """
    if isinstance(data, bytes) and len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    pem = data.encode("ascii") if isinstance(data, str) else data
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an Ed25519 public key (raw 32 bytes or PEM): {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"the PEM holds a {type(key).__name__}, not an Ed25519 public key")
    return key


def private_key_pem(key: Ed25519PrivateKey, password: bytes | None = None) -> bytes:
    """``key`` as PKCS#8 PEM, encrypted with ``password`` if given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if password is None
        else serialization.BestAvailableEncryption(password)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The public key (of a private key: its public's) as SubjectPublicKeyInfo PEM."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
