"""Orders entered in batches (imports, bulk entry): create_many, confirm_many, allocate_many.

A batch must decide exactly as the same orders entered one at a time would, write all or
nothing, and keep the optimistic lock of every row it writes with one statement.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from portal.extensions import db
from portal.models import (
    Allocation,
    AuditEvent,
    Backorder,
    OrderCheck,
    OrderLine,
    SalesOrder,
    StockLevel,
    utcnow,
)
from portal.services import audit, catalog, fulfillment, inventory, lifecycle, orders, states
from portal.services.base import (
    PREASSIGN_IDS_FROM,
    ConflictError,
    ValidationFailed,
    unit_of_work,
)
from tests.factories import SETUP, make_catalog


def _entry(data, quantities=(10,), product=0, **header):
    return (
        {
            "customer_id": data.customer.id,
            "requested_date": utcnow().date() + timedelta(days=14),
            "ship_to_id": data.customer.addresses[0].id,
            **header,
        },
        [{"product_id": data.products[product].id, "quantity": q} for q in quantities],
    )


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize("size", [3, PREASSIGN_IDS_FROM + 5])
def test_create_many_writes_every_order_and_line_with_increasing_numbers(
    clean_db, size: int
) -> None:
    data = make_catalog()
    created = orders.orders.create_many(
        [_entry(data, (n + 1, 2), customer_po=f"PO-{n}") for n in range(size)], SETUP
    )
    db.session.expire_all()
    numbers = [order.number for order in created]
    assert numbers == sorted(numbers) and len(set(numbers)) == size
    for n, order in enumerate(created):
        stored = db.session.get(SalesOrder, order.id)
        assert stored.customer_po == f"PO-{n}"
        assert [line.quantity for line in stored.lines] == [n + 1, 2]
        assert [line.line_no for line in stored.lines] == [1, 2]
    assert _count(OrderLine) == 2 * size
    # the sequences the batch took ids from stay in step for orders entered one at a time
    single = orders.orders.create_with_lines(*_entry(data), SETUP)
    assert single.id > max(order.id for order in created)
    assert single.number > numbers[-1]
    events = db.session.execute(
        select(AuditEvent.entity_id).where(
            AuditEvent.entity == "sales_order", AuditEvent.action == "create"
        )
    ).scalars()
    assert sorted(map(int, events)) == sorted(order.id for order in [*created, single])
    assert audit.verify().ok


def test_one_bad_order_fails_the_whole_batch_naming_its_position(clean_db) -> None:
    data = make_catalog()
    good = _entry(data)
    bad = _entry(data, (0,))
    with pytest.raises(ValidationFailed) as error:
        orders.orders.create_many([good, good, bad], SETUP)
    assert "orders[2].quantity" in error.value.field_errors
    assert _count(SalesOrder) == 0 and _count(OrderLine) == 0


def test_confirm_many_counts_earlier_orders_of_the_batch_against_the_credit_limit(
    clean_db,
) -> None:
    data = make_catalog()
    catalog.customers.update(data.customer, {"credit_limit": Decimal("200.00")}, SETUP)
    batch = orders.orders.create_many(
        [_entry(data, (10,), customer_po=f"PO-{n}") for n in range(3)], SETUP
    )  # 95.00 each: the first two fit in 200.00, the third does not
    lifecycle.confirm_many(batch, SETUP)
    assert [order.status for order in batch] == ["confirmed", "confirmed", "on_hold"]
    assert "credit_exposure: exposure USD 285.00 exceeds credit limit USD 200.00" in (
        batch[2].hold_reasons
    )
    checks = db.session.execute(
        select(OrderCheck.order_id, func.count()).group_by(OrderCheck.order_id)
    ).all()
    assert sorted(checks) == sorted((order.id, len(lifecycle.CHECKS)) for order in batch)


def test_confirm_many_decides_as_confirming_one_at_a_time(clean_db) -> None:
    data = make_catalog()
    catalog.customers.update(data.customer, {"credit_limit": Decimal("250.00")}, SETUP)
    entries = [
        _entry(data, (10,), customer_po="PO-A"),
        _entry(data, (10,), customer_po="PO-A"),  # the same PO twice: both are held
        _entry(data, (10,), customer_po="PO-B"),
        _entry(data, (20,), customer_po="PO-C"),  # 190.00 on top of 95.00: over the limit
        _entry(data, (5,), customer_po="PO-D"),  # 47.50 on top of 95.00 fits
    ]
    one_at_a_time = orders.orders.create_many(entries, SETUP)
    for order in one_at_a_time:
        lifecycle.confirm(order, SETUP)
    expected = [(order.status, order.hold_reasons) for order in one_at_a_time]
    assert [status for status, _ in expected] == [
        "on_hold",
        "on_hold",
        "confirmed",
        "on_hold",
        "confirmed",
    ]
    for order in one_at_a_time:
        states.transition(order, "cancelled", SETUP, "test")

    batch = orders.orders.create_many(entries, SETUP)
    lifecycle.confirm_many(batch, SETUP)
    got = [(order.status, order.hold_reasons) for order in batch]
    renumbered = {a.number: b.number for a, b in zip(one_at_a_time, batch, strict=True)}
    for (status, reasons), (want_status, want_reasons) in zip(got, expected, strict=True):
        for old, new in renumbered.items():
            want_reasons = want_reasons and want_reasons.replace(old, new)
        assert (status, reasons) == (want_status, want_reasons)


def test_allocate_many_takes_stock_in_order_and_backorders_the_rest(clean_db) -> None:
    data = make_catalog(stock=25)
    batch = orders.orders.create_many([_entry(data, (10,)) for _ in range(3)], SETUP)
    entered = [order.updated_at for order in batch]
    lifecycle.confirm_many(batch, SETUP)
    fulfillment.allocate_many(batch, SETUP)
    db.session.expire_all()
    assert [order.status for order in batch] == ["allocated", "allocated", "partially_allocated"]
    assert all(order.updated_at > before for order, before in zip(batch, entered, strict=True))
    assert [order.lines[0].qty_allocated for order in batch] == [10, 10, 5]
    assert [order.lines[0].qty_backordered for order in batch] == [0, 0, 5]
    backorder = db.session.execute(select(Backorder)).scalar_one()
    assert (backorder.order_line_id, backorder.quantity) == (batch[2].lines[0].id, 5)
    level = db.session.execute(
        select(StockLevel).where(
            StockLevel.product_id == data.products[0].id,
            StockLevel.warehouse_id == data.warehouses[0].id,
        )
    ).scalar_one()
    assert (level.on_hand, level.allocated) == (25, 25)
    assert inventory.ledger_discrepancies() == []
    assert db.session.execute(select(func.sum(Allocation.quantity))).scalar_one() == 25


def test_records_hold_what_one_statement_wrote_for_them(clean_db) -> None:
    data = make_catalog()
    with unit_of_work():
        batch = orders.orders.create_many([_entry(data) for _ in range(2)], SETUP)
        entered = [order.updated_at for order in batch]
        lifecycle.confirm_many(batch, SETUP)
        stored = db.session.execute(
            select(SalesOrder.id, SalesOrder.status, SalesOrder.updated_at, SalesOrder.version)
            .where(SalesOrder.id.in_([order.id for order in batch]))
            .order_by(SalesOrder.id)
        ).all()
        in_memory = [(o.id, o.status, o.updated_at, o.version) for o in batch]
        assert in_memory == [tuple(row) for row in stored]
        assert all(row.updated_at > before for row, before in zip(stored, entered, strict=True))
        assert not any(db.session.is_modified(order) for order in batch)


def test_a_second_allocation_adds_to_the_existing_allocation_row(clean_db) -> None:
    data = make_catalog(stock=4)
    order = orders.orders.create_with_lines(*_entry(data, (10,)), SETUP)
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, SETUP)
    row = db.session.execute(select(Allocation)).scalar_one()
    assert row.quantity == 4
    inventory.receive(data.products[0].id, data.warehouses[0].id, 6, SETUP)
    fulfillment.allocate(order, SETUP)
    assert row.quantity == 10  # the loaded row was refreshed, not left stale
    assert _count(Allocation) == 1
    assert order.status == "allocated"


def test_a_row_changed_meanwhile_refuses_the_whole_allocation(clean_db) -> None:
    data = make_catalog()
    batch = orders.orders.create_many([_entry(data, (10,)) for _ in range(2)], SETUP)
    lifecycle.confirm_many(batch, SETUP)
    line = batch[1].lines[0]
    version = line.version
    with db.engine.begin() as other:  # another transaction edits the line
        other.execute(
            text("UPDATE order_line SET version = version + 1 WHERE id = :id"), {"id": line.id}
        )
    with pytest.raises(ConflictError):
        fulfillment.allocate_many(batch, SETUP)
    db.session.expire_all()
    assert [order.status for order in batch] == ["confirmed", "confirmed"]
    assert db.session.get(OrderLine, line.id).version == version + 1
    assert _count(Allocation) == 0
    assert inventory.ledger_discrepancies() == []


def test_a_batch_for_a_customer_with_a_price_list_keeps_its_orders_pending(clean_db) -> None:
    """Looking up a customer's prices while the batch is built must not insert the orders
    built so far: on PostgreSQL a batch takes its ids in advance (``assign_ids``), and an
    order inserted early had its primary key rewritten (a foreign-key violation)."""
    data = make_catalog()
    price_list = catalog.price_lists.create({"name": "Trade", "currency": "USD"}, SETUP)
    catalog.customers.update(data.customer, {"price_list_id": price_list.id}, SETUP)
    size = PREASSIGN_IDS_FROM + 5
    created = orders.orders.create_many([_entry(data, (n + 1,)) for n in range(size)], SETUP)
    db.session.expire_all()
    assert len({order.id for order in created}) == size
    assert _count(OrderLine) == size
