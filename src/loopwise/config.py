"""Settings in one place, read from ``LOOPWISE_*`` environment variables.

Nothing is built at import time: ``Settings()`` reads the environment when called.

>>> Settings(database_url="sqlite:///x.db").max_batch
10000
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///loopwise.db"


class Settings(BaseSettings):
    """Service settings; each field is also ``LOOPWISE_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="LOOPWISE_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy URL: ``sqlite:///file.db`` or ``postgresql+psycopg://user@host/db``."""
    max_batch: int = 10_000
    """Most items one ``POST /items`` may carry (413 beyond)."""
    sqlite_synchronous: str = "FULL"
    """SQLite ``PRAGMA synchronous``: FULL survives power loss, NORMAL only a crash."""
    pool_size: int = 10
    """Connections per server process (PostgreSQL)."""
    run_jobs: bool = True
    """Run training jobs in this process's background threads."""
    audit_key: str | None = None
    """Path to the Ed25519 private key (PEM) that signs audit checkpoints. Unset: SQLite
    makes one next to the database (``<db>.audit-key.pem``, mode 0600); PostgreSQL signs
    nothing until it is set."""
    checkpoint_every: int = 1000
    """Events between two signed checkpoints of the audit trail (raise it freely; lowering
    it makes older, longer gaps fail ``audit verify``)."""
