"""the indexes behind the pickers' searches: invoices by customer (a list's customer filter)
and, on PostgreSQL, order and invoice numbers by prefix (``varchar_pattern_ops``, so a
``LIKE 'SO-0001%'`` is an index range whatever the database's collation; plain indexes on
SQLite)

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30 22:10:00
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

PATTERN_INDEXES = [
    ("sales_order", "ix_sales_order_number_pattern", "number"),
    ("invoice", "ix_invoice_number_pattern", "number"),
]


def upgrade():
    op.create_index("ix_invoice_customer", "invoice", ["customer_id"])
    for table, name, column in PATTERN_INDEXES:
        op.create_index(name, table, [column], postgresql_ops={column: "varchar_pattern_ops"})


def downgrade():
    for table, name, _ in PATTERN_INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_index("ix_invoice_customer", table_name="invoice")
