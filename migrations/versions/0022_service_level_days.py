"""service levels kept per day: each closed UTC day's sums, duration histograms and causes,
with a stale flag set when the day's records change; indexes on the orders' due dates and
the RMAs' order

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30 21:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

INDEXES = [
    ("sales_order", "ix_sales_order_promised_date", "promised_date"),
    ("sales_order", "ix_sales_order_requested_date", "requested_date"),
    ("return_authorization", "ix_return_authorization_order", "order_id"),
]


def upgrade():
    op.create_table(
        "service_level_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "service_level_day_figure",
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("num", sa.BigInteger(), nullable=False),
        sa.Column("den", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.PrimaryKeyConstraint("metric", "day"),
    )
    op.create_index("ix_service_level_day_figure_day", "service_level_day_figure", ["day"])
    op.create_table(
        "service_level_day_value",
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("metric", "day", "value"),
    )
    op.create_index("ix_service_level_day_value_day", "service_level_day_value", ["day"])
    op.create_table(
        "service_level_day_cause",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("cause", sa.String(length=200), nullable=False),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_service_level_day_cause_day", "service_level_day_cause", ["day"])
    for table, name, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade():
    for table, name, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_index("ix_service_level_day_cause_day", table_name="service_level_day_cause")
    op.drop_table("service_level_day_cause")
    op.drop_index("ix_service_level_day_value_day", table_name="service_level_day_value")
    op.drop_table("service_level_day_value")
    op.drop_index("ix_service_level_day_figure_day", table_name="service_level_day_figure")
    op.drop_table("service_level_day_figure")
    op.drop_table("service_level_day")
