"""audit key id: events name the HMAC key of their hash (null = legacy unkeyed SHA-256)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 10:00:00

Existing events keep a null key id and their unkeyed SHA-256 hashes: ``audit verify`` checks
them as legacy events, so chains written before this migration stay verifiable.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("key_id")
