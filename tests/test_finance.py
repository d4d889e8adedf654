"""Invoices and payments: totals, tax and rounding in Decimal, gap-free numbers, due dates,
immutability once issued, invoice modes and the order reaching ``invoiced``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import AuditEvent, Invoice, SalesOrder, Shipment
from portal.services import audit, credits, fulfillment, invoices, lifecycle, orders, payments
from portal.services.base import ConflictError, ValidationFailed
from tests.conftest import actor, api_headers, login
from tests.factories import SETUP, Catalog, make_catalog

TODAY = datetime.now(UTC).date()


def shipped_order(
    data: Catalog, quantities: Sequence[int] = (1, 7), ship: Sequence[int] | None = None
) -> tuple[SalesOrder, Shipment]:
    """An order for ``quantities`` of products 1, 2, 3 (0 = none), confirmed, allocated and
    shipped from W1 (``ship`` units per line, default everything)."""
    lines = [
        {"product_id": data.products[i].id, "quantity": qty}
        for i, qty in enumerate(quantities)
        if qty
    ]
    order = orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "customer_po": f"PO-{datetime.now(UTC).timestamp()}",
            "requested_date": TODAY + timedelta(days=14),
            "ship_to_id": data.customer.addresses[0].id,
        },
        lines,
        SETUP,
    )
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, SETUP)
    amounts = ship or [line.quantity for line in order.lines]
    shipment = fulfillment.ship(
        order,
        SETUP,
        warehouse_id=data.warehouses[0].id,
        lines={line.id: qty for line, qty in zip(order.lines, amounts, strict=True) if qty},
        carrier="DHL",
    )
    return order, shipment


def issued_invoice(
    quantities: Sequence[int] = (1, 7), stock: int = 100, data: Catalog | None = None
) -> Invoice:
    """An issued invoice for a fully shipped order (invoiced by the specialist)."""
    data = data or make_catalog(stock=stock)
    _, shipment = shipped_order(data, quantities)
    return invoices.invoice_shipment(shipment, actor("specialist"))


def events(entity: str, entity_id: int, action: str) -> list[AuditEvent]:
    return [event for event in audit.history(entity, entity_id) if event.action == action]


def test_invoice_from_a_shipment_rounds_tax_half_up_per_line(clean_db, monkeypatch) -> None:
    monkeypatch.setitem(clean_db.config, "TAX_RATE", "0.07")
    invoice = issued_invoice((1, 7))
    # 1 × 9.50 = 9.50, tax 0.665 → 0.67 (half up; half-even would give 0.66)
    # 7 × 19.00 = 133.00, tax 9.31
    assert [(line.amount, line.tax_amount) for line in invoice.lines] == [
        (Decimal("9.50"), Decimal("0.67")),
        (Decimal("133.00"), Decimal("9.31")),
    ]
    assert invoice.subtotal == Decimal("142.50")
    assert invoice.tax_amount == Decimal("9.98")
    assert invoice.total == Decimal("152.48")
    assert invoice.balance == invoice.total
    assert invoice.number == "INV-000001" and invoice.status == "issued"
    assert invoice.issue_date == TODAY
    assert invoice.due_date == TODAY + timedelta(days=30)  # Net 30 from the order's terms
    assert invoices.open_balance_for_customer(invoice.customer_id) == Decimal("152.48")


def test_partial_payments_settle_the_invoice_and_overpayment_is_refused(clean_db) -> None:
    invoice = issued_invoice((1, 7))  # 142.50, no tax
    clerk = actor("specialist")
    payments.record_payment(invoice, clerk, amount=Decimal("100.01"), reference="BANK-1")
    assert invoice.status == "partially_paid" and invoice.balance == Decimal("42.49")
    with pytest.raises(ValidationFailed, match="more than the open balance"):
        payments.record_payment(invoice, clerk, amount=Decimal("42.50"))
    db.session.expire_all()
    assert invoice.balance == Decimal("42.49") and len(invoice.payments) == 1
    assert events("invoice", invoice.id, "payment_refused")
    with pytest.raises(ValidationFailed, match="at most 2 decimal places"):
        payments.record_payment(invoice, clerk, amount=Decimal("1.005"))
    with pytest.raises(ValidationFailed):
        payments.record_payment(invoice, clerk, amount=1.5)  # a float is never money
    payments.record_payment(invoice, clerk, amount="42.49")
    assert invoice.status == "paid" and invoice.balance == Decimal("0.00")
    with pytest.raises(ConflictError, match="paid"):
        payments.record_payment(invoice, clerk, amount=Decimal("0.01"))


def test_money_is_exact_across_partial_payments_and_several_credits(clean_db) -> None:
    invoice = issued_invoice((3, 0, 1))  # 28.50 + 28.50 = 57.00
    assert invoice.total == Decimal("57.00")
    clerk, boss = actor("specialist"), actor("supervisor")
    for amount in ("10.01", "0.10", "7.77"):
        payments.record_payment(invoice, clerk, amount=Decimal(amount))
    approved = [
        credits.request_credit(invoice, clerk, reason_code="pricing_error", amount=amount)
        for amount in (Decimal("0.03"), Decimal("5.55"))
    ]
    rejected = credits.request_credit(invoice, clerk, reason_code="goodwill", amount="1.00")
    by_line = credits.request_credit(
        invoice, clerk, reason_code="damaged", lines={invoice.lines[0].id: 1}
    )
    assert by_line.amount == Decimal("9.50")
    for memo in [*approved, by_line]:
        credits.approve(memo, boss)
    credits.reject(rejected, boss, "not agreed")
    db.session.expire_all()
    assert invoice.amount_paid == Decimal("17.88")
    assert invoice.amount_credited == Decimal("15.08")
    assert invoice.balance == Decimal("57.00") - Decimal("17.88") - Decimal("15.08")
    assert invoice.balance == Decimal("24.04") and invoice.status == "partially_paid"
    with pytest.raises(ValidationFailed, match="only 2 units are left"):
        credits.request_credit(
            invoice, clerk, reason_code="damaged", lines={invoice.lines[0].id: 3}
        )
    with pytest.raises(ValidationFailed, match="more than the open balance"):
        credits.request_credit(invoice, clerk, reason_code="other", amount="24.05")
    payments.record_payment(invoice, clerk, amount="24.04")
    assert invoice.status == "paid" and invoice.balance == 0


def test_an_issued_invoice_is_immutable_in_the_service_the_api_and_the_session(
    clean_db,
) -> None:
    invoice = issued_invoice((1, 7))
    with pytest.raises(ConflictError, match="immutable"):
        invoices.invoices.update(invoice, {"notes": "changed"}, actor("supervisor"))
    assert events("invoice", invoice.id, "update_refused")
    headers = api_headers(clean_db, "supervisor")
    response = clean_db.test_client().put(
        f"/api/v1/invoice/{invoice.id}", json={"tax_rate": "0.5", "version": 1}, headers=headers
    )
    assert response.status_code == 409, response.json
    # Even code that bypasses the service cannot change an issued invoice's amounts.
    invoice.total = Decimal("1.00")
    with pytest.raises(ConflictError, match="cannot change"):
        db.session.flush()
    db.session.rollback()
    db.session.expire_all()
    assert invoice.total == Decimal("142.50") and invoice.notes is None


def test_a_draft_can_change_its_tax_then_is_issued_with_the_next_number(
    clean_db, monkeypatch
) -> None:
    data = make_catalog()
    _, first = shipped_order(data, (1, 0), None)
    _, second = shipped_order(data, (0, 7), None)
    clerk = actor("specialist")
    draft = invoices.invoice_shipment(first, clerk, issue=False)
    assert draft.number is None and draft.status == "draft"
    invoices.invoices.update(draft, {"tax_rate": Decimal("0.2")}, clerk)
    assert draft.tax_amount == Decimal("1.90") and draft.total == Decimal("11.40")
    with pytest.raises(ConflictError, match="already on"):
        invoices.invoice_shipment(first, clerk)  # refused: no number is taken
    other = invoices.invoice_shipment(second, clerk)
    invoices.issue(draft, clerk)
    assert (other.number, draft.number) == ("INV-000001", "INV-000002")
    invoices.void(other, clerk, "wrong customer")
    assert other.status == "void" and other.number == "INV-000001"  # the number stays used
    again = invoices.invoice_shipment(second, clerk)
    assert again.number == "INV-000003"


def test_order_mode_invoices_the_whole_order_once_shipped_and_then_marks_it_invoiced(
    clean_db, monkeypatch
) -> None:
    monkeypatch.setitem(clean_db.config, "INVOICE_MODE", "order")
    data = make_catalog()
    order, shipment = shipped_order(data, (4, 2), ship=(2, 2))
    clerk = actor("specialist")
    with pytest.raises(ConflictError, match="INVOICE_MODE"):
        invoices.invoice_shipment(shipment, clerk)
    with pytest.raises(ConflictError, match="not fully shipped"):
        invoices.invoice_order(order, clerk)
    main = data.warehouses[0].id
    rest = fulfillment.ship(
        order, SETUP, warehouse_id=main, lines={order.lines[0].id: 2}, carrier="UPS"
    )
    fulfillment.deliver(shipment, SETUP)
    fulfillment.deliver(rest, SETUP)
    assert order.status == "delivered"
    invoice = invoices.invoice_order(order, clerk)
    assert [line.quantity for line in invoice.lines] == [4, 2]
    assert invoice.total == Decimal("76.00") and invoice.shipment_id is None
    assert order.status == "invoiced"
    assert audit.verify().ok


def test_shipment_mode_marks_a_delivered_order_invoiced(clean_db) -> None:
    data = make_catalog()
    order, shipment = shipped_order(data, (2, 1))
    fulfillment.deliver(shipment, SETUP)
    assert order.status == "delivered"
    invoices.invoice_shipment(shipment, actor("specialist"))
    assert order.status == "invoiced"


def test_api_generates_invoices_records_payments_and_prints(clean_db) -> None:
    app: Flask = clean_db
    data = make_catalog()
    order, _ = shipped_order(data, (1, 7))
    client = app.test_client()
    clerk = api_headers(app, "specialist")
    created = client.post("/api/v1/invoice/generate", json={"order_id": order.id}, headers=clerk)
    assert created.status_code == 201, created.json
    invoice_id = created.json["ids"][0]
    again = client.post("/api/v1/invoice/generate", json={"order_id": order.id}, headers=clerk)
    assert again.status_code == 409
    bad = client.post("/api/v1/invoice/generate", json={"order_id": "1"}, headers=clerk)
    assert bad.status_code == 422
    paid = client.post(
        "/api/v1/payment/",
        json={"invoice_id": invoice_id, "amount": "42.50", "received_on": str(TODAY)},
        headers=clerk,
    )
    assert paid.status_code == 201, paid.json
    over = client.post(
        "/api/v1/payment/", json={"invoice_id": invoice_id, "amount": "100.01"}, headers=clerk
    )
    assert over.status_code == 422 and "open balance" in str(over.json)
    auditor = api_headers(app, "auditor")
    refused = client.post(
        "/api/v1/payment/", json={"invoice_id": invoice_id, "amount": "1.00"}, headers=auditor
    )
    assert refused.status_code == 403
    shown = client.get(f"/api/v1/invoice/{invoice_id}", headers=auditor).json["result"]
    assert Decimal(str(shown["balance"])) == Decimal("100.00")
    assert shown["status"] == "partially_paid"
    page = login(app, "auditor").get(f"/invoiceview/print/{invoice_id}")
    assert page.status_code == 200
    assert "INV-000001" in page.text and 'id="invoice-balance">USD 100.00' in page.text
