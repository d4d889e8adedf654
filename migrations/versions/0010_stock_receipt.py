"""stock receipt: goods receipts as records, numbered GR-000001 (a sequence on PostgreSQL)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "stock_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=80), nullable=True),
        sa.Column("note", sa.String(length=400), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_by", sa.String(length=120), nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_stock_receipt_quantity"),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"]),
        sa.ForeignKeyConstraint(["warehouse_id"], ["warehouse.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    op.create_index("ix_stock_receipt_product", "stock_receipt", ["product_id"])
    op.create_index("ix_stock_receipt_received_at", "stock_receipt", ["received_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE number_seq_stock_receipt START WITH 1")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE number_seq_stock_receipt")
    op.drop_index("ix_stock_receipt_received_at", table_name="stock_receipt")
    op.drop_index("ix_stock_receipt_product", table_name="stock_receipt")
    op.drop_table("stock_receipt")
