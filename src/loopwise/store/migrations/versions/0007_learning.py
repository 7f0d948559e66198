"""pool items and model promotion (issue #4)

Pool items need no schema change (their route is ``pool``) and a challenger's report lives
in ``model_versions.metrics``; a training job remembers how many human labels the project
had when it was queued, which is what ``policy.retrain_every`` counts from.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("human_labels", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("human_labels")
