"""service levels: metric targets, closed weeks' figures, the improvement log, the reports made

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

VALUE = sa.Numeric(precision=14, scale=4)


def upgrade():
    op.create_table(
        "service_level_target",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("target", VALUE, nullable=False),
        sa.Column("amber", VALUE, nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("metric"),
    )
    op.create_table(
        "improvement_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("problem", sa.String(length=200), nullable=False),
        sa.Column("root_cause", sa.String(length=200), nullable=False),
        sa.Column("cause_source", sa.String(length=20), nullable=True),
        sa.Column("cause_code", sa.String(length=200), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=True),
        sa.Column("value_before", VALUE, nullable=True),
        sa.Column("week_before", sa.String(length=8), nullable=True),
        sa.Column("value_after", VALUE, nullable=True),
        sa.Column("week_after", sa.String(length=8), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_improvement_action_status", "improvement_action", ["status"])
    op.create_table(
        "service_level_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("made_by", sa.String(length=120), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("filename", sa.String(length=120), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("mailed_to", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_service_level_report_week", "service_level_report", ["week"])
    op.create_table(
        "service_level_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("num", sa.BigInteger(), nullable=False),
        sa.Column("den", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("median", VALUE, nullable=True),
        sa.Column("p90", VALUE, nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("metric", "week", name="uq_service_level_snapshot"),
    )


def downgrade():
    op.drop_table("service_level_snapshot")
    op.drop_index("ix_service_level_report_week", table_name="service_level_report")
    op.drop_table("service_level_report")
    op.drop_index("ix_improvement_action_status", table_name="improvement_action")
    op.drop_table("improvement_action")
    op.drop_table("service_level_target")
