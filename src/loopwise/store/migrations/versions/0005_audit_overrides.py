"""audit checkpoints and overrides (issue #6)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("seq", _ID, autoincrement=False, nullable=False),
        sa.Column("tree_size", _ID, nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("frontier", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_checkpoints")),
        sa.UniqueConstraint("tree_size", name=op.f("uq_checkpoints_tree_size")),
    )
    op.create_table(
        "audit_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_audit_keys")),
    )


def downgrade() -> None:
    op.drop_table("audit_keys")
    op.drop_table("checkpoints")
