"""reviewers' consensus, skill and gold items (issue #5)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reviewer_stats",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("gold_n", sa.Integer(), nullable=False),
        sa.Column("gold_correct", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_reviewer_stats_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_reviewer_stats_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviewer_stats")),
        sa.UniqueConstraint("project_id", "user_id", name="uq_reviewer_stats_project_user"),
    )
    op.create_table(
        "gold_items",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_gold_items_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_gold_items_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gold_items")),
        sa.UniqueConstraint("item_id", name=op.f("uq_gold_items_item_id")),
    )
    with op.batch_alter_table("gold_items") as batch:
        batch.create_index("ix_gold_items_project", ["project_id", "id"], unique=False)
    op.create_table(
        "gold_tasks",
        sa.Column("task_id", _ID, autoincrement=False, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_gold_tasks_task_id_tasks")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_gold_tasks_user_id_users")
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_gold_tasks")),
    )


def downgrade() -> None:
    op.drop_table("gold_tasks")
    with op.batch_alter_table("gold_items") as batch:
        batch.drop_index("ix_gold_items_project")
    op.drop_table("gold_items")
    op.drop_table("reviewer_stats")
