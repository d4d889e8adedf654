"""Finance models: invoices and their lines, payments, credit memos (with lines), disputes.

Money is ``Numeric`` (``Decimal``), timestamps are UTC-aware. An invoice keeps running totals of
what was paid and credited; its balance is ``total − amount_paid − amount_credited`` and a
check constraint keeps it between 0 and the total, so no code path can drive it negative.
Records change only through ``portal.services.invoices``, ``payments``, ``credits`` and
``portal.services.disputes``.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from flask_appbuilder.models.sqla import Model
from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.core import (
    MONEY,
    PRICE,
    Customer,
    OrderLine,
    PaymentTerm,
    Product,
    SalesOrder,
    UTCDateTime,
    Versioned,
    utcnow,
)
from portal.models.fulfillment import Shipment, ShipmentLine

TAX_RATE = Numeric(7, 5)  # a fraction: 0.2 is 20 %


def _today() -> date:
    return utcnow().date()


class InvoiceStatus(enum.StrEnum):
    """Invoice states; ``paid`` means settled (payments and credits cover the total)."""

    DRAFT = "draft"
    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"


class CreditMemoStatus(enum.StrEnum):
    """Credit memo states; an approved memo is applied to its invoice in the same step."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"


class DisputeStatus(enum.StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"
    REJECTED = "rejected"


PAYMENT_METHODS = ("bank_transfer", "card", "check", "cash", "other")
CREDIT_REASONS = {
    "pricing_error": "Pricing error",
    "shortage": "Shortage",
    "damaged": "Damaged goods",
    "returned_goods": "Returned goods",
    "late_delivery": "Late delivery",
    "duplicate_billing": "Duplicate billing",
    "goodwill": "Goodwill",
    "dispute": "Dispute resolution",
    "other": "Other",
}
# Dispute types and the days a dispute of that type has until it is overdue.
DISPUTE_TYPES = {
    "pricing": 10,
    "shortage": 7,
    "damaged": 7,
    "late_delivery": 14,
    "duplicate_billing": 5,
    "other": 14,
}
ROOT_CAUSES = {
    "price_list_error": "Price list error",
    "order_entry_error": "Order entry error",
    "picking_error": "Picking error",
    "packing_damage": "Packing damage",
    "carrier": "Carrier",
    "system_error": "System error",
    "customer_error": "Customer error",
    "no_fault_found": "No fault found",
    "other": "Other",
}


class Invoice(Versioned, Model):
    """An invoice for shipped quantities of one order (one shipment, or the whole order).

    The number is taken from the gap-free ``invoice`` sequence when the invoice is issued;
    from then on nothing but payments and approved credits (its balance) may change.
    """

    __tablename__ = "invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_order.id"), nullable=False)
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipment.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), nullable=False)
    payment_term_id: Mapped[int | None] = mapped_column(ForeignKey("payment_term.id"))
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default=InvoiceStatus.DRAFT.value, index=True
    )
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="USD")
    tax_rate: Mapped[Decimal] = mapped_column(TAX_RATE, nullable=False, default=Decimal("0"))
    subtotal: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal("0"))
    tax_amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal("0"))
    total: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal("0"))
    amount_paid: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal("0"))
    amount_credited: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=Decimal("0"))
    issue_date: Mapped[date | None] = mapped_column(Date, index=True)
    due_date: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    issued_by: Mapped[str | None] = mapped_column(String(120))
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_by: Mapped[str | None] = mapped_column(String(120))
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    void_reason: Mapped[str | None] = mapped_column(String(200))
    order: Mapped[SalesOrder] = relationship()
    shipment: Mapped[Shipment | None] = relationship()
    customer: Mapped[Customer] = relationship()
    payment_term: Mapped[PaymentTerm | None] = relationship()
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.line_no"
    )
    payments: Mapped[list[Payment]] = relationship(back_populates="invoice", order_by="Payment.id")
    credit_memos: Mapped[list[CreditMemo]] = relationship(
        back_populates="invoice", order_by="CreditMemo.id"
    )

    __table_args__ = (
        CheckConstraint("tax_rate >= 0 AND tax_rate < 1", name="ck_invoice_tax_rate"),
        CheckConstraint(
            "amount_paid >= 0 AND amount_credited >= 0", name="ck_invoice_settled_positive"
        ),
        CheckConstraint(
            "amount_paid + amount_credited <= total", name="ck_invoice_balance_not_negative"
        ),
        Index("ix_invoice_order", "order_id"),
        Index("ix_invoice_customer", "customer_id"),  # a list's customer filter
        # the invoice picker finds numbers by prefix (migration 0024)
        Index(
            "ix_invoice_number_pattern", "number", postgresql_ops={"number": "varchar_pattern_ops"}
        ),
    )

    @property
    def balance(self) -> Decimal:
        """What the customer still owes: total − payments − applied credits (never < 0)."""
        return self.total - self.amount_paid - self.amount_credited

    @property
    def is_overdue(self) -> bool:
        return (
            self.status in (InvoiceStatus.ISSUED.value, InvoiceStatus.PARTIALLY_PAID.value)
            and self.due_date is not None
            and self.due_date < utcnow().date()
        )

    def __repr__(self) -> str:
        return self.number or f"draft #{self.id}"


class InvoiceLine(Model):
    """One invoiced product line: quantity × unit price, rounded to cents, and its tax."""

    __tablename__ = "invoice_line"
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), nullable=False)
    line_no: Mapped[int] = mapped_column(Integer, nullable=False)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), nullable=False)
    shipment_line_id: Mapped[int | None] = mapped_column(ForeignKey("shipment_line.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), nullable=False)
    description: Mapped[str] = mapped_column(String(200), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(PRICE, nullable=False)
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    tax_amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    invoice: Mapped[Invoice] = relationship(back_populates="lines")
    order_line: Mapped[OrderLine] = relationship()
    shipment_line: Mapped[ShipmentLine | None] = relationship()
    product: Mapped[Product] = relationship()

    __table_args__ = (
        CheckConstraint("quantity > 0", name="ck_invoice_line_quantity"),
        Index("ix_invoice_line_invoice", "invoice_id"),
        Index("ix_invoice_line_order_line", "order_line_id"),
    )

    def __repr__(self) -> str:
        return f"{self.invoice}/{self.line_no}"


class Payment(Model):
    """Money received against one invoice; payments are never edited (append-only)."""

    __tablename__ = "payment"
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), nullable=False)
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    received_on: Mapped[date] = mapped_column(Date, nullable=False, default=_today)
    method: Mapped[str] = mapped_column(String(20), nullable=False, default="bank_transfer")
    reference: Mapped[str | None] = mapped_column(String(80))
    recorded_by: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    invoice: Mapped[Invoice] = relationship(back_populates="payments")

    __table_args__ = (
        CheckConstraint("amount > 0", name="ck_payment_amount"),
        Index("ix_payment_invoice", "invoice_id"),
    )

    def __repr__(self) -> str:
        return f"{self.invoice} {self.amount} on {self.received_on}"


class CreditMemo(Versioned, Model):
    """A credit against an invoice: requested, then approved (and applied) or rejected."""

    __tablename__ = "credit_memo"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), nullable=False)
    dispute_id: Mapped[int | None] = mapped_column(ForeignKey("dispute.id"))
    status: Mapped[str] = mapped_column(
        String(12), nullable=False, default=CreditMemoStatus.REQUESTED.value, index=True
    )
    reason_code: Mapped[str] = mapped_column(String(24), nullable=False)
    reason_text: Mapped[str | None] = mapped_column(String(400))
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    requested_by: Mapped[str] = mapped_column(String(120), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(String(400))
    invoice: Mapped[Invoice] = relationship(back_populates="credit_memos")
    dispute: Mapped[Dispute | None] = relationship(back_populates="credit_memos")
    lines: Mapped[list[CreditMemoLine]] = relationship(back_populates="credit_memo")

    __table_args__ = (
        CheckConstraint("amount > 0", name="ck_credit_memo_amount"),
        Index("ix_credit_memo_invoice", "invoice_id"),
        Index("ix_credit_memo_decided_at", "decided_at"),  # credits by the week decided
    )

    @property
    def age_days(self) -> int:
        """Days since it was requested (until decided)."""
        end = self.decided_at or utcnow()
        return (end.date() - self.requested_at.date()).days

    def __repr__(self) -> str:
        return self.number


class CreditMemoLine(Model):
    """Units of one invoice line credited by a memo requested line by line."""

    __tablename__ = "credit_memo_line"
    id: Mapped[int] = mapped_column(primary_key=True)
    credit_memo_id: Mapped[int] = mapped_column(ForeignKey("credit_memo.id"), nullable=False)
    invoice_line_id: Mapped[int] = mapped_column(ForeignKey("invoice_line.id"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    credit_memo: Mapped[CreditMemo] = relationship(back_populates="lines")
    invoice_line: Mapped[InvoiceLine] = relationship()

    __table_args__ = (CheckConstraint("quantity > 0", name="ck_credit_memo_line_quantity"),)


class Dispute(Versioned, Model):
    """A customer's dispute of an invoice: open → investigating → resolved / rejected."""

    __tablename__ = "dispute"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), nullable=False)
    dispute_type: Mapped[str] = mapped_column(String(20), nullable=False)
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(120), nullable=False)
    status: Mapped[str] = mapped_column(
        String(14), nullable=False, default=DisputeStatus.OPEN.value, index=True
    )
    opened_by: Mapped[str] = mapped_column(String(120), nullable=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    due_date: Mapped[date] = mapped_column(Date, nullable=False)
    root_cause: Mapped[str | None] = mapped_column(String(24))
    corrective_action: Mapped[str | None] = mapped_column(Text)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    closed_by: Mapped[str | None] = mapped_column(String(120))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    invoice: Mapped[Invoice] = relationship()
    credit_memos: Mapped[list[CreditMemo]] = relationship(
        back_populates="dispute", order_by="CreditMemo.id"
    )

    __table_args__ = (
        CheckConstraint("amount >= 0", name="ck_dispute_amount"),
        Index("ix_dispute_invoice", "invoice_id"),
        # disputes by the week opened, closed or due (service levels)
        Index("ix_dispute_opened_at", "opened_at"),
        Index("ix_dispute_closed_at", "closed_at"),
        Index("ix_dispute_due_date", "due_date"),
    )

    @property
    def is_closed(self) -> bool:
        return self.status in (DisputeStatus.RESOLVED.value, DisputeStatus.REJECTED.value)

    @property
    def age_days(self) -> int:
        end = self.closed_at or utcnow()
        return (end.date() - self.opened_at.date()).days

    @property
    def is_overdue(self) -> bool:
        return not self.is_closed and self.due_date < utcnow().date()

    def __repr__(self) -> str:
        return self.number


__all__ = [
    "CREDIT_REASONS",
    "DISPUTE_TYPES",
    "PAYMENT_METHODS",
    "ROOT_CAUSES",
    "TAX_RATE",
    "CreditMemo",
    "CreditMemoLine",
    "CreditMemoStatus",
    "Dispute",
    "DisputeStatus",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "Payment",
]
