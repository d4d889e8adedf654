"""external references: the team's own order and line ids, and where an order came from

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sales_order") as batch:
        batch.add_column(sa.Column("external_ref", sa.String(length=60), nullable=True))
        batch.add_column(sa.Column("source", sa.String(length=120), nullable=True))
    op.create_index("ix_sales_order_external_ref", "sales_order", ["external_ref"], unique=True)
    with op.batch_alter_table("order_line") as batch:
        batch.add_column(sa.Column("external_ref", sa.String(length=60), nullable=True))
    op.create_index("ix_order_line_external_ref", "order_line", ["external_ref"], unique=True)


def downgrade():
    op.drop_index("ix_order_line_external_ref", table_name="order_line")
    with op.batch_alter_table("order_line") as batch:
        batch.drop_column("external_ref")
    op.drop_index("ix_sales_order_external_ref", table_name="sales_order")
    with op.batch_alter_table("sales_order") as batch:
        batch.drop_column("source")
        batch.drop_column("external_ref")
