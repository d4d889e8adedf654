"""the indexes behind the pickers' searches: invoices by customer (a list's customer filter)
and, on PostgreSQL, invoice numbers by prefix (``varchar_pattern_ops``, so a
``LIKE 'INV-0001%'`` is an index range whatever the database's collation; a plain index on
SQLite). Order numbers have the trigram index of 0023, which answers a prefix too.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30 22:10:00
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

PATTERN_INDEXES = [("invoice", "ix_invoice_number_pattern", "number")]


def upgrade():
    op.create_index("ix_invoice_customer", "invoice", ["customer_id"])
    for table, name, column in PATTERN_INDEXES:
        op.create_index(name, table, [column], postgresql_ops={column: "varchar_pattern_ops"})


def downgrade():
    for table, name, _ in PATTERN_INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_index("ix_invoice_customer", table_name="invoice")
