"""Dispute and credit memo trackers: sheet edits go through the finance services."""

from __future__ import annotations

from decimal import Decimal

from jobs.sync import sync_tracker
from portal.extensions import db
from portal.models import AuditEvent, CreditMemo, Dispute
from portal.services import credits, disputes, invoices, trackers
from tests.conftest import actor
from tests.factories import SETUP, make_catalog, shipped_order
from tests.sync_helpers import ADMIN, append_row, edit, init_workbook, sheet


def _issued_invoice():
    _, shipment = shipped_order(make_catalog())
    return invoices.invoice_shipment(shipment, SETUP)


def _tracker(tmp_path, kind: str, name: str):
    path = tmp_path / f"{name}.xlsx"
    tracker = trackers.trackers.create(
        {"name": name, "kind": kind, "location": str(path), "tab": "Orders", "may_create": True},
        ADMIN,
    )
    init_workbook(tracker)
    sync_tracker(tracker.id)
    return tracker, path


def test_disputes_tracker_edits_moves_and_opens_disputes(clean_db, tmp_path) -> None:
    invoice = _issued_invoice()
    dispute = disputes.open_dispute(
        invoice, actor("specialist"), dispute_type="shortage", amount=Decimal("9.50")
    )
    tracker, path = _tracker(tmp_path, "disputes", "disputes")
    assert sheet(path)[dispute.number]["Status"] == "open"
    edit(path, dispute.number, {"Owner": "supervisor", "Status": "investigating"})
    assert sync_tracker(tracker.id)["applied"] == 1
    db.session.expire_all()
    stored = db.session.get(Dispute, dispute.id)
    assert (stored.owner, stored.status) == ("supervisor", "investigating")
    edit(path, dispute.number, {"Status": "resolved"})  # no root cause yet: refused, kept
    assert sync_tracker(tracker.id)["errors"] == 1
    assert "root_cause" in sheet(path)[dispute.number]["Sync status"]
    edit(path, dispute.number, {"Root cause": "picking_error", "Corrective action": "recount"})
    assert sync_tracker(tracker.id)["applied"] == 1
    db.session.expire_all()
    assert db.session.get(Dispute, dispute.id).status == "resolved"
    row = append_row(
        path,
        {"Invoice": invoice.number, "Type": "pricing", "Amount": 5, "Owner": "specialist"},
    )
    assert sync_tracker(tracker.id)["created"] == 1
    new = db.session.query(Dispute).order_by(Dispute.id.desc()).first()
    assert new.dispute_type == "pricing" and new.opened_by == f"sheet:{tracker.name}"
    assert new.number in sheet(path) and row > 2
    events = db.session.query(AuditEvent).filter_by(actor="sheet:disputes").all()
    assert {"update", "investigate", "resolved", "open"} <= {e.action for e in events}


def test_credit_memo_tracker_requests_credits_but_never_approves(clean_db, tmp_path) -> None:
    invoice = _issued_invoice()
    memo = credits.request_credit(
        invoice, actor("specialist"), reason_code="damaged", amount=Decimal("5.00")
    )
    tracker, path = _tracker(tmp_path, "credit_memos", "credits")
    assert sheet(path)[memo.number]["Status"] == "requested"
    edit(path, memo.number, {"Status": "approved"})  # a portal-owned column: reverted
    sync_tracker(tracker.id)
    assert sheet(path)[memo.number]["Status"] == "requested"
    db.session.expire_all()
    assert db.session.get(CreditMemo, memo.id).status == "requested"
    append_row(path, {"Invoice": invoice.number, "Reason": "goodwill", "Amount": 2})
    assert sync_tracker(tracker.id)["created"] == 1
    made = db.session.query(CreditMemo).order_by(CreditMemo.id.desc()).first()
    assert (made.amount, made.status, made.requested_by) == (
        Decimal("2.00"),
        "requested",
        "sheet:credits",
    )
    append_row(path, {"Invoice": "INV-999999", "Reason": "goodwill", "Amount": 1})
    outcome = sync_tracker(tracker.id)
    assert outcome["errors"] == 1 and outcome["created"] == 0
