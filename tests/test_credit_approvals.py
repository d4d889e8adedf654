"""Credit approvals: segregation of duties, approval limits, the bulk queue, the API, and
two concurrent approvals that together exceed the balance — every refusal audited."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import AuditEvent, CreditMemo, Invoice
from portal.services import audit, credits, payments
from portal.services.base import ConflictError, PermissionDenied, ServiceError
from tests.conftest import actor, api_headers, login
from tests.test_finance import events, issued_invoice


def _request(invoice: Invoice, amount: str, who: str = "specialist") -> CreditMemo:
    return credits.request_credit(
        invoice, actor(who), reason_code="pricing_error", amount=Decimal(amount)
    )


def _unchanged(memo: CreditMemo, invoice: Invoice, balance: Decimal) -> None:
    db.session.expire_all()
    assert memo.status == "requested" and memo.decided_by is None and memo.version == 1
    assert invoice.balance == balance and invoice.amount_credited == 0


def _signed_in(app: Flask, username: str) -> FlaskClient:
    """A browser signed in as ``username``; the test's app context shares ``g`` with every
    request, so forget the previous request's user first."""
    for name in ("_login_user", "user"):
        g.pop(name, None)
    return login(app, username)


def _bulk(client: FlaskClient, action: str, memos: list[CreditMemo], **form: str) -> list[str]:
    """Run a bulk action of the approvals queue; the messages it flashed."""
    for name in ("_login_user", "user"):
        g.pop(name, None)
    client.post(
        "/creditapprovalview/action_post",
        data={"action": action, "rowid": [str(memo.id) for memo in memos], **form},
    )
    with client.session_transaction() as session:
        return [message for _, message in session.pop("_flashes", [])]


def test_requester_specialist_and_over_limit_supervisor_are_refused_and_audited(
    clean_db,
) -> None:
    invoice = issued_invoice((0, 0, 300), stock=400)  # 8,550.00
    own = _request(invoice, "10.00", who="supervisor")
    big = _request(invoice, "5000.01")
    cases = [
        (own, "supervisor", "segregation of duties"),
        (big, "specialist", "may not approve"),
        (big, "supervisor", "approval limit of 5000.00"),
        (big, "auditor", "may not approve"),
    ]
    for memo, who, reason in cases:
        with pytest.raises(PermissionDenied, match=reason):
            credits.approve(memo, actor(who))
        _unchanged(memo, invoice, Decimal("8550.00"))
        refusal = events("credit_memo", memo.id, "approve_refused")[-1]
        assert refusal.actor == who and reason in refusal.changes
    with pytest.raises(PermissionDenied, match="segregation of duties"):
        credits.reject(own, actor("supervisor"), "no")
    assert events("credit_memo", own.id, "reject_refused")
    credits.approve(big, actor("admin"))  # Admin has no limit
    credits.approve(own, actor("supervisor2"))
    db.session.expire_all()
    assert invoice.amount_credited == Decimal("5010.01")
    with pytest.raises(ConflictError, match="already approved"):
        credits.approve(own, actor("admin"))
    # a repeated decision is no refusal: nothing audited for it
    assert events("credit_memo", own.id, "approve_refused")[-1].actor == "supervisor"


def test_the_api_applies_the_same_rules_and_audits_fab_refusals(clean_db) -> None:
    app: Flask = clean_db
    invoice = issued_invoice((1, 7))  # 142.50
    client = app.test_client()
    created = client.post(
        "/api/v1/credit_memo/",
        json={"invoice_id": invoice.id, "reason_code": "shortage", "amount": "40.00"},
        headers=api_headers(app, "supervisor"),
    )
    assert created.status_code == 201, created.json
    memo_id = created.json["id"]
    url = f"/api/v1/credit_memo/{memo_id}"
    own = client.post(f"{url}/approve", headers=api_headers(app, "supervisor"))
    assert own.status_code == 403 and "segregation" in own.json["message"]
    specialist = client.post(f"{url}/approve", headers=api_headers(app, "specialist"))
    assert specialist.status_code == 403
    auditor = client.post(
        f"{url}/reject", json={"reason": "x"}, headers=api_headers(app, "auditor")
    )
    assert auditor.status_code == 403
    refusals = {(e.actor, e.action) for e in audit.history("credit_memo", memo_id)}
    assert {
        ("supervisor", "approve_refused"),
        ("specialist", "approve_refused"),
        ("auditor", "reject_refused"),
    } <= refusals
    assert len(events("credit_memo", memo_id, "approve_refused")) == 2  # no double audit
    other = api_headers(app, "supervisor2")
    no_reason = client.post(f"{url}/reject", json={}, headers=other)
    assert no_reason.status_code == 422
    unknown = client.post(f"{url}/approve", json={"sneaky": 1}, headers=other)
    assert unknown.status_code == 422
    assert client.get(url, headers=other).json["result"]["status"] == "requested"
    approved = client.post(f"{url}/approve", json={"note": "ok"}, headers=other)
    assert approved.status_code == 200, approved.json
    assert approved.json["result"]["status"] == "approved"
    assert approved.json["result"]["decided_by"] == "supervisor2"
    missing = client.post("/api/v1/credit_memo/999999/approve", headers=other)
    assert missing.status_code == 404
    db.session.expire_all()
    assert invoice.balance == Decimal("102.50")


def test_bulk_approval_reports_each_refused_row_and_audits_it(clean_db) -> None:
    app: Flask = clean_db
    invoice = issued_invoice((0, 0, 300), stock=400)
    fine = _request(invoice, "100.00")
    own = _request(invoice, "50.00", who="supervisor")
    big = _request(invoice, "6000.00")
    rows = [fine, own, big]
    denied = _bulk(_signed_in(app, "specialist"), "approve", rows)
    assert any("Access is Denied" in f for f in denied), denied
    for memo in (fine, own, big):
        assert events("credit_memo", memo.id, "approve_refused")[-1].actor == "specialist"
    flashes = _bulk(_signed_in(app, "supervisor"), "approve", rows)
    assert any(f.startswith(f"Approved: {fine.number}") for f in flashes), flashes
    assert any(own.number in f and "segregation of duties" in f for f in flashes), flashes
    assert any(big.number in f and "approval limit" in f for f in flashes), flashes
    db.session.expire_all()
    assert (fine.status, own.status, big.status) == ("approved", "requested", "requested")
    assert invoice.amount_credited == Decimal("100.00")
    rejected = _bulk(_signed_in(app, "supervisor2"), "reject", [own], note="duplicate request")
    assert any(f.startswith("Rejected:") for f in rejected), rejected
    db.session.expire_all()
    assert own.status == "rejected" and own.decided_by == "supervisor2"
    assert own.decision_note == "duplicate request"
    queue = _signed_in(app, "supervisor").get("/creditapprovalview/list/")
    assert big.number in queue.text and fine.number not in queue.text
    assert "USD 6,000.00" in queue.text  # money in lists carries its currency


def test_auditor_changes_nothing_but_can_export(clean_db) -> None:
    app: Flask = clean_db
    invoice = issued_invoice((1, 7))
    memo = _request(invoice, "1.00")
    client = app.test_client()
    headers = api_headers(app, "auditor")
    writes = [
        ("POST", "/api/v1/credit_memo/", {"invoice_id": invoice.id, "reason_code": "other"}),
        ("POST", f"/api/v1/credit_memo/{memo.id}/approve", {}),
        ("POST", "/api/v1/payment/", {"invoice_id": invoice.id, "amount": "1.00"}),
        ("POST", "/api/v1/dispute/", {"invoice_id": invoice.id, "dispute_type": "other"}),
        ("PUT", f"/api/v1/invoice/{invoice.id}", {"notes": "x"}),
        ("POST", f"/api/v1/invoice/{invoice.id}/void", {"reason": "x"}),
    ]
    for method, url, body in writes:
        assert client.open(url, method=method, json=body, headers=headers).status_code == 403
    for service_call in (
        lambda: payments.record_payment(invoice, actor("auditor"), amount="1.00"),
        lambda: _request(invoice, "1.00", who="auditor"),
    ):
        with pytest.raises(PermissionDenied):
            service_call()
    assert events("invoice", invoice.id, "payment_refused")[-1].actor == "auditor"
    exported = client.get("/api/v1/credit_memo/export?format=csv", headers=headers)
    assert exported.status_code == 200 and memo.number in exported.text
    db.session.expire_all()
    assert invoice.balance == Decimal("142.50") and memo.status == "requested"


def test_two_concurrent_approvals_never_drive_the_balance_negative(clean_db) -> None:
    app: Flask = clean_db
    invoice = issued_invoice((1, 7))  # 142.50
    # Requested credits reserve the balance, so both fit when requested; a payment then
    # leaves room for one of them only.
    first = _request(invoice, "60.00")
    second = _request(invoice, "60.00")
    payments.record_payment(invoice, actor("specialist"), amount=Decimal("42.50"))
    invoice_id, memo_ids = invoice.id, {"supervisor": first.id, "supervisor2": second.id}
    db.session.remove()
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def approve(who: str) -> None:
        with app.app_context():
            memo = db.session.get(CreditMemo, memo_ids[who])
            approver = actor(who)
            barrier.wait()
            try:
                credits.approve(memo, approver)
                outcomes[who] = "approved"
            except ServiceError as error:
                outcomes[who] = f"refused: {error.message}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=approve, args=(who,)) for who in memo_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(o.split(":")[0] for o in outcomes.values()) == ["approved", "refused"], outcomes
    assert any("below zero" in o for o in outcomes.values()), outcomes
    invoice = db.session.get(Invoice, invoice_id)
    assert invoice.balance >= 0
    assert invoice.amount_credited == Decimal("60.00")
    decided = db.session.query(CreditMemo).filter_by(status="approved").count()
    assert decided == 1
    assert audit.verify().ok


def test_audit_trail_shows_who_requested_approved_rejected_and_exported(clean_db) -> None:
    app: Flask = clean_db
    invoice = issued_invoice((1, 7))
    approved = _request(invoice, "5.00")
    rejected = _request(invoice, "6.00", who="specialist2")
    credits.approve(approved, actor("supervisor"))
    credits.reject(rejected, actor("supervisor2"), "duplicate request")
    response = app.test_client().get(
        "/api/v1/invoice/export?format=xlsx", headers=api_headers(app, "auditor")
    )
    assert response.status_code == 200
    trail = {
        (e.actor, e.entity, e.action)
        for e in db.session.query(AuditEvent).filter(
            AuditEvent.action.in_(("request", "approve", "reject", "export"))
        )
    }
    assert {
        ("specialist", "credit_memo", "request"),
        ("specialist2", "credit_memo", "request"),
        ("supervisor", "credit_memo", "approve"),
        ("supervisor2", "credit_memo", "reject"),
        ("auditor", "invoice", "export"),
    } <= trail
    assert audit.verify().ok


def test_bulk_reject_asks_for_the_reason_and_keeps_the_rows_ticked(clean_db) -> None:
    app: Flask = clean_db
    invoice = issued_invoice((1, 7))
    memo = _request(invoice, "1.00")
    client = _signed_in(app, "supervisor")
    queue = client.get("/creditapprovalview/list/").text
    assert 'name="note" form="action_form"' in queue
    refused = client.post(
        "/creditapprovalview/action_post",
        data={"action": "reject", "rowid": [str(memo.id)], "note": "  "},
    )
    assert refused.status_code == 422
    assert "Nothing rejected" in refused.text and "give the reason" in refused.text
    assert f'var kept = ["{memo.id}"]' in refused.text and memo.number in refused.text
    db.session.expire_all()
    assert memo.status == "requested"
    long = client.post(
        "/creditapprovalview/action_post",
        data={"action": "reject", "rowid": [str(memo.id)], "note": "x" * 401},
    )
    assert long.status_code == 422 and 'value="' + "x" * 401 + '"' in long.text
    db.session.expire_all()
    assert memo.status == "requested"
