"""Shipments invoiced in a batch (``invoices.invoice_shipments``, as the demo's history
invoices a day's deliveries): the same invoices as one at a time, read and numbered once for
the batch, all or nothing; and a shipment of several lines books each line's stock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select

from portal.extensions import db
from portal.models import AuditEvent, InventoryMovement, Invoice, StockLevel, utcnow
from portal.services import audit, fulfillment, inventory, invoices, lifecycle, orders
from portal.services.base import ConflictError
from tests.factories import SETUP, make_catalog, shipped_order


def _delivered(data, quantity: int):
    order, shipment = shipped_order(data, quantity)
    fulfillment.deliver(shipment, SETUP)
    return order, shipment


@contextmanager
def _statements() -> Iterator[list[str]]:
    """The SQL statements run inside the block."""
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_a_batch_invoices_each_shipment_as_one_at_a_time_would(clean_db) -> None:
    data = make_catalog()
    day = utcnow().date() - timedelta(days=3)
    delivered = [_delivered(data, quantity) for quantity in (2, 4, 6)]
    single = invoices.invoice_shipment(delivered[0][1], SETUP, on=day)
    with _statements() as statements:
        batch = invoices.invoice_shipments(
            [shipment for _, shipment in delivered[1:]], SETUP, on=day
        )
    made = [single, *batch]
    assert [invoice.shipment_id for invoice in made] == [s.id for _, s in delivered]
    assert [invoice.number for invoice in made] == sorted({invoice.number for invoice in made})
    assert [(i.total, i.issue_date, i.due_date, i.status) for i in made] == [
        (Decimal("9.50") * quantity, day, day + timedelta(days=30), "issued")
        for quantity in (2, 4, 6)
    ]
    assert [[line.quantity for line in invoice.lines] for invoice in made] == [[2], [4], [6]]
    assert {order.status for order, _ in delivered} == {"invoiced"}
    # read and numbered once for the batch, not once per shipment
    assert sum("sum(invoice_line.quantity)" in s for s in statements) == 1
    assert sum(s.startswith("UPDATE number_sequence") for s in statements) == 1
    assert audit.verify().ok


def test_a_batch_with_an_invoiced_shipment_invoices_none_and_is_audited(clean_db) -> None:
    data = make_catalog()
    (_, first), (second_order, second) = _delivered(data, 2), _delivered(data, 3)
    invoices.invoice_shipment(first, SETUP)
    with pytest.raises(ConflictError, match=f"shipment {first.number} is already on"):
        invoices.invoice_shipments([second, first], SETUP)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1
    assert second_order.status == "delivered"
    refused = db.session.scalars(
        select(AuditEvent.entity_id).where(AuditEvent.action == "invoice_refused")
    ).all()
    assert refused == [f"{second.id},{first.id}"]


def test_a_shipment_of_several_lines_books_each_lines_stock(clean_db) -> None:
    data = make_catalog(stock=50)
    order = orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "requested_date": utcnow().date() + timedelta(days=14),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [
            {"product_id": product.id, "quantity": 5 * n}
            for n, product in enumerate(data.products, 1)
        ],
        SETUP,
    )
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, SETUP)
    warehouse = data.warehouses[0].id
    shipment = fulfillment.ship(
        order,
        SETUP,
        warehouse_id=warehouse,
        lines={order.lines[0].id: 5, order.lines[2].id: 10},
        carrier="DHL",
    )
    db.session.expire_all()
    on_hand = {
        level.product_id: (level.on_hand, level.allocated)
        for level in db.session.scalars(
            select(StockLevel).where(StockLevel.warehouse_id == warehouse)
        )
    }
    first, second, third = (product.id for product in data.products)
    assert on_hand == {first: (45, 0), second: (50, 10), third: (40, 5)}
    shipped = db.session.scalars(
        select(InventoryMovement).where(InventoryMovement.reference == shipment.number)
    ).all()
    assert sorted((m.product_id, m.on_hand_delta, m.allocated_delta) for m in shipped) == [
        (first, -5, -5),
        (third, -10, -10),
    ]
    assert [(line.qty_shipped, line.qty_allocated) for line in order.lines] == [
        (5, 0),
        (0, 10),
        (10, 5),
    ]
    assert order.status == "partially_shipped"
    assert inventory.ledger_discrepancies() == []
