"""The demo data has a past: twelve weeks of orders in every state, overdue invoices, disputes
past due, late shipments; the same seed gives the same data; the audit chain holds."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import timedelta

import pytest

from portal.demo import seed_demo_data
from portal.extensions import db
from portal.models import (
    Backorder,
    CreditMemo,
    Dispute,
    Invoice,
    OrderStatus,
    Payment,
    ReturnAuthorization,
    SalesOrder,
    Shipment,
    utcnow,
)
from portal.services import audit, credits, disputes, fulfillment, invoices
from portal.services.base import ValidationFailed
from tests.conftest import TEST_PASSWORD, wipe_business_tables
from tests.factories import SETUP, make_catalog, shipped_order


def test_the_demo_has_twelve_weeks_of_history_in_every_state(clean_db) -> None:
    assert seed_demo_data(order_count=100, seed=7)
    today = utcnow().date()
    placed = [order.order_date for order in db.session.query(SalesOrder)]
    assert len({day.isocalendar()[:2] for day in placed}) >= 10
    assert min(placed) >= today - timedelta(weeks=17) and max(placed) <= today
    weekend = sum(day.weekday() >= 5 for day in placed)
    assert weekend * 5 < len(placed) - weekend  # orders come in on weekdays, mostly

    statuses = Counter(order.status for order in db.session.query(SalesOrder))
    assert set(statuses) == {status.value for status in OrderStatus}, statuses

    invoices = db.session.query(Invoice).all()
    assert any(invoice.is_overdue for invoice in invoices)
    assert len({invoice.issue_date.isocalendar()[:2] for invoice in invoices}) >= 8
    assert {"issued", "partially_paid", "paid"} <= {invoice.status for invoice in invoices}
    assert all(
        payment.received_on >= payment.invoice.issue_date for payment in db.session.query(Payment)
    )

    ageing = disputes.ageing(today)
    assert ageing.overdue, "no dispute is past due"
    assert any(d.opened_at.date() < today - timedelta(weeks=1) for d in db.session.query(Dispute))
    assert {"open", "investigating", "resolved"} <= {d.status for d in db.session.query(Dispute)}

    shipments = db.session.query(Shipment).all()
    late = [shipment for shipment in shipments if shipment.is_late]
    assert late and any(shipment.delay_reason for shipment in late)
    assert all(  # an ETA past the promised date always came with a delay reason
        shipment.delay_reason
        for shipment in shipments
        if shipment.eta > shipment.order.promised_date
    )
    assert {"shipped", "delivered"} <= {shipment.status for shipment in shipments}
    assert fulfillment.needs_attention(today)

    assert {b.status for b in db.session.query(Backorder)} >= {"open", "filled"}
    assert {"approved", "requested"} <= {m.status for m in db.session.query(CreditMemo)}
    assert db.session.query(ReturnAuthorization).count() > 0
    assert audit.verify().ok


def _digest() -> str:
    """A digest of the key fields of what the seed made (numbers, dates, states, amounts)."""
    rows = []
    for order in db.session.query(SalesOrder).order_by(SalesOrder.number):
        rows.append(
            (
                order.number,
                order.customer.code,
                order.order_date,
                order.requested_date,
                order.promised_date,
                order.status,
                [(line.product.sku, line.quantity, line.qty_shipped) for line in order.lines],
            )
        )
    for shipment in db.session.query(Shipment).order_by(Shipment.number):
        rows.append(
            (
                shipment.number,
                shipment.ship_date,
                shipment.eta,
                shipment.delivered_date,
                shipment.delay_reason,
                shipment.tracking_number,
            )
        )
    for invoice in db.session.query(Invoice).order_by(Invoice.number):
        rows.append(
            (invoice.number, invoice.issue_date, invoice.due_date, invoice.total, invoice.status)
        )
    for dispute in db.session.query(Dispute).order_by(Dispute.number):
        rows.append((dispute.number, dispute.opened_at.date(), dispute.due_date, dispute.status))
    for memo in db.session.query(CreditMemo).order_by(CreditMemo.number):
        rows.append((memo.number, memo.amount, memo.status, memo.requested_at.date()))
    for payment in db.session.query(Payment).order_by(Payment.received_on, Payment.amount):
        rows.append((payment.amount, payment.received_on))
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_the_same_seed_gives_the_same_data(clean_db, app) -> None:
    done = app.test_cli_runner().invoke(
        args=["seed-demo", "--orders", "30", "--seed", "3", "--password", TEST_PASSWORD]
    )
    assert done.exit_code == 0, done.output
    first = _digest()
    wipe_business_tables()
    assert seed_demo_data(order_count=30, seed=3)
    assert _digest() == first
    wipe_business_tables()
    assert seed_demo_data(order_count=30, seed=4)
    assert _digest() != first
    assert audit.verify().ok


def test_business_dates_given_to_the_services_cannot_contradict_the_history(clean_db) -> None:
    today = utcnow().date()
    _, shipment = shipped_order(make_catalog(), 4)
    with pytest.raises(ValidationFailed, match="issue_date"):
        invoices.invoice_shipment(shipment, SETUP, on=today + timedelta(days=1))
    invoice = invoices.invoice_shipment(shipment, SETUP, on=today - timedelta(days=40))
    assert (invoice.issue_date, invoice.due_date) == (
        today - timedelta(days=40),
        today - timedelta(days=10),
    )
    assert invoice.is_overdue
    with pytest.raises(ValidationFailed, match="opened_at"):
        disputes.open_dispute(
            invoice,
            SETUP,
            dispute_type="pricing",
            amount="1.00",
            owner="specialist",
            opened_at=utcnow() - timedelta(days=41),
        )
    opened = disputes.open_dispute(
        invoice,
        SETUP,
        dispute_type="pricing",
        amount="1.00",
        owner="specialist",
        opened_at=utcnow() - timedelta(days=30),
    )
    assert opened.due_date == today - timedelta(days=20)
    assert opened in disputes.ageing(today).overdue
    with pytest.raises(ValidationFailed, match="requested_at"):
        credits.request_credit(
            invoice, SETUP, reason_code="goodwill", amount="1.00", at=utcnow() + timedelta(hours=1)
        )
