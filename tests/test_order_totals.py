"""The stored order total (issue 18): every path that changes lines keeps ``sales_order.total``
equal to the sum of the lines' amounts, figured here by hand."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, text

from portal.extensions import db
from portal.models import OrderLine, SalesOrder, line_amount, utcnow
from portal.services import (
    changes,
    fulfillment,
    imports,
    lifecycle,
    order_entry,
    orders,
    price_overrides,
)
from portal.services.base import Actor
from portal.services.imports_fields import preset_mapping
from sheets.readers import read_table
from tests.conftest import actor
from tests.factories import SETUP, make_catalog
from tests.import_files import LINE_HEADERS, LINE_ROWS, write_xlsx

CLI = Actor.system("system:cli")


def _stored_total(order_id: int) -> Decimal:
    """The total as stored, read past the session's identity map."""
    return db.session.execute(
        select(SalesOrder.total).where(SalesOrder.id == order_id)
    ).scalar_one()


def _assert_every_total_is_the_sum_of_its_lines() -> None:
    sums: dict[int, Decimal] = {}
    for order_id, quantity, cancelled, price in db.session.execute(
        select(
            OrderLine.order_id, OrderLine.quantity, OrderLine.qty_cancelled, OrderLine.unit_price
        )
    ):
        sums[order_id] = sums.get(order_id, Decimal("0")) + line_amount(quantity, cancelled, price)
    stored = {i: t for i, t in db.session.execute(select(SalesOrder.id, SalesOrder.total))}
    assert stored == {order_id: sums.get(order_id, Decimal("0.00")) for order_id in stored}


def _order(data, *lines: tuple[int, int]) -> SalesOrder:
    return orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "requested_date": utcnow().date() + timedelta(days=14),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [{"product_id": data.products[p].id, "quantity": q} for p, q in lines],
        SETUP,
    )


def test_entry_edits_keep_the_total(clean_db) -> None:
    data = make_catalog()  # list prices 9.50, 19.00, 28.50
    order = _order(data, (0, 3), (1, 2))
    assert _stored_total(order.id) == Decimal("66.50")  # 3 × 9.50 + 2 × 19.00
    assert order.total == Decimal("66.50")
    first, second = order.lines
    order_entry.update_line(first, {"quantity": 4}, SETUP)
    assert _stored_total(order.id) == Decimal("76.00")  # 4 × 9.50 + 38.00
    order_entry.update_line(second, {"unit_price": Decimal("18.3333")}, SETUP)
    assert _stored_total(order.id) == Decimal("74.67")  # 38.00 + 36.6666 → 36.67
    orders.add_line(order, {"product_id": data.products[2].id, "quantity": 1}, SETUP)
    assert _stored_total(order.id) == Decimal("103.17")  # + 28.50
    order_entry.remove_line(second, SETUP)
    assert _stored_total(order.id) == Decimal("66.50")  # 38.00 + 28.50
    third = order.lines[-1]
    request = price_overrides.request_price(third, SETUP, Decimal("20.125"), "price match")
    assert _stored_total(order.id) == Decimal("66.50")  # a request changes nothing yet
    price_overrides.approve(request, actor("supervisor"), "agreed")
    assert _stored_total(order.id) == Decimal("58.12")  # 38.00 + 20.125 → 20.12 (half even)
    _assert_every_total_is_the_sum_of_its_lines()


def test_amendments_and_cancellations_keep_the_total(clean_db) -> None:
    data = make_catalog()
    order = _order(data, (0, 10), (1, 5))
    assert _stored_total(order.id) == Decimal("190.00")  # 95.00 + 95.00
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, SETUP)
    first, second = order.lines
    changes.amend(order, SETUP, reason="customer call", quantities={first.id: 6})
    assert _stored_total(order.id) == Decimal("152.00")  # 6 × 9.50 + 95.00
    changes.cancel_line(second, SETUP, "customer_request")
    assert _stored_total(order.id) == Decimal("57.00")  # the cancelled units count no more
    other = _order(data, (2, 2))
    lifecycle.confirm(other, SETUP)
    changes.cancel_order(other, SETUP, "customer_request")
    assert _stored_total(other.id) == Decimal("0.00")
    _assert_every_total_is_the_sum_of_its_lines()


def test_batch_paths_keep_the_total(clean_db) -> None:
    data = make_catalog()
    made = orders.orders.create_many(
        [
            (
                {"customer_id": data.customer.id},
                [{"product_id": data.products[0].id, "quantity": 1}],
            ),
            (
                {"customer_id": data.customer.id},
                [{"product_id": data.products[2].id, "quantity": 3}],
            ),
        ],
        SETUP,
    )
    assert [_stored_total(order.id) for order in made] == [Decimal("9.50"), Decimal("85.50")]
    # what a tracker's pasted rows go through: many lines, one executemany UPDATE
    edits = [(made[0].lines[0], {"quantity": 7}), (made[1].lines[0], {"quantity": 2})]
    assert orders.order_lines.update_many(edits, SETUP) == [None, None]
    assert [_stored_total(order.id) for order in made] == [Decimal("66.50"), Decimal("57.00")]
    _assert_every_total_is_the_sum_of_its_lines()


def _import(path: Path) -> imports.ImportResult:
    table = read_table(path)
    settings = imports.ImportOptions(preset_mapping("superstore", table.headers))
    return imports.import_orders(path, table, CLI, settings)


def _total_of(ref: str) -> Decimal:
    return db.session.execute(
        select(SalesOrder.total).where(SalesOrder.external_ref == ref)
    ).scalar_one()


def test_imports_and_their_undo_keep_the_total(clean_db, tmp_path: Path) -> None:
    first = _import(write_xlsx(tmp_path / "orders.xlsx", LINE_HEADERS, LINE_ROWS))
    assert first.counts["rows_refused"] == 0, first.to_json()
    # the Sales column is each line's amount
    assert _total_of("US-A1") == Decimal("993.90")  # 261.96 + 731.94
    assert _total_of("DE-B2") == Decimal("14.62")
    rows = [list(row) for row in LINE_ROWS]
    rows[2][16:18] = [21.93, 3]  # DE-B2: 3 units, not 2
    rows.append([5, *rows[0][1:13], "OFF-3", "Office Supplies", "Etiketten", 29.24, 4, 0])
    corrected = _import(write_xlsx(tmp_path / "orders.xlsx", LINE_HEADERS, rows))
    assert _total_of("DE-B2") == Decimal("21.93")
    assert _total_of("US-A1") == Decimal("1023.14")  # a line added: + 29.24
    _assert_every_total_is_the_sum_of_its_lines()
    imports.undo(corrected.run_id, CLI)
    assert _total_of("US-A1") == Decimal("993.90")
    assert _total_of("DE-B2") == Decimal("14.62")
    _assert_every_total_is_the_sum_of_its_lines()


def _waiting_on_locks(threads: list[threading.Thread], errors: list[BaseException]) -> None:
    """Poll (with a deadline) until the threads' sessions wait on a lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()"
    )
    deadline = utcnow() + timedelta(seconds=180)
    # autocommit: each poll sees the activity anew (a transaction keeps its first snapshot)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        while conn.execute(query).scalar_one() < len(threads):
            assert not errors, errors
            assert all(t.is_alive() for t in threads), "an edit finished without waiting"
            assert utcnow() < deadline, "the two edits never met at the order's lock"


@pytest.mark.postgres  # SQLite runs one writer at a time
def test_concurrent_edits_of_two_lines_leave_the_sum_of_both(clean_db, app: Flask) -> None:
    """Two writers change different lines of one order at the same moment (each line under
    its own optimistic lock): the total has both changes, whichever commits first."""
    data = make_catalog()
    order = _order(data, (0, 1), (1, 1))
    line_ids = [line.id for line in order.lines]
    db.session.commit()
    errors: list[BaseException] = []

    def edit(line_id: int, quantity: int) -> None:
        try:
            with app.app_context():
                line = db.session.get(OrderLine, line_id)
                order_entry.update_line(line, {"quantity": quantity}, SETUP)
                db.session.remove()
        except BaseException as error:  # reported by the test's thread
            errors.append(error)

    holder = db.engine.connect()  # holds the order's row so both edits queue behind it
    transaction = holder.begin()
    holder.execute(text("SELECT id FROM sales_order WHERE id = :id FOR UPDATE"), {"id": order.id})
    threads = [
        threading.Thread(target=edit, args=(line_ids[0], 4)),
        threading.Thread(target=edit, args=(line_ids[1], 3)),
    ]
    for thread in threads:
        thread.start()
    try:
        _waiting_on_locks(threads, errors)
    finally:
        transaction.rollback()
        holder.close()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    db.session.expire_all()
    assert _stored_total(order.id) == Decimal("95.00")  # 4 × 9.50 + 3 × 19.00
    _assert_every_total_is_the_sum_of_its_lines()
