"""Disputes: due date by type, the state machine with required root cause and corrective
action, credits raised by a resolution, ageing and overdue flags, the API and the pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import CreditMemo
from portal.services import audit, credits, disputes
from portal.services.base import ConflictError, ValidationFailed
from tests.conftest import actor, api_headers, login
from tests.test_finance import events, issued_invoice

TODAY = datetime.now(UTC).date()


def test_a_dispute_is_due_by_its_type_and_must_be_investigated_before_resolving(
    clean_db,
) -> None:
    invoice = issued_invoice((1, 7))
    clerk = actor("specialist")
    dispute = disputes.open_dispute(invoice, clerk, dispute_type="shortage", amount="19.00")
    assert dispute.number == "DSP-000001" and dispute.owner == "specialist"
    assert dispute.due_date == TODAY + timedelta(days=7)
    with pytest.raises(ValidationFailed) as caught:
        disputes.open_dispute(invoice, clerk, dispute_type="weather", amount="1", owner="nobody")
    assert set(caught.value.field_errors) == {"dispute_type", "owner"}
    colleague = actor("specialist2")  # the one who opened it does not resolve it
    with pytest.raises(ConflictError, match="cannot go from open to resolved"):
        disputes.resolve(
            dispute, colleague, root_cause="picking_error", corrective_action="recount"
        )
    assert dispute.status == "open" and events("dispute", dispute.id, "resolve_refused")
    disputes.investigate(dispute, clerk, owner="supervisor")
    with pytest.raises(ValidationFailed) as caught:
        disputes.resolve(dispute, colleague, root_cause="", corrective_action=" ")
    assert set(caught.value.field_errors) == {"root_cause", "corrective_action"}
    db.session.expire_all()
    assert dispute.status == "investigating" and dispute.root_cause is None
    disputes.resolve(
        dispute,
        colleague,
        root_cause="picking_error",
        corrective_action="Pick lists double-checked",
        note="two units short",
        credit_amount=Decimal("19.00"),
    )
    memo = db.session.query(CreditMemo).filter_by(dispute_id=dispute.id).one()
    assert (memo.status, memo.amount, memo.requested_by) == (
        "requested",
        Decimal("19.00"),
        colleague.name,
    )
    credits.approve(memo, actor("supervisor"))
    db.session.expire_all()
    assert invoice.balance == Decimal("123.50")
    with pytest.raises(ConflictError, match="resolved and cannot change"):
        disputes.disputes.update(dispute, {"owner": "specialist2"}, clerk)
    history = [event.action for event in audit.history("dispute", dispute.id)]
    assert history[:3] == ["open", "resolve_refused", "investigate"]
    assert "resolved" in history


def test_rejecting_needs_a_reason_and_closes_the_dispute(clean_db) -> None:
    invoice = issued_invoice((1, 7))
    dispute = disputes.open_dispute(
        invoice, actor("specialist"), dispute_type="pricing", amount="0"
    )
    with pytest.raises(ValidationFailed, match="reason"):
        disputes.reject(dispute, actor("supervisor"), reason="")
    disputes.reject(
        dispute, actor("supervisor"), reason="price as agreed", root_cause="no_fault_found"
    )
    assert dispute.status == "rejected" and dispute.closed_by == "supervisor"
    assert not dispute.is_overdue


def test_ageing_buckets_and_overdue_flags(clean_db) -> None:
    invoice = issued_invoice((1, 7))
    clerk = actor("specialist")
    late = disputes.open_dispute(invoice, clerk, dispute_type="duplicate_billing", amount="9.50")
    recent = disputes.open_dispute(invoice, clerk, dispute_type="other", amount="5.00")
    disputes.disputes.update(late, {"due_date": TODAY - timedelta(days=1)}, clerk)
    assert late.is_overdue and not recent.is_overdue
    now = disputes.ageing()
    assert now.open_count == 2 and [d.number for d in now.overdue] == [late.number]
    assert now.buckets[0] == ("0–7 days", 2, Decimal("14.50"))
    later = disputes.ageing(TODAY + timedelta(days=45))
    assert dict((label, count) for label, count, _ in later.buckets)["31–60 days"] == 2
    assert len(later.overdue) == 2
    page = login(clean_db, "specialist").get("/disputes/ageing/")
    assert page.status_code == 200 and late.number in page.text


def test_dispute_api_and_decide_page(clean_db) -> None:
    app: Flask = clean_db
    invoice = issued_invoice((1, 7))
    client = app.test_client()
    clerk = api_headers(app, "specialist")
    opened = client.post(
        "/api/v1/dispute/",
        json={"invoice_id": invoice.id, "dispute_type": "damaged", "amount": "9.50"},
        headers=clerk,
    )
    assert opened.status_code == 201, opened.json
    url = f"/api/v1/dispute/{opened.json['id']}"
    assert client.post(f"{url}/resolve", json={}, headers=clerk).status_code == 422
    assert client.post(f"{url}/investigate", headers=clerk).status_code == 200
    auditor = api_headers(app, "auditor")
    assert client.post(f"{url}/investigate", headers=auditor).status_code == 403
    body = {"root_cause": "packing_damage", "corrective_action": "Better pallets"}
    resolved = client.post(f"{url}/resolve", json=body, headers=api_headers(app, "specialist2"))
    assert resolved.status_code == 200, resolved.json
    assert resolved.json["result"]["status"] == "resolved"
    again = client.post(f"{url}/reject", json={"reason": "late"}, headers=clerk)
    assert again.status_code == 409
    other = disputes.open_dispute(invoice, actor("specialist"), dispute_type="other", amount="1")
    disputes.investigate(other, actor("specialist"))
    page = login(app, "specialist2").post(
        f"/disputeview/decide/{other.id}",
        data={"decision": "resolve", "root_cause": "carrier", "corrective_action": "Claim"},
    )
    assert page.status_code == 302
    db.session.expire_all()
    assert other.status == "resolved" and other.root_cause == "carrier"
