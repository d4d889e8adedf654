"""number sequences: non-blocking order, shipment, RMA and dispute numbers on PostgreSQL

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 12:05:00

Invoices and credit memos keep their gap-free counter rows. The other kinds get a sequence
each, starting where their counter row had got to.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SEQUENCED = ("sales_order", "shipment", "rma", "dispute")


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for name in SEQUENCED:
        start = bind.execute(
            sa.text("SELECT next_value FROM number_sequence WHERE name = :name"), {"name": name}
        ).scalar()
        op.execute(f"CREATE SEQUENCE number_seq_{name} START WITH {int(start or 1)}")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for name in SEQUENCED:
        last, called = bind.execute(
            sa.text(f"SELECT last_value, is_called FROM number_seq_{name}")
        ).one()
        next_value = last + 1 if called else last
        updated = bind.execute(
            sa.text("UPDATE number_sequence SET next_value = :value WHERE name = :name"),
            {"value": next_value, "name": name},
        ).rowcount
        if not updated:
            bind.execute(
                sa.text(
                    "INSERT INTO number_sequence (name, prefix, next_value, width) "
                    "VALUES (:name, :prefix, :value, 6)"
                ),
                {
                    "name": name,
                    "prefix": {
                        "sales_order": "SO-",
                        "shipment": "SH-",
                        "rma": "RMA-",
                        "dispute": "DSP-",
                    }[name],
                    "value": next_value,
                },
            )
        op.execute(f"DROP SEQUENCE number_seq_{name}")
