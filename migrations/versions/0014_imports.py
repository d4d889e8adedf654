"""imports: runs and the records they touched; attributes and history kept from a team's files

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 15:00:00
"""

import sqlalchemy as sa
from alembic import op


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("segment", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("region", sa.String(length=80), nullable=True))
    with op.batch_alter_table("product") as batch:
        batch.add_column(sa.Column("category", sa.String(length=60), nullable=True))
        batch.add_column(sa.Column("sub_category", sa.String(length=60), nullable=True))
    with op.batch_alter_table("sales_order") as batch:
        batch.add_column(sa.Column("ship_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("delivered_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("ship_mode", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("ship_to_text", sa.String(length=300), nullable=True))
    op.create_table(
        "import_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "import_record",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("import_run.id"), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("before", sa.Text(), nullable=True),
    )
    op.create_index("ix_import_record_run", "import_record", ["run_id"])
    op.create_index("ix_import_record_entity", "import_record", ["entity", "entity_id"])


def downgrade():
    op.drop_index("ix_import_record_entity", table_name="import_record")
    op.drop_index("ix_import_record_run", table_name="import_record")
    op.drop_table("import_record")
    op.drop_table("import_run")
    with op.batch_alter_table("sales_order") as batch:
        for name in ("ship_to_text", "ship_mode", "delivered_date", "ship_date"):
            batch.drop_column(name)
    with op.batch_alter_table("product") as batch:
        batch.drop_column("sub_category")
        batch.drop_column("category")
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("region")
        batch.drop_column("segment")
