"""Concurrent allocations never take the same unit (row locks on PostgreSQL).

On PostgreSQL the test also counts retries: with row locks none is needed, so a regression to
optimistic retries alone (same final numbers, but 409s under load) fails it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from flask import Flask

from portal.extensions import db
from portal.models import OrderLine, SalesOrder, StockLevel
from portal.services import catalog, fulfillment, inventory, lifecycle, orders
from portal.services.base import ConflictError
from tests.factories import SETUP, make_catalog

COMPETITORS = 20
UNITS = 5


def test_twenty_concurrent_allocations_share_five_units(clean_db) -> None:
    app: Flask = clean_db
    data = make_catalog(stock=0)
    product, warehouse = data.products[0], data.warehouses[0]
    inventory.receive(product.id, warehouse.id, UNITS, SETUP)
    catalog.customers.update(data.customer, {"credit_limit": Decimal(10**6)}, SETUP)
    product_id, warehouse_id = product.id, warehouse.id
    order_ids = []
    for n in range(COMPETITORS):
        order = orders.orders.create_with_lines(
            {
                "customer_id": data.customer.id,
                "customer_po": f"PO-{n}",
                "requested_date": datetime.now(UTC).date() + timedelta(days=30),
                "ship_to_id": data.customer.addresses[0].id,
            },
            [{"product_id": product.id, "quantity": UNITS}],
            SETUP,
        )
        lifecycle.confirm(order, SETUP)
        assert order.status == "confirmed", order.hold_reasons
        order_ids.append(order.id)
    db.session.remove()

    barrier = threading.Barrier(COMPETITORS)
    errors: list[BaseException] = []
    retries: list[int] = []  # order ids whose allocation got a 409 and was tried again

    def allocate(order_id: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                for _attempt in range(50):
                    order = db.session.get(SalesOrder, order_id)
                    try:
                        fulfillment.allocate(order, SETUP)
                        return
                    except ConflictError:
                        retries.append(order_id)
                        db.session.rollback()  # a stale snapshot on SQLite: retry like a client
                raise AssertionError(f"order {order_id} never got through")
            except BaseException as error:
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=allocate, args=(oid,)) for oid in order_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    if db.engine.dialect.name == "postgresql":
        # Row locks serialise the allocations: each waits for the stock row and then sees the
        # committed state, so no optimistic-lock conflict (409) and no retry is ever needed.
        assert retries == [], f"{len(retries)} allocations needed a retry: row locks not taken"

    db.session.expire_all()
    lines = db.session.query(OrderLine).all()
    allocated = [line.qty_allocated for line in lines]
    assert sum(allocated) == UNITS
    assert min(allocated) >= 0
    assert sum(line.qty_backordered for line in lines) == COMPETITORS * UNITS - UNITS
    level = (
        db.session.query(StockLevel)
        .filter_by(product_id=product_id, warehouse_id=warehouse_id)
        .one()
    )
    assert (level.on_hand, level.allocated) == (UNITS, UNITS)
    assert inventory.ledger_discrepancies() == []
