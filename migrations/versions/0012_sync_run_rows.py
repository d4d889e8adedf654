"""sync run rows: every row's outcome in each sync run, and the count of unchanged rows

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 14:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sync_run") as batch:
        batch.add_column(
            sa.Column("unchanged", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "sync_run_row",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=True),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("header", sa.String(length=100), nullable=True),
        sa.Column("sheet_value", sa.Text(), nullable=True),
        sa.Column("portal_value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["sync_run.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_sync_run_row_run_outcome", "sync_run_row", ["run_id", "outcome", "row"]
    )


def downgrade():
    op.drop_index("ix_sync_run_row_run_outcome", table_name="sync_run_row")
    op.drop_table("sync_run_row")
    with op.batch_alter_table("sync_run") as batch:
        batch.drop_column("unchanged")
