"""Sync trackers, runs, conflicts

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "tracker",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("backend", sa.String(length=10), nullable=False),
        sa.Column("location", sa.String(length=500), nullable=False),
        sa.Column("tab", sa.String(length=100), nullable=False),
        sa.Column("key_header", sa.String(length=100), nullable=False),
        sa.Column("key_field", sa.String(length=60), nullable=False),
        sa.Column("columns", sa.Text(), nullable=False),
        sa.Column("status_header", sa.String(length=100), nullable=False),
        sa.Column("conflict_policy", sa.String(length=12), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("may_create", sa.Boolean(), nullable=False),
        sa.Column("filter", sa.String(length=20), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('orders', 'order_lines', 'stock_levels', 'shipments', 'disputes', "
            "'credit_memos')",
            name="ck_tracker_kind",
        ),
        sa.CheckConstraint("backend IN ('xlsx', 'gsheets', 'xlwings')", name="ck_tracker_backend"),
        sa.CheckConstraint(
            "conflict_policy IN ('portal_wins', 'sheet_wins', 'flag')", name="ck_tracker_policy"
        ),
        sa.CheckConstraint("interval_seconds >= 0", name="ck_tracker_interval"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "sync_conflict",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracker_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("header", sa.String(length=100), nullable=False),
        sa.Column("field", sa.String(length=60), nullable=False),
        sa.Column("base_value", sa.Text(), nullable=False),
        sa.Column("sheet_value", sa.Text(), nullable=False),
        sa.Column("portal_value", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_by", sa.String(length=120), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tracker_id"], ["tracker.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_sync_conflict_tracker_key", "sync_conflict", ["tracker_id", "key", "header"]
    )
    op.create_index(op.f("ix_sync_conflict_status"), "sync_conflict", ["status"])
    op.create_table(
        "sync_create_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracker_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("record_key", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tracker_id"], ["tracker.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tracker_id", "token", name="uq_sync_create_token"),
    )
    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracker_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("written", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["tracker_id"], ["tracker.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sync_run_tracker_started", "sync_run", ["tracker_id", "started_at"])
    op.create_table(
        "tracker_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracker_id", sa.Integer(), nullable=False),
        sa.Column("base", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tracker_id"], ["tracker.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tracker_id"),
    )
    op.create_table(
        "tracker_base_patch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracker_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("cells", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tracker_id"], ["tracker.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_tracker_base_patch_tracker_id"), "tracker_base_patch", ["tracker_id"])


def downgrade():
    op.drop_index(op.f("ix_tracker_base_patch_tracker_id"), table_name="tracker_base_patch")
    op.drop_table("tracker_base_patch")
    op.drop_table("tracker_snapshot")
    op.drop_index("ix_sync_run_tracker_started", table_name="sync_run")
    op.drop_table("sync_run")
    op.drop_table("sync_create_token")
    op.drop_index(op.f("ix_sync_conflict_status"), table_name="sync_conflict")
    op.drop_index("ix_sync_conflict_tracker_key", table_name="sync_conflict")
    op.drop_table("sync_conflict")
    op.drop_table("tracker")
