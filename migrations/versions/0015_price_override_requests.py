"""price override requests (a Specialist asks, a Supervisor decides) and the index of a
customer's addresses (the ship-to picker)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "price_override_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_line_id", sa.Integer(), nullable=False),
        sa.Column("requested_price", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("price_before", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("requested_by", sa.String(length=120), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=120), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("requested_price >= 0", name="ck_price_override_request_price"),
        sa.ForeignKeyConstraint(["order_line_id"], ["order_line.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_price_override_request_line", "price_override_request", ["order_line_id"]
    )
    op.create_index(
        "ix_price_override_request_status", "price_override_request", ["status"]
    )
    op.create_index("ix_customer_address_customer", "customer_address", ["customer_id"])


def downgrade():
    op.drop_index("ix_customer_address_customer", table_name="customer_address")
    op.drop_index("ix_price_override_request_status", table_name="price_override_request")
    op.drop_index("ix_price_override_request_line", table_name="price_override_request")
    op.drop_table("price_override_request")
