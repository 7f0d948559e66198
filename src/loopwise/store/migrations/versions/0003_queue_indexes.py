"""queue indexes: claim open tasks of a kind in queue order, find expired leases, find an
item's latest prediction

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.create_index(
            "ix_tasks_claim", ["project_id", "state", "kind", "priority", "id"], unique=False
        )
        batch.create_index(
            "ix_tasks_lease", ["project_id", "state", "lease_expires_at"], unique=False
        )
    with op.batch_alter_table("predictions") as batch:
        batch.create_index("ix_predictions_item_latest", ["item_id", "id"], unique=False)
        batch.drop_index("ix_predictions_item_id")


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.create_index("ix_predictions_item_id", ["item_id"], unique=False)
        batch.drop_index("ix_predictions_item_latest")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_lease")
        batch.drop_index("ix_tasks_claim")
