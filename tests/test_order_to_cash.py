"""Order to cash across the lifecycle and finance: invoiced status, credits, returns, mail."""

from __future__ import annotations

from decimal import Decimal

from portal.extensions import db
from portal.models import CreditMemo, Notification
from portal.services import credits, disputes, fulfillment, invoices, returns
from tests.conftest import actor
from tests.factories import SETUP, make_catalog, shipped_order


def _delivered(data, quantity=10):
    return shipped_order(data, quantity, customer_po="PO-O2C")


def test_invoicing_every_shipment_then_delivery_makes_the_order_invoiced(clean_db) -> None:
    data = make_catalog()
    order, shipment = _delivered(data)
    invoice = invoices.invoice_shipment(shipment, actor("specialist"))
    assert order.status == "shipped"
    fulfillment.deliver(shipment, actor("specialist"))
    assert order.status == "invoiced"
    assert invoice.total == Decimal("95.00")


def _events() -> list[str]:
    return [n.event for n in db.session.query(Notification).order_by(Notification.id)]


def test_an_approved_credit_and_a_resolved_dispute_tell_the_customer(clean_db) -> None:
    data = make_catalog()
    _, shipment = _delivered(data)
    invoice = invoices.invoice_shipment(shipment, SETUP)
    memo = credits.request_credit(
        invoice, actor("specialist"), reason_code="pricing_error", amount=Decimal("5.00")
    )
    credits.approve(memo, actor("supervisor"))
    assert "credit_approved" in _events()
    dispute = disputes.open_dispute(
        invoice, actor("specialist"), dispute_type="shortage", amount=Decimal("9.50")
    )
    disputes.investigate(dispute, actor("specialist"))
    disputes.resolve(
        dispute,
        actor("supervisor"),
        root_cause=next(iter(disputes.ROOT_CAUSES)),
        corrective_action="recount at packing",
    )
    assert _events()[-1] == "dispute_resolved"
    body = db.session.query(Notification).filter_by(event="dispute_resolved").one().body
    assert dispute.number in body and "recount at packing" in body


def test_a_received_return_is_credited_against_its_invoice(clean_db) -> None:
    data = make_catalog()
    order, shipment = _delivered(data)
    invoice = invoices.invoice_shipment(shipment, SETUP)
    main = data.warehouses[0].id
    rma = returns.request_return(
        order,
        actor("specialist"),
        lines={order.lines[0].id: 4},
        reason="wrong size",
        warehouse_id=main,
    )
    returns.authorize(rma, SETUP)
    returns.receive(rma, SETUP, {rma.lines[0].id: (4, "restock")})
    returns.credit(rma, actor("specialist"))
    memo = db.session.get(CreditMemo, rma.credit_memo_id)
    assert (rma.status, memo.status, memo.invoice_id) == ("credited", "requested", invoice.id)
    assert memo.amount == Decimal("38.00")  # 4 × 9.50
    credits.approve(memo, actor("supervisor"))
    assert invoice.balance == Decimal("57.00")
    returns.close(rma, SETUP)
    assert rma.status == "closed"
