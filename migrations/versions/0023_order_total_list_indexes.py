"""stored order total and the indexes the order lists, filters and sorts need

``sales_order.total`` is the sum of the lines' amounts (open quantity times unit price, to
the cent, halves to even as Python's ``Decimal.quantize``), kept from here on by
``portal.services.order_totals``; existing orders are backfilled with one set-based UPDATE.
The indexes serve every list, filter and sort of the orders (HTML and REST): the total,
the customer, status with the order date, the foreign keys (the requested date has 0022's);
on PostgreSQL trigram indexes answer the quick search and the text filters (contains, starts/ends with)
on the number, the customer PO and the team's order id. tests/test_list_plans.py proves
them with EXPLAIN.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30 21:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# (table, index, columns) on every database
INDEXES = [
    ("sales_order", "ix_sales_order_total", ["total", "id"]),
    ("sales_order", "ix_sales_order_customer_id", ["customer_id", "id"]),
    ("sales_order", "ix_sales_order_status_date", ["status", "order_date", "id"]),
    ("sales_order", "ix_sales_order_ship_to", ["ship_to_id"]),
    ("sales_order", "ix_sales_order_payment_term", ["payment_term_id"]),
]
# (table, index, column) trigram indexes on PostgreSQL (plain ones on SQLite)
TRIGRAM_INDEXES = [
    ("sales_order", "ix_sales_order_number_trgm", "number"),
    ("sales_order", "ix_sales_order_customer_po_trgm", "customer_po"),
    ("sales_order", "ix_sales_order_external_ref_trgm", "external_ref"),
]

# a line's amount to the cent, halves to even (PostgreSQL's round() takes halves away)
PG_AMOUNT = """
    round(x, 2) - sign(x) * CASE
        WHEN abs(x * 100 - trunc(x * 100)) = 0.5 AND mod(trunc(x * 100), 2) = 0 THEN 0.01
        ELSE 0 END
"""
PG_BACKFILL = f"""
    UPDATE sales_order SET total = s.total
    FROM (
        SELECT order_id, sum({PG_AMOUNT}) AS total
        FROM (SELECT order_id, (quantity - qty_cancelled) * unit_price AS x FROM order_line) l
        GROUP BY order_id
    ) s
    WHERE s.order_id = sales_order.id
"""
SQLITE_BACKFILL = """
    UPDATE sales_order SET total = coalesce((
        SELECT sum(round((quantity - qty_cancelled) * unit_price, 2))
        FROM order_line WHERE order_line.order_id = sales_order.id), 0)
"""


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("sales_order") as batch:
        batch.add_column(
            sa.Column("total", sa.Numeric(14, 2), nullable=False, server_default="0")
        )
    op.execute(PG_BACKFILL if postgres else SQLITE_BACKFILL)
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns)
    opclass = _trigram_opclass() if postgres else None
    for table, name, column in TRIGRAM_INDEXES:
        using = f"USING gin ({column} {opclass})" if opclass else f"({column})"
        op.execute(f"CREATE INDEX {name} ON {table} {using}")


def _trigram_opclass() -> str:
    """pg_trgm's operator class, schema-qualified: the extension (trusted, so a database
    owner may create it) goes in ``public`` unless it is already installed elsewhere."""
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
    schema = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT n.nspname FROM pg_extension e "
                "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
            )
        )
        .scalar_one()
    )
    return f'"{schema}".gin_trgm_ops'


def downgrade():
    for _, name, _ in reversed(TRIGRAM_INDEXES):
        op.execute(f"DROP INDEX {name}")
    for table, name, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("sales_order") as batch:
        batch.drop_column("total")
