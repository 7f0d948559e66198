"""the review budget counts finished work by time; model versions carry a novelty detector,
predictions their novelty score

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.create_index("ix_tasks_done", ["project_id", "done_at"], unique=False)
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("novelty", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("novelty", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("novelty")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("novelty")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_done")
