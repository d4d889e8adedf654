"""order line sort indexes: the REST line list sorts by line number and by quantity

tests/test_list_plans.py found both sorts reading every line; each gets an index ending in
the id (the tie-breaker of a list's sort).

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-30 22:35:00
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

INDEXES = [
    ("order_line", "ix_order_line_line_no", ["line_no", "id"]),
    ("order_line", "ix_order_line_quantity", ["quantity", "id"]),
]


def upgrade():
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade():
    for table, name, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
