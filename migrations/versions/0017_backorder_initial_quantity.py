"""service levels: backorder.initial_quantity, and indexes on the dates the metrics read

Partial fills lower ``backorder.quantity``; the unit fill rate at first allocation needs the
quantity the backorder started with. Existing rows take their current quantity (the best
figure there is for them). The indexes let each metric read only the weeks asked for
(shipments by ship and delivery date, disputes by opening, closing and due date, credits by
decision, RMAs by request); figures in docs/benchmarks.md.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 15:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


# (table, index, column) of the service levels' date indexes
INDEXES = [
    ("shipment", "ix_shipment_ship_date", "ship_date"),
    ("shipment", "ix_shipment_delivered_date", "delivered_date"),
    ("shipment_line", "ix_shipment_line_shipment", "shipment_id"),
    ("dispute", "ix_dispute_opened_at", "opened_at"),
    ("dispute", "ix_dispute_closed_at", "closed_at"),
    ("dispute", "ix_dispute_due_date", "due_date"),
    ("credit_memo", "ix_credit_memo_decided_at", "decided_at"),
    ("return_authorization", "ix_return_authorization_created_at", "created_at"),
]


def upgrade():
    with op.batch_alter_table("backorder", schema=None) as batch_op:
        batch_op.add_column(sa.Column("initial_quantity", sa.Integer(), nullable=True))
    op.execute("UPDATE backorder SET initial_quantity = quantity")
    with op.batch_alter_table("backorder", schema=None) as batch_op:
        batch_op.alter_column("initial_quantity", existing_type=sa.Integer(), nullable=False)
    for table, name, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade():
    for table, name, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("backorder", schema=None) as batch_op:
        batch_op.drop_column("initial_quantity")
