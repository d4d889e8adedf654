"""Payments received against issued invoices (never more than the open balance).

The invoice row is locked and its balance re-read before a payment is taken; the payment's
audit events record the invoice's balance and status before and after.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import portal.security as security
from portal.models import PAYMENT_METHODS, Invoice, Payment, utcnow
from portal.services import audit, limits
from portal.services.base import (
    Actor,
    ConflictError,
    RecordService,
    ValidationFailed,
    require,
    unit_of_work,
)
from portal.services.invoices import invoices
from portal.services.money import OPEN_STATUSES, lock_invoice, parse_amount, settle
from portal.services.refusals import audited_refusal

PAYMENT_VIEW = security.PAYMENTS


def record_payment(
    invoice: Invoice,
    actor: Actor,
    *,
    amount: Any,
    received_on: date | None = None,
    method: str = "bank_transfer",
    reference: str | None = None,
) -> Payment:
    """Record money received against an issued invoice (never more than its balance)."""
    invoice_id = invoice.id
    with audited_refusal(actor, "invoice", invoice_id, "payment"):
        require(actor, "can_write", PAYMENT_VIEW, "record payments")
        value = parse_amount(amount)
        limits.check_dates(received_on=received_on)
        if method not in PAYMENT_METHODS:
            raise ValidationFailed({"method": [f"must be one of {', '.join(PAYMENT_METHODS)}"]})
        with unit_of_work() as sess:
            invoice = lock_invoice(invoice_id)
            if invoice.status not in OPEN_STATUSES:
                raise ConflictError(f"invoice {invoice} is {invoice.status}; it takes no payment")
            if value > invoice.balance:
                raise ValidationFailed(
                    {"amount": [f"is more than the open balance of {invoice} ({invoice.balance})"]}
                )
            before = {"amount_paid": invoice.amount_paid, "status": invoice.status}
            payment = Payment(
                invoice_id=invoice.id,
                amount=value,
                received_on=received_on or utcnow().date(),
                method=method,
                reference=(reference or "").strip()[:80] or None,
                recorded_by=actor.name,
                created_at=utcnow(),
            )
            sess.add(payment)
            invoice.amount_paid += value
            settle(invoice)
            sess.flush()
            audit.record(
                actor,
                "payment",
                payment.id,
                "create",
                after={
                    "invoice": invoice.number,
                    "amount": value,
                    "received_on": payment.received_on,
                    "method": method,
                    "reference": payment.reference,
                },
            )
            audit.record(
                actor,
                "invoice",
                invoice.id,
                "payment",
                before=before,
                after={
                    "amount_paid": invoice.amount_paid,
                    "status": invoice.status,
                    "balance": invoice.balance,
                },
            )
    return payment


class PaymentService(RecordService[Payment]):
    """Payments for the generic views and API; create() records a payment."""

    model = Payment
    entity = "payment"
    permission_view = PAYMENT_VIEW
    creatable = ("invoice_id", "amount", "received_on", "method", "reference")

    def create(self, data: Mapping[str, Any], actor: Actor) -> Payment:
        unknown = sorted(set(data) - set(self.creatable))
        if unknown:
            raise ValidationFailed({name: ["unknown or read-only field"] for name in unknown})
        if not data.get("invoice_id"):
            raise ValidationFailed({"invoice_id": ["is required"]})
        invoice = invoices.get(data["invoice_id"])
        return record_payment(
            invoice,
            actor,
            amount=data.get("amount"),
            received_on=data.get("received_on"),
            method=data.get("method") or "bank_transfer",
            reference=data.get("reference"),
        )

    def update(self, record: Payment, changes: Mapping[str, Any], actor: Actor, *args: Any):
        raise ConflictError("payments are never edited; record a correcting credit instead")


payments = PaymentService()
