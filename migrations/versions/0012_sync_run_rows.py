"""sync run rows: every row's outcome in each sync run, the count of unchanged rows; what a
deleted row means (tracker.deleted_row_policy) and the deleted rows; tracker owner and
shares; trackers of stock receipts

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

KINDS_0003 = (
    "'orders', 'order_lines', 'stock_levels', 'shipments', 'disputes', 'credit_memos'"
)
KINDS_0012 = (
    "'orders', 'order_lines', 'stock_levels', 'stock_receipts', 'shipments', 'disputes', "
    "'credit_memos'"
)


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
    with op.batch_alter_table("tracker") as batch:
        batch.add_column(
            sa.Column(
                "deleted_row_policy", sa.String(length=8), nullable=False, server_default="ignore"
            )
        )
        batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_tracker_owner_id_ab_user", "ab_user", ["owner_id"], ["id"])
        batch.create_check_constraint(
            "ck_tracker_deleted_row_policy", "deleted_row_policy IN ('ignore', 'cancel', 'ask')"
        )
        batch.drop_constraint("ck_tracker_kind", type_="check")
        batch.create_check_constraint("ck_tracker_kind", f"kind IN ({KINDS_0012})")
    op.create_table(
        "tracker_share",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracker_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tracker_id"], ["tracker.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tracker_id", "user_id", name="uq_tracker_share"),
    )
    op.create_table(
        "sync_deleted_row",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracker_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=120), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tracker_id"], ["tracker.id"]),
        sa.ForeignKeyConstraint(["run_id"], ["sync_run.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_sync_deleted_row_tracker_key", "sync_deleted_row", ["tracker_id", "key"]
    )
    op.create_index(op.f("ix_sync_deleted_row_status"), "sync_deleted_row", ["status"])


def downgrade():
    op.drop_index(op.f("ix_sync_deleted_row_status"), table_name="sync_deleted_row")
    op.drop_index("ix_sync_deleted_row_tracker_key", table_name="sync_deleted_row")
    op.drop_table("sync_deleted_row")
    op.drop_table("tracker_share")
    with op.batch_alter_table("tracker") as batch:
        batch.drop_constraint("ck_tracker_deleted_row_policy", type_="check")
        batch.drop_constraint("ck_tracker_kind", type_="check")
        batch.create_check_constraint("ck_tracker_kind", f"kind IN ({KINDS_0003})")
        batch.drop_constraint("fk_tracker_owner_id_ab_user", type_="foreignkey")
        batch.drop_column("owner_id")
        batch.drop_column("deleted_row_policy")
    op.drop_index("ix_sync_run_row_run_outcome", table_name="sync_run_row")
    op.drop_table("sync_run_row")
    with op.batch_alter_table("sync_run") as batch:
        batch.drop_column("unchanged")
