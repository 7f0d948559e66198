"""The tables (SQLAlchemy Core). Migrations in ``store/migrations`` create them.

Every timestamp is UTC. Labels are stored as the index into the project's label list.
``events`` is append-only and hash-chained; ``chain_head`` holds its last link and is the
lock that orders concurrent writers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import Column as C


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Id = BigInteger().with_variant(Integer(), "sqlite")
"""Integer primary keys: 64-bit on PostgreSQL, SQLite's rowid alias on SQLite."""

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("name", String(100), nullable=False, unique=True),
    C("role", String(20), nullable=False),
    C("token_hash", String(64), nullable=False, unique=True),
    C("active", Boolean, nullable=False, default=True),
    C("created_at", UTCDateTime, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("name", String(63), nullable=False, unique=True),
    C("labels", JSON, nullable=False),
    C("input_kind", String(20), nullable=False),
    C("sensitive", JSON, nullable=False),
    C("policy_version", Integer, nullable=False),
    C("champion_id", Id, nullable=True),
    C("created_at", UTCDateTime, nullable=False),
)

policy_versions = Table(
    "policy_versions",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("project_id", Id, ForeignKey("projects.id"), nullable=False),
    C("version", Integer, nullable=False),
    C("policy", JSON, nullable=False),
    C("gate_state", JSON, nullable=True),
    C("created_by", String(100), nullable=True),
    C("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "version", name="uq_policy_versions_project_version"),
)

model_versions = Table(
    "model_versions",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("project_id", Id, ForeignKey("projects.id"), nullable=False),
    C("version", Integer, nullable=False),
    C("status", String(20), nullable=False),
    C("kind", String(20), nullable=False),
    C("estimator", String(200), nullable=False),
    C("artifact", LargeBinary, nullable=False),
    C("artifact_sha256", String(64), nullable=False),
    C("n_train", Integer, nullable=False),
    C("metrics", JSON, nullable=False),
    C("created_at", UTCDateTime, nullable=False),
    # The novelty detector fitted on the model's training inputs (numpy .npz, no pickle).
    C("novelty", LargeBinary, nullable=True),
    UniqueConstraint("project_id", "version", name="uq_model_versions_project_version"),
)

items = Table(
    "items",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("project_id", Id, ForeignKey("projects.id"), nullable=False),
    C("external_id", String(200), nullable=True),
    C("data", JSON, nullable=False),
    C("meta", JSON, nullable=False),
    C("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "external_id", name="uq_items_project_external"),
)

predictions = Table(
    "predictions",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("item_id", Id, ForeignKey("items.id"), nullable=False),
    C("model_version_id", Id, ForeignKey("model_versions.id"), nullable=True),
    C("proba", JSON, nullable=False),
    C("label", Integer, nullable=False),
    C("confidence", Float, nullable=False),
    C("created_at", UTCDateTime, nullable=False),
    # Distance to the model's training inputs (None: no novelty check ran).
    C("novelty", Float, nullable=True),
    # An item's predictions, and its latest one without a scan (ORDER BY id DESC LIMIT 1).
    Index("ix_predictions_item_latest", "item_id", "id"),
)

routes = Table(
    "routes",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("item_id", Id, ForeignKey("items.id"), nullable=False, index=True),
    # The item's project, copied for the queue's and metrics' indexes; the item's own
    # foreign key guards it (no second check per row: ~15% of submit on PostgreSQL).
    C("project_id", Id, nullable=False),
    C("route", String(10), nullable=False),
    C("reason", String(80), nullable=False),
    C("policy_version", Integer, nullable=True),
    C("inclusion_prob", Float, nullable=False),
    C("initial", Boolean, nullable=False),
    C("created_at", UTCDateTime, nullable=False),
    Index("ix_routes_project_initial", "project_id", "initial", "route"),
)

tasks = Table(
    "tasks",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    # The item's project, copied for the queue's and metrics' indexes; the item's own
    # foreign key guards it (no second check per row: ~15% of submit on PostgreSQL).
    C("project_id", Id, nullable=False),
    C("item_id", Id, ForeignKey("items.id"), nullable=False, index=True),
    C("kind", String(10), nullable=False),
    C("reason", String(80), nullable=False),
    C("state", String(10), nullable=False),
    C("priority", Integer, nullable=False),
    C("assignee_id", Id, ForeignKey("users.id"), nullable=True),
    C("lease_expires_at", UTCDateTime, nullable=True),
    C("created_at", UTCDateTime, nullable=False),
    C("claimed_at", UTCDateTime, nullable=True),
    C("done_at", UTCDateTime, nullable=True),
    Index("ix_tasks_queue", "project_id", "state", "priority", "id"),
    # A reviewer's claim: open tasks of one kind in queue order, no sort.
    Index("ix_tasks_claim", "project_id", "state", "kind", "priority", "id"),
    # Claimed tasks whose lease has run out.
    Index("ix_tasks_lease", "project_id", "state", "lease_expires_at"),
    # Work finished in the last hour (the review budget).
    Index("ix_tasks_done", "project_id", "done_at"),
)

reviews = Table(
    "reviews",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("task_id", Id, ForeignKey("tasks.id"), nullable=False, unique=True),
    C("item_id", Id, ForeignKey("items.id"), nullable=False, index=True),
    C("user_id", Id, ForeignKey("users.id"), nullable=False),
    C("label", Integer, nullable=False),
    C("seconds", Float, nullable=True),
    C("comment", Text, nullable=True),
    C("created_at", UTCDateTime, nullable=False),
)

decisions = Table(
    "decisions",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("item_id", Id, ForeignKey("items.id"), nullable=False),
    # The item's project, copied for the queue's and metrics' indexes; the item's own
    # foreign key guards it (no second check per row: ~15% of submit on PostgreSQL).
    C("project_id", Id, nullable=False),
    C("label", Integer, nullable=False),
    C("source", String(20), nullable=False),
    C("user_id", Id, ForeignKey("users.id"), nullable=True),
    C("reason", Text, nullable=True),
    C("current", Boolean, nullable=False),
    C("created_at", UTCDateTime, nullable=False),
    Index("ix_decisions_item_current", "item_id", "current"),
    Index("ix_decisions_project_current", "project_id", "current"),
)

jobs = Table(
    "jobs",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("project_id", Id, ForeignKey("projects.id"), nullable=False),
    C("kind", String(20), nullable=False),
    C("state", String(10), nullable=False),
    C("requested_by", String(100), nullable=True),
    C("result", JSON, nullable=True),
    C("error", Text, nullable=True),
    C("created_at", UTCDateTime, nullable=False),
    C("started_at", UTCDateTime, nullable=True),
    C("finished_at", UTCDateTime, nullable=True),
    # The project's human labels when the job was queued (issue #4: ``retrain_every``).
    C("human_labels", Integer, nullable=True),
    Index("ix_jobs_project_state", "project_id", "state"),
)

events = Table(
    "events",
    metadata,
    C("seq", Id, primary_key=True, autoincrement=False),
    C("type", String(40), nullable=False),
    C("project", String(63), nullable=True, index=True),
    C("actor", String(100), nullable=True),
    C("at", UTCDateTime, nullable=False),
    C("body", Text, nullable=False),
    C("prev_hash", String(64), nullable=False),
    C("hash", String(64), nullable=False),
)

chain_head = Table(
    "chain_head",
    metadata,
    C("id", Integer, primary_key=True, autoincrement=False),
    C("seq", Id, nullable=False),
    C("hash", String(64), nullable=False),
)

# Alerts and webhooks (issue #6): each rule's state, the project's webhook endpoints (the
# secret never leaves the server) and every delivery with its attempts.
alert_states = Table(
    "alert_states",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("project_id", Id, ForeignKey("projects.id"), nullable=False),
    C("rule", String(64), nullable=False),
    C("state", String(20), nullable=False),
    C("history", JSON, nullable=False),
    C("value", Float, nullable=True),
    C("n", Integer, nullable=True),
    C("raised_at", UTCDateTime, nullable=True),
    C("evaluated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "rule", name="uq_alert_states_project_rule"),
)

webhooks = Table(
    "webhooks",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("project_id", Id, ForeignKey("projects.id"), nullable=False, index=True),
    C("url", String(2000), nullable=False),
    C("secret", String(200), nullable=False),
    C("active", Boolean, nullable=False),
    C("created_at", UTCDateTime, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("webhook_id", Id, ForeignKey("webhooks.id"), nullable=False, index=True),
    C("event_type", String(40), nullable=False),
    C("payload", Text, nullable=False),
    C("state", String(20), nullable=False),
    C("attempts", JSON, nullable=False),
    C("created_at", UTCDateTime, nullable=False),
    C("delivered_at", UTCDateTime, nullable=True),
)

# Many reviewers (issue #5): skill per reviewer and project, gold items, gold tasks.
reviewer_stats = Table(
    "reviewer_stats",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("project_id", Id, ForeignKey("projects.id"), nullable=False),
    C("user_id", Id, ForeignKey("users.id"), nullable=False),
    # Confusion counts [truth][answer], from gold items and from consensus (soft).
    C("counts", JSON, nullable=False),
    C("gold_n", Integer, nullable=False),
    C("gold_correct", Integer, nullable=False),
    C("paused", Boolean, nullable=False),
    C("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "user_id", name="uq_reviewer_stats_project_user"),
)

gold_items = Table(
    "gold_items",
    metadata,
    C("id", Id, primary_key=True, autoincrement=True),
    C("project_id", Id, ForeignKey("projects.id"), nullable=False),
    C("item_id", Id, ForeignKey("items.id"), nullable=False, unique=True),
    C("label", Integer, nullable=False),
    C("created_by", String(100), nullable=True),
    C("created_at", UTCDateTime, nullable=False),
    Index("ix_gold_items_project", "project_id", "id"),
)

gold_tasks = Table(
    "gold_tasks",
    metadata,
    C("task_id", Id, ForeignKey("tasks.id"), primary_key=True, autoincrement=False),
    C("user_id", Id, ForeignKey("users.id"), nullable=False),
)
"""Tasks that put a gold item to a reviewer: their answers score the reviewer only."""

# The audit trail's signed checkpoints (issue #6): a Merkle root over events 1..tree_size,
# the accumulator's frontier to resume from, and the public keys that verify them (the
# private key never enters the database).
checkpoints = Table(
    "checkpoints",
    metadata,
    C("seq", Id, primary_key=True, autoincrement=False),
    C("tree_size", Id, nullable=False, unique=True),
    C("root", String(64), nullable=False),
    C("head_hash", String(64), nullable=False),
    C("at", String(40), nullable=False),
    C("signature", String(128), nullable=False),
    C("key_id", String(64), nullable=False),
    C("frontier", JSON, nullable=False),
)

audit_keys = Table(
    "audit_keys",
    metadata,
    C("key_id", String(64), primary_key=True),
    C("public_pem", Text, nullable=False),
    C("created_at", UTCDateTime, nullable=False),
)
