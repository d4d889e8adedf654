"""tracker line key: a sheet of one row per line without a line id keys its lines
"<order id>/<n>", n from the team's line number column or the row's position in its order

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 15:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tracker") as batch:
        batch.add_column(sa.Column("line_key", sa.String(length=100), nullable=True))


def downgrade():
    with op.batch_alter_table("tracker") as batch:
        batch.drop_column("line_key")
