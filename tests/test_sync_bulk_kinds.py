"""Bulk sheet edits of shipments, disputes and credit memos: a batch per transaction, a
savepoint per edit (``portal.services.transactions``), with the same records, audit events
and status cells as one transaction per edit; a refused edit loses nothing else."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from jobs.sync import sync_tracker
from portal.extensions import db
from portal.models import AuditEvent, CreditMemo, Dispute, SalesOrder, Shipment, utcnow
from portal.services import credits, disputes, invoices, orders, trackers
from portal.services.base import ValidationFailed, after_commit, unit_of_work
from portal.services.transactions import each_in_savepoint
from portal.sync import adapters
from portal.sync.credit_memos import CreditMemosKind
from portal.sync.disputes import DisputesKind
from portal.sync.shipments import ShipmentsKind
from tests.conftest import actor, wipe_business_tables
from tests.factories import SETUP, make_catalog, shipped_order
from tests.sync_helpers import (
    ADMIN,
    TAB,
    init_workbook,
    make_orders,
    make_tracker,
    sheet,
    sheet_events,
)
from tests.test_sync_bulk import _paste

ROWS = 24
BATCH = 10
TODAY = utcnow().date()


def _tracker(path: Path, kind: str) -> int:
    tracker = trackers.trackers.create(
        {"name": kind, "kind": kind, "location": str(path), "tab": TAB}, ADMIN
    )
    init_workbook(tracker)
    assert sync_tracker(tracker.id)["status"] == "succeeded"
    return tracker.id


def _shipments(path: Path) -> tuple[int, dict[str, dict[str, Any]], dict[str, str]]:
    """Shipped orders; new carriers and tracking numbers, one delivery, an ETA before the ship
    date and a delivery in the future (refused)."""
    cat = make_catalog(stock=1000)
    numbers = [shipped_order(cat, 1, customer_po=f"PO-{n}")[1].number for n in range(ROWS)]
    paste = {n: {"Carrier": f"UPS-{i}", "Tracking": f"T-{i}"} for i, n in enumerate(numbers)}
    paste[numbers[2]]["Delivered"] = TODAY
    paste[numbers[3]]["ETA"] = date(2000, 1, 1)
    paste[numbers[5]]["Delivered"] = TODAY + timedelta(days=3)
    refused = {numbers[3]: "is before the ship date", numbers[5]: "is in the future"}
    return _tracker(path, "shipments"), paste, refused


def _invoice() -> Any:
    _, shipment = shipped_order(make_catalog(stock=1000), 20)
    return invoices.invoice_shipment(shipment, SETUP)


def _disputes(path: Path) -> tuple[int, dict[str, dict[str, Any]], dict[str, str]]:
    """Open disputes; new owners and amounts, one investigated, one resolved without a root
    cause (refused), one negative amount (refused)."""
    invoice = _invoice()
    numbers = [
        disputes.open_dispute(
            invoice, actor("specialist"), dispute_type="pricing", amount=Decimal("0.10")
        )
        for _ in range(ROWS)
    ]
    numbers = [d.number for d in numbers]
    paste = {n: {"Owner": "supervisor", "Amount": 0.2 + i / 100} for i, n in enumerate(numbers)}
    paste[numbers[2]]["Status"] = "investigating"
    paste[numbers[3]]["Status"] = "resolved"
    paste[numbers[5]]["Amount"] = -1
    refused = {numbers[3]: "root_cause", numbers[5]: "amount"}
    return _tracker(path, "disputes"), paste, refused


def _credit_memos(path: Path) -> tuple[int, dict[str, dict[str, Any]], dict[str, str]]:
    """Requested credits; a pasted note on each is refused (approval stays in the portal)."""
    invoice = _invoice()
    memos = [
        credits.request_credit(invoice, SETUP, reason_code="goodwill", amount=Decimal("0.10"))
        for _ in range(ROWS)
    ]
    paste = {m.number: {"Note": f"pasted {i}"} for i, m in enumerate(memos)}
    refused = {m.number: "approved or rejected in the portal" for m in memos}
    return _tracker(path, "credit_memos"), paste, refused


KINDS = {
    "shipments": (_shipments, ShipmentsKind, Shipment, ("carrier", "tracking_number", "status")),
    "disputes": (_disputes, DisputesKind, Dispute, ("owner", "amount", "status")),
    "credit_memos": (_credit_memos, CreditMemosKind, CreditMemo, ("reason_text", "status")),
}


def _state(path: Path, model: type, fields: tuple[str, ...]) -> dict[str, Any]:
    db.session.expire_all()
    records = {
        r.number: (*(getattr(r, f) for f in fields), r.version)
        for r in db.session.execute(select(model)).scalars()
    }
    orders_ = {
        o.number: (o.status, o.version) for o in db.session.execute(select(SalesOrder)).scalars()
    }
    status = {k: row["Sync status"] for k, row in sheet(path).items()}
    events = sheet_events()
    db.session.rollback()
    return {"records": records, "orders": orders_, "events": events, "status": status}


def _synced(tracker_id: int) -> tuple[dict[str, Any], int]:
    """Sync; its outcome and how many transactions committed."""
    seen: list[int] = []

    def count(sess: Session) -> None:
        if not sess.in_nested_transaction():
            seen.append(1)

    event.listen(Session, "after_commit", count)
    try:
        outcome = sync_tracker(tracker_id)
    finally:
        event.remove(Session, "after_commit", count)
    return outcome, len(seen)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_paste_is_applied_a_batch_per_transaction_with_the_same_outcomes_as_row_by_row(
    clean_db, tmp_path, monkeypatch, kind
) -> None:
    scenario, kind_class, model, fields = KINDS[kind]
    assert kind_class.batch_updates
    monkeypatch.setattr(adapters, "BATCH_ROWS", BATCH)
    batched = tmp_path / "batched.xlsx"
    tracker_id, paste, refused = scenario(batched)
    _paste(batched, paste)
    outcome, batched_commits = _synced(tracker_id)
    assert outcome["errors"] == len(refused)
    assert outcome["applied"] == ROWS - len(refused)
    expected = _state(batched, model, fields)
    for key, reason in refused.items():
        assert reason in expected["status"][key]
    assert bool(expected["events"]) == (outcome["applied"] > 0)

    wipe_business_tables()
    monkeypatch.setattr(kind_class, "batch_updates", False)  # one transaction per edit
    single = tmp_path / "single.xlsx"
    tracker_id, paste, _ = scenario(single)
    _paste(single, paste)
    outcome, single_commits = _synced(tracker_id)
    assert outcome["applied"] == ROWS - len(refused)
    assert _state(single, model, fields) == expected
    if outcome["applied"]:
        assert single_commits >= ROWS - len(refused)  # a transaction per applied edit
        assert batched_commits <= ROWS // BATCH + 6  # one per batch, plus the run's own


def test_a_shipment_delivered_in_a_batch_is_delivered_and_notified_once(clean_db, tmp_path) -> None:
    path = tmp_path / "shipments.xlsx"
    tracker_id, paste, _ = _shipments(path)
    delivered = next(k for k, v in paste.items() if v.get("Delivered") == TODAY)
    _paste(path, {delivered: paste[delivered]})
    assert sync_tracker(tracker_id)["applied"] == 1
    db.session.expire_all()
    shipment = db.session.execute(select(Shipment).where(Shipment.number == delivered)).scalar_one()
    assert (shipment.status, shipment.order.status) == ("delivered", "delivered")
    assert sheet(path)[delivered]["Delivered"] == TODAY


def _three_orders() -> list[SalesOrder]:
    cat = make_catalog()
    entries = [
        (
            {"customer_id": cat.customer.id, "requested_date": TODAY + timedelta(days=30)},
            [{"product_id": cat.products[0].id, "quantity": 1}],
        )
        for _ in range(3)
    ]
    return orders.orders.create_many(entries, SETUP)


def test_a_refused_edit_is_rolled_back_alone_and_the_others_commit_once(clean_db) -> None:
    made = _three_orders()
    ran: list[str] = []

    def edit(order: SalesOrder) -> str:
        orders.orders.update(order, {"notes": f"batch {order.number}"}, SETUP)
        after_commit(lambda n=order.number: ran.append(n))
        if order is made[1]:
            raise ValidationFailed({"notes": ["refused after it was written"]})
        return order.number

    with unit_of_work():
        outcomes = each_in_savepoint(made, edit)
        assert ran == []  # a released savepoint is not a commit
    assert outcomes[0] == made[0].number and outcomes[2] == made[2].number
    assert isinstance(outcomes[1], ValidationFailed)
    assert ran == [made[0].number, made[2].number]
    db.session.expire_all()
    notes = dict(db.session.execute(select(SalesOrder.number, SalesOrder.notes)).all())
    assert notes[made[0].number] == f"batch {made[0].number}"
    assert notes[made[1].number] != f"batch {made[1].number}"
    assert notes[made[2].number] == f"batch {made[2].number}"
    audited = {
        e.entity_id
        for e in db.session.execute(
            select(AuditEvent).where(
                AuditEvent.action == "update", AuditEvent.entity == "sales_order"
            )
        ).scalars()
    }
    assert audited == {str(made[0].id), str(made[2].id)}


def _typed_rows(path: Path) -> int:
    """An orders tracker, then many new rows typed (one naming an unknown customer)."""
    make_orders(1)
    tracker = make_tracker(path)
    assert sync_tracker(tracker.id)["status"] == "succeeded"
    wb = load_workbook(path)
    ws = wb[TAB]
    headers = {str(c.value): c.column for c in ws[1] if c.value is not None}
    for n in range(ROWS):
        row = ws.max_row + 1
        typed = {"Customer": "NOPE" if n == 4 else "C1", "Customer PO": f"NEW-{n}"}
        for header, value in {**typed, "Notes": f"typed {n}"}.items():
            ws.cell(row, headers[header]).value = value
    wb.save(path)
    return tracker.id


def _new_orders(path: Path) -> dict[str, Any]:
    db.session.expire_all()
    made = db.session.execute(
        select(SalesOrder.number, SalesOrder.customer_po, SalesOrder.notes, SalesOrder.version)
    ).all()
    state = {
        "orders": sorted(tuple(o) for o in made),
        "events": sheet_events(),
        "sheet": {k: (r["Customer PO"], r["Sync status"]) for k, r in sheet(path).items()},
        "refused": [r["Sync status"] for k, r in sheet(path).items() if k.startswith("#")],
    }
    db.session.rollback()
    return state


def test_new_rows_are_created_a_batch_per_transaction_like_row_by_row(
    clean_db, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(adapters, "BATCH_ROWS", BATCH)
    batched = tmp_path / "batched.xlsx"
    tracker_id = _typed_rows(batched)
    outcome, batched_commits = _synced(tracker_id)
    assert (outcome["created"], outcome["errors"]) == (ROWS - 1, 1)
    expected = _new_orders(batched)
    assert len(expected["orders"]) == ROWS  # the one before, and the new rows but one
    assert any("no customer with code NOPE" in (s or "") for s in expected["refused"])

    wipe_business_tables()
    monkeypatch.setattr(adapters, "BATCH_ROWS", 1)  # a transaction per new row
    single = tmp_path / "single.xlsx"
    tracker_id = _typed_rows(single)
    outcome, single_commits = _synced(tracker_id)
    assert (outcome["created"], outcome["errors"]) == (ROWS - 1, 1)
    assert _new_orders(single) == expected
    assert single_commits >= ROWS - 1
    assert batched_commits <= ROWS // BATCH + 6
