"""sync run started by: the user who ran a sync from inside Excel (the xlwings client)

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 21:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sync_run") as batch:
        batch.add_column(sa.Column("started_by", sa.String(length=120), nullable=True))


def downgrade():
    with op.batch_alter_table("sync_run") as batch:
        batch.drop_column("started_by")
