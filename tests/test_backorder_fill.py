"""A backorder keeps the quantity it was made with: a partial fill lowers what is still to
fill, never what the first allocation lacked, so the unit fill rate at first allocation stays
true (issue 16, migration 0018)."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from portal.extensions import db
from portal.models import Backorder, utcnow
from portal.services import fulfillment, inventory, lifecycle, orders
from portal.services import service_levels as sl
from tests.conftest import actor
from tests.factories import make_catalog

MIGRATION = Path(__file__).parents[1] / "migrations/versions/0017_backorder_initial_quantity.py"


def test_a_partial_fill_keeps_the_unit_fill_rate_at_first_allocation(clean_db) -> None:
    clerk = actor("specialist")
    data = make_catalog(stock=100)  # 100 units of each product in W1
    day = sl.week_of(utcnow().date() - timedelta(days=14)).start
    order = orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "order_date": day,
            "requested_date": day + timedelta(days=3),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [
            {"product_id": data.products[0].id, "quantity": 150},
            {"product_id": data.products[1].id, "quantity": 40},
        ],
        clerk,
    )
    lifecycle.confirm(order, clerk, today=day)
    fulfillment.allocate(order, clerk, today=day)
    backorder = db.session.query(Backorder).one()
    assert (backorder.quantity, backorder.initial_quantity) == (50, 50)

    inventory.receive(
        data.products[0].id, data.warehouses[0].id, 30, actor("supervisor"), reference="PO 1"
    )
    fulfillment.fill_backorders(data.products[0].id, actor("supervisor"))
    assert (backorder.quantity, backorder.initial_quantity) == (20, 50)  # partly filled

    # by hand: 150 + 40 = 190 units ordered; the first allocation lacked 50 of them
    units = sl.compute("unit_fill_rate", sl.week_of(day))[None]
    assert (units.num, units.den) == (140, 190)
    lines = sl.compute("line_fill_rate", sl.week_of(day))[None]
    assert (lines.num, lines.den) == (1, 2)


def test_the_migration_backfills_initial_quantity_from_quantity() -> None:
    spec = importlib.util.spec_from_file_location("migration_0018", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(
            sa.text("CREATE TABLE backorder (id INTEGER PRIMARY KEY, quantity INTEGER NOT NULL)")
        )
        connection.execute(sa.text("INSERT INTO backorder (id, quantity) VALUES (1, 7), (2, 3)"))
        columns: dict[str, list[str]] = {}
        for table, _, column in migration.INDEXES:  # the tables the migration indexes
            columns.setdefault(table, []).append(column)
        for table, names in columns.items():
            connection.execute(sa.text(f"CREATE TABLE {table} ({', '.join(names)})"))
        with Operations.context(MigrationContext.configure(connection)):
            migration.upgrade()
        rows = connection.execute(sa.text("SELECT id, initial_quantity FROM backorder")).all()
        assert sorted(rows) == [(1, 7), (2, 3)]
        column = {c["name"]: c for c in sa.inspect(connection).get_columns("backorder")}
        assert column["initial_quantity"]["nullable"] is False
