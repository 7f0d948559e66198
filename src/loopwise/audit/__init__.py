"""The tamper-evident audit trail: canonical JSON, SHA-256 hash chain, verification;
signed Merkle checkpoints with inclusion and consistency proofs; completeness rules.

Pure (standard library, and ``cryptography`` for Ed25519); the store persists what this
computes. See :mod:`loopwise.audit.chain`, :mod:`~loopwise.audit.merkle`,
:mod:`~loopwise.audit.checkpoint`, :mod:`~loopwise.audit.completeness` and
:mod:`~loopwise.audit.trail`.
"""

from __future__ import annotations

from loopwise.audit.chain import (
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
from loopwise.audit.checkpoint import (
    Checkpoint,
    checkpoint_message,
    event_leaf,
    generate_private_key,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_id,
    public_key_pem,
    sign_checkpoint,
    verify_checkpoint,
)
from loopwise.audit.completeness import (
    COMPLETENESS_KINDS,
    CompletenessChecker,
    CompletenessProblem,
    CompletenessResult,
    check_completeness,
)
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
from loopwise.audit.trail import TRAIL_PROBLEM_KINDS, TrailProblem, TrailResult, verify_trail

__all__ = [
    "COMPLETENESS_KINDS",
    "EMPTY_ROOT",
    "GENESIS",
    "PROBLEM_KINDS",
    "TRAIL_PROBLEM_KINDS",
    "ChainProblem",
    "Checkpoint",
    "CompletenessChecker",
    "CompletenessProblem",
    "CompletenessResult",
    "MerkleAccumulator",
    "TrailProblem",
    "TrailResult",
    "VerifyResult",
    "canonical_json",
    "check_completeness",
    "checkpoint_message",
    "consistency_proof",
    "event_body",
    "event_hash",
    "event_leaf",
    "generate_private_key",
    "inclusion_proof",
    "leaf_hash",
    "link",
    "load_private_key",
    "load_public_key",
    "merkle_root",
    "node_hash",
    "private_key_pem",
    "public_key_id",
    "public_key_pem",
    "sign_checkpoint",
    "verify_chain",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_trail",
]
