"""A bulk paste into a tracker is applied in batches through the services' batch path: a few
transactions instead of one per row, with the same per-row outcomes, audit events and
optimistic lock as applying the edits one by one."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from jobs.sync import sync_tracker
from portal.extensions import db
from portal.models import (
    AuditEvent,
    InventoryMovement,
    OrderLine,
    SalesOrder,
    StockLevel,
    TrackerSnapshot,
)
from portal.services import catalog, changes, orders, trackers
from portal.services.base import ConflictError
from portal.sync import adapters
from portal.sync.order_lines import OrderLinesKind
from portal.sync.orders import OrdersKind
from portal.sync.stock_levels import StockLevelsKind
from sheets.base_codec import base_to_json
from tests.conftest import wipe_business_tables
from tests.factories import SETUP, make_catalog
from tests.sync_helpers import ADMIN, TAB, init_workbook, make_tracker, sheet, sheet_events

ROWS = 120


def _orders(count: int) -> list[str]:
    cat = make_catalog()
    entries = [
        (
            {
                "customer_id": cat.customer.id,
                "customer_po": f"PO-{n}",
                "requested_date": date.today() + timedelta(days=30),
            },
            [{"product_id": cat.products[0].id, "quantity": 1}],
        )
        for n in range(count)
    ]
    made = orders.orders.create_many(entries, SETUP)
    return [order.number for order in made]


def _paste(path: Path, values: dict[str, dict[str, Any]]) -> None:
    """Paste many cells at once, as a person pasting a block in Excel: one save."""
    wb = load_workbook(path)
    ws = wb[TAB]
    headers = {str(c.value): c.column for c in ws[1] if c.value is not None}
    for row in range(2, ws.max_row + 1):
        for header, value in values.get(ws.cell(row, 1).value, {}).items():
            ws.cell(row, headers[header]).value = value
    wb.save(path)


def _cancel(number: str) -> None:
    order = db.session.execute(select(SalesOrder).where(SalesOrder.number == number)).scalar_one()
    changes.cancel_order(order, SETUP, "customer_request")


def _orders_paste(path: Path, numbers: list[str]) -> tuple[int, dict[str, dict[str, Any]]]:
    """An orders tracker; new POs and notes, and a date before the order date."""
    tracker = make_tracker(path)
    paste = {n: {"Customer PO": f"PASTED-{i}", "Notes": f"bulk {i}"} for i, n in enumerate(numbers)}
    paste[numbers[3]]["Requested"] = date(2000, 1, 1)
    return tracker.id, paste


def _lines_paste(path: Path, numbers: list[str]) -> tuple[int, dict[str, dict[str, Any]]]:
    """An order lines tracker (the preset columns); new quantities, and a quantity of 0."""
    tracker = trackers.trackers.create(
        {"name": "lines", "kind": "order_lines", "location": str(path), "tab": TAB}, ADMIN
    )
    init_workbook(tracker)
    paste = {f"{n}/1": {"Qty": 2 + i % 5, "Discount %": 5} for i, n in enumerate(numbers)}
    paste[f"{numbers[3]}/1"]["Qty"] = 0
    return tracker.id, paste


KINDS = {
    "orders": (_orders_paste, OrdersKind, "is before the order date", lambda n: n),
    "order_lines": (_lines_paste, OrderLinesKind, "must be a whole number above 0", "{}/1".format),
}


def _scenario(path: Path, kind: str) -> tuple[int, list[str]]:
    """Orders, a synced tracker, then a paste over every row: good edits, a bad value, and an
    order cancelled meanwhile (no longer editable from the sheet)."""
    numbers = _orders(ROWS)
    tracker_id, paste = KINDS[kind][0](path, numbers)
    assert sync_tracker(tracker_id)["status"] == "succeeded"
    _cancel(numbers[7])
    _paste(path, paste)
    return tracker_id, numbers


def _state(path: Path) -> dict[str, Any]:
    db.session.expire_all()
    records = {
        o.number: (o.customer_po, o.notes, o.requested_date, o.status, o.version)
        for o in db.session.execute(select(SalesOrder)).scalars()
    }
    lines = {
        (line.order_id, line.line_no): (line.quantity, line.discount_pct, line.version)
        for line in db.session.execute(select(OrderLine)).scalars()
    }
    status = {k: row["Sync status"] for k, row in sheet(path).items()}
    events = sheet_events()
    db.session.rollback()
    return {"records": records, "lines": lines, "events": events, "status": status}


def _commits() -> tuple[list[int], Any]:
    seen: list[int] = []

    def count(_session: Session) -> None:
        seen.append(1)

    event.listen(Session, "after_commit", count)
    return seen, count


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_paste_is_applied_in_batches_with_the_same_outcomes_as_row_by_row(
    clean_db, tmp_path, monkeypatch, kind
) -> None:
    _, kind_class, refusal, key = KINDS[kind]
    monkeypatch.setattr(adapters, "BATCH_ROWS", 50)
    batched = tmp_path / "batched.xlsx"
    tracker_id, numbers = _scenario(batched, kind)
    seen, count = _commits()
    try:
        outcome = sync_tracker(tracker_id)
    finally:
        event.remove(Session, "after_commit", count)
    assert outcome["applied"] == ROWS - 2 and outcome["errors"] == 2
    batched_commits = len(seen)
    expected = _state(batched)
    assert refusal in expected["status"][key(numbers[3])]
    assert "use an amendment" in expected["status"][key(numbers[7])]
    assert expected["events"]  # the applied edits, audited as the tracker

    wipe_business_tables()
    monkeypatch.setattr(kind_class, "batch_updates", False)  # one transaction per row
    single = tmp_path / "single.xlsx"
    tracker_id, numbers = _scenario(single, kind)
    seen, count = _commits()
    try:
        assert sync_tracker(tracker_id)["applied"] == ROWS - 2
    finally:
        event.remove(Session, "after_commit", count)
    assert _state(single) == expected
    assert len(seen) >= ROWS - 2  # a transaction per edit
    assert batched_commits <= ROWS // 50 + 6  # one per batch, plus the run's own


def test_a_batch_refuses_a_record_changed_meanwhile_and_writes_nothing(clean_db) -> None:
    numbers = _orders(3)
    found = list(
        db.session.execute(select(SalesOrder).where(SalesOrder.number.in_(numbers))).scalars()
    )
    with db.engine.begin() as other:  # another transaction changes one after it was read
        other.execute(
            text(
                "UPDATE sales_order SET notes = 'theirs', version = version + 1 WHERE number = :n"
            ),
            {"n": numbers[1]},
        )
    with pytest.raises(ConflictError):
        orders.orders.update_many([(o, {"notes": "mine"}) for o in found], SETUP)
    db.session.expire_all()
    notes = dict(db.session.execute(select(SalesOrder.number, SalesOrder.notes)).all())
    assert notes[numbers[1]] == "theirs"
    assert "mine" not in notes.values()


def _stock_scenario(path: Path) -> int:
    """A stock levels tracker over 40 products in two warehouses (80 levels), synced, then a
    pasted count of every level: good counts, a negative one and a blank one."""
    make_catalog(stock=0)
    for n in range(4, 41):
        catalog.products.create(
            {"sku": f"SKU-{n}", "name": f"Product {n}", "list_price": Decimal("1.00")}, SETUP
        )
    tracker = trackers.trackers.create(
        {"name": "stock", "kind": "stock_levels", "location": str(path), "tab": TAB}, ADMIN
    )
    init_workbook(tracker)
    assert sync_tracker(tracker.id)["status"] == "succeeded"
    paste: dict[str, dict[str, Any]] = {
        f"SKU-{n}@{w}": {"On hand": n * 10 + i}
        for n in range(1, 41)
        for i, w in enumerate(("W1", "W2"))
    }
    paste["SKU-3@W1"]["On hand"] = -5
    paste["SKU-4@W2"]["On hand"] = None
    _paste(path, paste)
    return tracker.id


def _stock_state(path: Path) -> dict[str, Any]:
    db.session.expire_all()
    levels = {
        (s.product_id, s.warehouse_id): (s.on_hand, s.version)
        for s in db.session.execute(select(StockLevel)).scalars()
    }
    moves = sorted(
        (m.product_id, m.warehouse_id, m.on_hand_delta, m.reason)
        for m in db.session.execute(select(InventoryMovement)).scalars()
    )
    events = sorted(
        (e.action, e.changes)
        for e in db.session.execute(
            select(AuditEvent).where(AuditEvent.actor.like("sheet:%"))
        ).scalars()
    )
    status = {k: row["Sync status"] for k, row in sheet(path).items()}
    db.session.rollback()
    return {"levels": levels, "moves": moves, "events": events, "status": status}


def test_a_pasted_stock_count_is_booked_in_batches_like_row_by_row(
    clean_db, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(adapters, "BATCH_ROWS", 30)
    batched = tmp_path / "batched.xlsx"
    tracker_id = _stock_scenario(batched)
    seen, count = _commits()
    try:
        outcome = sync_tracker(tracker_id)
    finally:
        event.remove(Session, "after_commit", count)
    assert outcome["applied"] == 78 and outcome["errors"] == 2, outcome
    batched_commits = len(seen)
    expected = _stock_state(batched)
    assert "must be a whole number of 0 or more" in expected["status"]["SKU-3@W1"]
    assert len(expected["moves"]) == 78  # one adjustment movement per booked count

    wipe_business_tables()
    monkeypatch.setattr(StockLevelsKind, "batch_updates", False)
    single = tmp_path / "single.xlsx"
    tracker_id = _stock_scenario(single)
    seen, count = _commits()
    try:
        assert sync_tracker(tracker_id)["applied"] == 78
    finally:
        event.remove(Session, "after_commit", count)
    assert _stock_state(single) == expected
    assert len(seen) >= 78 and batched_commits <= 80 // 30 + 6


def test_a_fold_after_a_paste_stores_the_whole_base_encoded(clean_db, tmp_path, monkeypatch):
    """The fold re-encodes only the rows that changed since the stored snapshot was read; the
    snapshot it stores is the whole effective base encoded, the pasted values included."""
    monkeypatch.setattr(trackers, "FOLD_AFTER", 5)  # the paste's patches fold at once
    numbers = _orders(30)
    path = tmp_path / "fold.xlsx"
    tracker = make_tracker(path)
    assert sync_tracker(tracker.id)["status"] == "succeeded"
    assert sync_tracker(tracker.id)["written"] == 0  # the stored snapshot is now cached
    _paste(path, {n: {"Notes": f"folded {i}"} for i, n in enumerate(numbers[:12])})
    assert sync_tracker(tracker.id)["applied"] == 12
    spec = tracker.spec()
    stored = json.loads(
        db.session.execute(
            select(TrackerSnapshot.base).where(TrackerSnapshot.tracker_id == tracker.id)
        ).scalar_one()
    )
    base, patches = trackers.load_base(tracker.id, spec)
    assert patches == []
    assert stored == base_to_json(spec, base)
    assert [stored[n]["Notes"] for n in numbers[:12]] == [f"folded {i}" for i in range(12)]
    assert stored[numbers[20]]["Notes"] == sheet(path)[numbers[20]]["Notes"]
