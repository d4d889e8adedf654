"""tracker attach: the header row of an attached sheet, and whether records missing from the
sheet are appended to it

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 14:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tracker") as batch:
        batch.add_column(
            sa.Column("header_row", sa.Integer(), nullable=False, server_default="1")
        )
        batch.add_column(
            sa.Column("append_records", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.create_check_constraint("ck_tracker_header_row", "header_row >= 1")


def downgrade():
    with op.batch_alter_table("tracker") as batch:
        batch.drop_constraint("ck_tracker_header_row", type_="check")
        batch.drop_column("append_records")
        batch.drop_column("header_row")
