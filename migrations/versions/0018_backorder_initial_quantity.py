"""backorder.initial_quantity: what was short when the backorder was made (unit fill rate)

Partial fills lower ``backorder.quantity``; the unit fill rate at first allocation needs the
quantity the backorder started with. Existing rows take their current quantity (the best
figure there is for them).

Revision ID: 0018
Revises: 0016
Create Date: 2026-11-30 15:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("backorder", schema=None) as batch_op:
        batch_op.add_column(sa.Column("initial_quantity", sa.Integer(), nullable=True))
    op.execute("UPDATE backorder SET initial_quantity = quantity")
    with op.batch_alter_table("backorder", schema=None) as batch_op:
        batch_op.alter_column("initial_quantity", existing_type=sa.Integer(), nullable=False)


def downgrade():
    with op.batch_alter_table("backorder", schema=None) as batch_op:
        batch_op.drop_column("initial_quantity")
