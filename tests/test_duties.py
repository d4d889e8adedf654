"""The daily duties' rules (issue 14): each one in the service, and on its page.

Service rules: a delivery is never recorded for a future date; nobody authorizes a return
they requested, and only a Supervisor authorizes one; a dispute one opened oneself is resolved
only by a Supervisor; credits waiting for approval reserve the invoice's balance. Pages: the
shipment page lists its lines and saves carrier details staying on the record; a refused
delivery date is shown again with the reason; a return is requested from the units shipped
(no line id typed); the buttons follow the state table and the role.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import (
    AuditEvent,
    ReturnAuthorization,
    ReturnStatus,
    Shipment,
    ShipmentStatus,
    utcnow,
)
from portal.services import credits, disputes, fulfillment, returns, states
from portal.services.base import PermissionDenied, ValidationFailed
from tests.conftest import actor, login
from tests.factories import SETUP, make_catalog
from tests.test_finance import issued_invoice, shipped_order


def _shipment() -> Shipment:
    _, shipment = shipped_order(make_catalog(stock=100), (2, 3))
    return shipment


# -- Shipments --------------------------------------------------------------------------------


def test_a_delivery_date_in_the_future_is_refused(clean_db) -> None:
    shipment = _shipment()
    tomorrow = utcnow().date() + timedelta(days=1)
    with pytest.raises(ValidationFailed) as refused:
        fulfillment.deliver(shipment, actor("specialist"), tomorrow)
    assert refused.value.field_errors == {"delivered_date": [f"{tomorrow} is in the future"]}
    db.session.rollback()
    stored = db.session.get(Shipment, shipment.id)
    assert (stored.status, stored.delivered_date) == (ShipmentStatus.SHIPPED.value, None)
    fulfillment.deliver(stored, actor("specialist"), utcnow().date())
    assert stored.delivered_date == utcnow().date()


def test_the_shipment_page_lists_its_lines_and_saves_staying_on_it(clean_db: Flask) -> None:
    shipment = _shipment()
    client = login(clean_db, "specialist")
    page = client.get(f"/shipmentview/show/{shipment.id}").get_data(as_text=True)
    for item in shipment.lines:
        assert item.order_line.product.sku in page
    assert "Version" not in page and ">None<" not in page
    assert f'href="/salesorderview/show/{shipment.order_id}"' in page
    answer = client.post(
        f"/shipmentview/update/{shipment.id}",
        data={"carrier": "DHL", "tracking_number": "TRK-9", "version": str(shipment.version)},
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/shipmentview/show/{shipment.id}")
    db.session.expire_all()
    stored = db.session.get(Shipment, shipment.id)
    assert (stored.carrier, stored.tracking_number) == ("DHL", "TRK-9")


def test_a_future_delivery_typed_on_the_page_is_shown_again_with_the_reason(clean_db) -> None:
    shipment = _shipment()
    tomorrow = (utcnow().date() + timedelta(days=1)).isoformat()
    client = login(clean_db, "specialist")
    answer = client.post(f"/shipmentview/deliver/{shipment.id}", data={"delivered_date": tomorrow})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert f"{tomorrow} is in the future" in page
    assert f'value="{tomorrow}"' in page  # the input is kept
    db.session.expire_all()
    assert db.session.get(Shipment, shipment.id).delivered_date is None


def test_an_auditor_sees_no_shipment_forms(clean_db) -> None:
    shipment = _shipment()
    page = login(clean_db, "auditor").get(f"/shipmentview/show/{shipment.id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="shipment-update-form"' not in text and 'id="action-deliver"' not in text


# -- Returns ----------------------------------------------------------------------------------


def _requested_return(by: str = "specialist") -> ReturnAuthorization:
    shipment = _shipment()
    line = shipment.lines[0].order_line
    return returns.request_return(
        shipment.order, actor(by), lines={line.id: 1}, reason="damaged", warehouse_id=1
    )


def test_the_requester_never_authorizes_their_own_return(clean_db) -> None:
    rma = _requested_return("supervisor")
    with pytest.raises(PermissionDenied, match="requested"):
        returns.authorize(rma, actor("supervisor"))
    db.session.rollback()
    assert states.actions(rma, actor("supervisor")) == ["reject"]
    returns.authorize(rma, actor("supervisor2"))
    assert rma.status == ReturnStatus.AUTHORIZED.value


def test_only_a_supervisor_authorizes_a_return(clean_db) -> None:
    rma = _requested_return("specialist")
    with pytest.raises(PermissionDenied):
        returns.authorize(rma, actor("specialist2"))
    db.session.rollback()
    assert "authorize" not in states.actions(rma, actor("specialist2"))
    assert "authorize" in states.actions(rma, actor("supervisor"))
    # The route itself is a Supervisor's: a Specialist's POST is refused and audited.
    answer = login(clean_db, "specialist2").post(f"/returnview/authorize/{rma.id}")
    assert answer.status_code == 403
    assert db.session.get(ReturnAuthorization, rma.id).status == ReturnStatus.REQUESTED.value
    refused = db.session.query(AuditEvent).filter_by(action="authorize_refused").all()
    assert [event.actor for event in refused] == ["specialist2"]


def test_a_return_is_requested_from_the_units_shipped(clean_db) -> None:
    shipment = _shipment()
    lines = {item.order_line.line_no: item.order_line for item in shipment.lines}
    client = login(clean_db, "specialist")
    form = client.get(f"/returnview/request/{shipment.id}").get_data(as_text=True)
    assert lines[1].product.sku in form and lines[2].product.sku in form
    too_many = client.post(
        f"/returnview/request/{shipment.id}",
        data={f"qty_{lines[1].id}": "9", "warehouse_id": "1", "reason": "wrong size"},
    )
    assert too_many.status_code == 422
    assert "only 2 shipped units can be returned" in too_many.get_data(as_text=True)
    assert 'value="wrong size"' in too_many.get_data(as_text=True)
    made = client.post(
        f"/returnview/request/{shipment.id}",
        data={f"qty_{lines[1].id}": "1", "warehouse_id": "1", "reason": "wrong size"},
    )
    assert made.status_code == 302
    rma = db.session.query(ReturnAuthorization).one()
    assert made.headers["Location"].endswith(f"/returnview/show/{rma.id}")
    assert [(line.order_line_id, line.quantity) for line in rma.lines] == [(lines[1].id, 1)]
    assert rma.requested_by == "specialist"


def test_a_return_is_received_per_line_with_its_condition(clean_db) -> None:
    rma = _requested_return()
    returns.authorize(rma, actor("supervisor"))
    line = rma.lines[0]
    client = login(clean_db, "specialist")
    page = client.get(f"/returnview/show/{rma.id}").get_data(as_text=True)
    assert "Back to stock" in page and "Scrapped" in page
    answer = client.post(
        f"/returnview/receive/{rma.id}",
        data={f"qty_{line.id}": "1", f"condition_{line.id}": "scrap"},
    )
    assert answer.status_code == 302
    db.session.expire_all()
    stored = db.session.get(ReturnAuthorization, rma.id)
    assert stored.status == ReturnStatus.RECEIVED.value
    assert (stored.lines[0].received_quantity, stored.lines[0].condition) == (1, "scrap")


# -- Disputes and credits -----------------------------------------------------------------------


def _investigated(by: str) -> disputes.Dispute:
    invoice = issued_invoice()
    dispute = disputes.open_dispute(
        invoice, actor(by), dispute_type="pricing", amount=Decimal("5.00")
    )
    return disputes.investigate(dispute, actor(by))


RESOLUTION = {"root_cause": "price_list_error", "corrective_action": "fixed the price list"}


def test_resolving_ones_own_dispute_needs_a_supervisor(clean_db) -> None:
    dispute = _investigated("specialist")
    with pytest.raises(PermissionDenied, match="needs a Supervisor"):
        disputes.resolve(dispute, actor("specialist"), **RESOLUTION)
    db.session.rollback()
    assert states.actions(dispute, actor("specialist")) == ["reject"]
    assert "resolve" in states.actions(dispute, actor("specialist2"))
    disputes.resolve(dispute, actor("supervisor"), **RESOLUTION)
    assert dispute.status == "resolved"


def test_a_supervisor_resolves_a_dispute_they_opened(clean_db) -> None:
    dispute = _investigated("supervisor")
    disputes.resolve(dispute, actor("supervisor"), **RESOLUTION)
    assert dispute.closed_by == "supervisor"


def test_pending_credits_reserve_the_invoice_balance(clean_db) -> None:
    invoice = issued_invoice()
    half = (invoice.balance / 2).quantize(Decimal("0.01"))
    credits.request_credit(invoice, actor("specialist"), reason_code="damaged", amount=half)
    assert credits.available_to_credit(invoice) == invoice.balance - half
    with pytest.raises(ValidationFailed, match="awaiting approval"):
        credits.request_credit(
            invoice, actor("specialist"), reason_code="damaged", amount=invoice.balance - half + 1
        )
    db.session.rollback()
    credits.request_credit(
        invoice, actor("specialist"), reason_code="damaged", amount=invoice.balance - half
    )
    assert credits.available_to_credit(invoice) == Decimal("0.00")


def test_dispute_and_credit_pages_show_labels_not_codes(clean_db) -> None:
    dispute = _investigated("supervisor")
    client = login(clean_db, "specialist")
    page = client.get(f"/disputeview/show/{dispute.id}").get_data(as_text=True)
    assert "Investigating" in page and "Pricing" in page
    assert not re.search(r">\s*None\s*<", page) and "Version" not in page
    assert 'id="dispute-decide"' in page  # someone else's dispute: resolve is offered
    memo = credits.request_credit(
        dispute.invoice, SETUP, reason_code="late_delivery", amount=Decimal("1.00")
    )
    page = client.get(f"/creditmemoview/show/{memo.id}").get_data(as_text=True)
    assert "Late delivery" in page and "late_delivery" not in page
    assert "USD 1.00" in page


def test_a_dispute_is_opened_from_its_invoice_with_the_type_from_a_list(clean_db) -> None:
    invoice = issued_invoice()
    client = login(clean_db, "specialist")
    page = client.get(f"/invoiceview/show/{invoice.id}").text
    assert f'href="/disputeview/open_dispute/{invoice.id}"' in page
    form = client.get(f"/disputeview/open_dispute/{invoice.id}").text
    assert ">Late delivery</option>" in form and ">late_delivery<" not in form
    typo = client.post(
        f"/disputeview/open_dispute/{invoice.id}",
        data={"dispute_type": "late_delivery", "amount": "12,5x", "description": "slow"},
    )
    assert typo.status_code == 422 and 'value="12,5x"' in typo.text
    made = client.post(
        f"/disputeview/open_dispute/{invoice.id}",
        data={"dispute_type": "late_delivery", "amount": "12.50", "description": "slow"},
    )
    dispute = db.session.query(disputes.Dispute).one()
    assert made.headers["Location"].endswith(f"/disputeview/show/{dispute.id}")
    assert (dispute.dispute_type, dispute.amount, dispute.opened_by) == (
        "late_delivery",
        Decimal("12.50"),
        "specialist",
    )
    auditor = login(clean_db, "auditor").get(f"/invoiceview/show/{invoice.id}").text
    assert "open_dispute" not in auditor and "request_credit" not in auditor


def test_a_credit_request_page_shows_what_pending_credits_leave(clean_db) -> None:
    invoice = issued_invoice()
    credits.request_credit(invoice, SETUP, reason_code="damaged", amount=Decimal("100.00"))
    client = login(clean_db, "specialist")
    form = client.get(f"/creditmemoview/request_credit/{invoice.id}").text
    left = invoice.balance - Decimal("100.00")
    assert f"USD {left:,.2f}" in form and "Damaged goods" in form
    over = client.post(
        f"/creditmemoview/request_credit/{invoice.id}",
        data={"reason_code": "goodwill", "amount": str(left + 1)},
    )
    assert over.status_code == 422 and "awaiting approval" in over.text
    made = client.post(
        f"/creditmemoview/request_credit/{invoice.id}",
        data={"reason_code": "goodwill", "amount": str(left), "reason_text": "sorry"},
    )
    assert made.status_code == 302
    assert credits.available_to_credit(invoice) == Decimal("0.00")


def test_the_dispute_and_credit_forms_pick_the_invoice_by_search(clean_db) -> None:
    data = make_catalog(stock=100)
    first, second = issued_invoice(data=data), issued_invoice(data=data)
    client = login(clean_db, "specialist")
    for url in ("/disputeview/add", "/creditmemoview/add"):
        form = client.get(url).text
        assert 'data-picker="/api/v1/lookup/invoice"' in form and "picker.js" in form
        assert str(first) not in form and str(second) not in form  # no list of every invoice
    found = client.get(f"/api/v1/lookup/invoice?q={second}").json["result"]
    assert [item["id"] for item in found] == [second.id]
    client.post(
        "/creditmemoview/add",
        data={"invoice": str(second.id), "reason_code": "goodwill", "amount": "1.00"},
    )
    memo = db.session.query(credits.CreditMemo).one()
    assert (memo.invoice_id, memo.reason_code) == (second.id, "goodwill")


def test_an_invoice_links_its_order_disputes_and_credits_and_back(clean_db) -> None:
    invoice = issued_invoice()
    dispute = disputes.open_dispute(
        invoice, actor("specialist"), dispute_type="shortage", amount=Decimal("1.00")
    )
    memo = credits.request_credit(invoice, SETUP, reason_code="shortage", amount="1.00")
    client = login(clean_db, "auditor")
    page = client.get(f"/invoiceview/show/{invoice.id}").text
    for href in (
        f"/salesorderview/show/{invoice.order_id}",
        f"/disputeview/show/{dispute.id}",
        f"/creditmemoview/show/{memo.id}",
    ):
        assert f'href="{href}"' in page, href
    for url in (f"/disputeview/show/{dispute.id}", f"/creditmemoview/show/{memo.id}"):
        assert f'href="/invoiceview/show/{invoice.id}"' in client.get(url).text, url


def _page_queries(client, url: str) -> int:
    from tests.test_home import counted

    with counted() as statements:
        assert client.get(url).status_code == 200
    return len(statements)


def test_shipment_and_return_pages_load_their_lines_in_a_fixed_number_of_queries(
    clean_db,
) -> None:
    data = make_catalog(stock=100)
    _, one = shipped_order(data, (2,))
    order, three = shipped_order(data, (2, 3, 4))
    small = returns.request_return(
        one.order, SETUP, lines={one.lines[0].order_line_id: 1}, reason="x", warehouse_id=1
    )
    large = returns.request_return(
        order, SETUP, lines={line.id: 1 for line in order.lines}, reason="x", warehouse_id=1
    )
    client = login(clean_db, "specialist")
    _page_queries(client, f"/shipmentview/show/{one.id}")  # the first page warms up
    assert _page_queries(client, f"/shipmentview/show/{one.id}") == _page_queries(
        client, f"/shipmentview/show/{three.id}"
    )
    assert _page_queries(client, f"/returnview/show/{small.id}") == _page_queries(
        client, f"/returnview/show/{large.id}"
    )
