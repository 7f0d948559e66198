"""The tamper-evident audit trail: canonical JSON, SHA-256 hash chain, verification.

Pure standard library; the store persists what this computes. See
:mod:`loopwise.audit.chain`.
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
