"""Invoices, payments and credit memos (DESIGN.md section 3, issue 4).

Money rules:

* amounts are ``Decimal``; each invoice line is ``quantity × unit price`` rounded to cents with
  ``ROUND_HALF_UP``, its tax is ``line amount × tax rate`` rounded the same way, and the
  invoice's subtotal, tax and total are exact sums of the rounded lines (so lines always add
  up to the total printed on the invoice);
* ``balance = total − payments − approved credits`` and never goes below zero: payments and
  credit approvals lock the invoice row (``SELECT … FOR UPDATE`` and a re-read) and re-check
  the balance, and a check constraint on the table backs this up;
* once issued an invoice is immutable: only its balance fields (and status, or voiding) change,
  enforced by the services and by a flush hook that refuses anything else (409).

Settings: ``INVOICE_MODE`` (``shipment``: one invoice per shipment, the default; ``order``: one
invoice per order once nothing is left to ship) and ``TAX_RATE`` (a fraction, ``0.2`` for
20 %, default 0; copied onto each invoice, where a draft may change it).

Every refused attempt (wrong role, segregation of duties, over the approval limit, wrong
state) leaves the records unchanged and is itself audited, as ``<action>_refused``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from flask import current_app
from sqlalchemy import Select, event, func, inspect, select, update
from sqlalchemy.orm import Session

import portal.security as security
from portal.models import (
    CREDIT_REASONS,
    PAYMENT_METHODS,
    CreditMemo,
    CreditMemoLine,
    CreditMemoStatus,
    Dispute,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentTerm,
    SalesOrder,
    Shipment,
    utcnow,
)
from portal.services import audit, notifications, numbering, orders
from portal.services.base import (
    Actor,
    ConflictError,
    NotFound,
    PermissionDenied,
    RecordService,
    ServiceError,
    ValidationFailed,
    require,
    session,
    unit_of_work,
)

CENT = Decimal("0.01")
INVOICE_VIEW = security.INVOICES
PAYMENT_VIEW = security.PAYMENTS
CREDIT_VIEW = security.CREDIT_MEMOS
INVOICE_MODES = ("shipment", "order")
OPEN_STATUSES = (InvoiceStatus.ISSUED.value, InvoiceStatus.PARTIALLY_PAID.value)
# What may still change on an issued invoice: its balance, the status that follows from it,
# and voiding.
MUTABLE_AFTER_ISSUE = frozenset(
    {"amount_paid", "amount_credited", "status", "version", "voided_by", "voided_at", "void_reason"}
)


def money(value: Decimal) -> Decimal:
    """``value`` rounded to cents, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def invoice_mode() -> str:
    """The ``INVOICE_MODE`` setting: ``shipment`` (default) or ``order``."""
    mode = current_app.config.get("INVOICE_MODE", "shipment")
    if mode not in INVOICE_MODES:
        raise ServiceError(f"INVOICE_MODE must be one of {', '.join(INVOICE_MODES)}, not {mode!r}")
    return mode


def default_tax_rate() -> Decimal:
    """The ``TAX_RATE`` setting as a fraction (``0.2`` = 20 %)."""
    raw = current_app.config.get("TAX_RATE", "0") or "0"
    try:
        rate = Decimal(str(raw))
    except InvalidOperation as error:
        raise ServiceError(f"TAX_RATE must be a fraction such as 0.2, not {raw!r}") from error
    if not Decimal("0") <= rate < Decimal("1"):
        raise ServiceError(f"TAX_RATE must be a fraction between 0 and 1, not {raw!r}")
    return rate


def parse_amount(value: Any, name: str = "amount") -> Decimal:
    """A positive amount in whole cents, or ``ValidationFailed`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValidationFailed({name: ["must be a decimal amount such as 12.50"]})
    try:
        amount = Decimal(str(value))
    except InvalidOperation as error:
        raise ValidationFailed({name: ["must be a decimal amount such as 12.50"]}) from error
    if not amount.is_finite() or amount <= 0:
        raise ValidationFailed({name: ["must be more than 0"]})
    if amount >= Decimal("1e12"):
        raise ValidationFailed({name: ["is too large"]})
    if amount != amount.quantize(CENT):
        raise ValidationFailed({name: ["must be in whole cents"]})
    return amount.quantize(CENT)


# -- refusals and locks ----------------------------------------------------------------------


def record_refusal(
    actor: Actor, entity: str, entity_id: Any, action: str, error: ServiceError
) -> None:
    """Commit an audit event ``<action>_refused`` with the reason (nothing else changes)."""
    session().rollback()
    with unit_of_work():
        audit.record(
            actor,
            entity,
            entity_id,
            f"{action}_refused",
            detail={"reason": error.message, "status": error.status},
        )


@contextmanager
def audited_refusal(actor: Actor, entity: str, entity_id: Any, action: str) -> Iterator[None]:
    """Audit a refused ``action`` (``<action>_refused``) in a transaction of its own.

    The refused change was rolled back by its unit of work; only the refusal is committed.
    Inside a caller's unit of work the outermost refusal is the one recorded.
    """
    try:
        yield
    except ServiceError as error:
        if session().info.get("uow_depth", 0) == 0:
            record_refusal(actor, entity, entity_id, action, error)
        raise


def lock_invoice(invoice_id: int) -> Invoice:
    """Lock the invoice row for this transaction and re-read it (fresh balance)."""
    sess = session()
    if sess.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks: take the database write lock now, before reading.
        table = Invoice.__table__
        sess.execute(update(table).where(table.c.id == invoice_id).values(version=table.c.version))
    invoice = sess.execute(
        select(Invoice)
        .where(Invoice.id == invoice_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    return invoice


def _reload(model: type, record_id: int) -> Any:
    record = (
        session()
        .execute(
            select(model).where(model.id == record_id).execution_options(populate_existing=True)
        )
        .scalar_one_or_none()
    )
    if record is None:
        raise NotFound(f"{model.__tablename__} {record_id} does not exist")
    return record


def _settle(invoice: Invoice) -> None:
    """Derive an issued invoice's status from its balance."""
    if invoice.status not in (*OPEN_STATUSES, InvoiceStatus.PAID.value):
        return
    if invoice.balance == 0:
        invoice.status = InvoiceStatus.PAID.value
    elif invoice.balance < invoice.total:
        invoice.status = InvoiceStatus.PARTIALLY_PAID.value
    else:
        invoice.status = InvoiceStatus.ISSUED.value


@event.listens_for(Session, "before_flush")
def _issued_invoices_are_immutable(sess: Session, flush_context: Any, instances: Any) -> None:
    """Refuse (409) any change to an issued invoice or its lines beyond its balance."""
    for obj in sess.dirty:
        if isinstance(obj, Invoice) and sess.is_modified(obj):
            state = inspect(obj)
            committed = state.attrs.status.history.deleted or [obj.status]
            if committed[0] == InvoiceStatus.DRAFT.value:
                continue
            changed = {a.key for a in state.attrs if a.history.has_changes()}
            if changed - MUTABLE_AFTER_ISSUE:
                raise ConflictError(
                    f"invoice {obj.number} is issued and cannot change "
                    f"({', '.join(sorted(changed - MUTABLE_AFTER_ISSUE))}); "
                    "correct it with a credit memo"
                )
    for obj in (*sess.dirty, *sess.deleted, *sess.new):
        if isinstance(obj, InvoiceLine) and obj.invoice_id is not None:
            status = sess.execute(
                select(Invoice.status).where(Invoice.id == obj.invoice_id)
            ).scalar_one_or_none()
            if status not in (None, InvoiceStatus.DRAFT.value):
                raise ConflictError("the lines of an issued invoice cannot change")


# -- invoices --------------------------------------------------------------------------------


def invoiced_quantity(order_line_id: int) -> int:
    """Units of an order line on invoices that are not void."""
    return int(
        session()
        .execute(
            select(func.coalesce(func.sum(InvoiceLine.quantity), 0))
            .join(Invoice, InvoiceLine.invoice_id == Invoice.id)
            .where(
                InvoiceLine.order_line_id == order_line_id,
                Invoice.status != InvoiceStatus.VOID.value,
            )
        )
        .scalar_one()
    )


def _lock_order(order_id: int) -> SalesOrder:
    return (
        session()
        .execute(
            select(SalesOrder)
            .where(SalesOrder.id == order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        .scalar_one()
    )


def _live_invoices(**where: Any) -> list[Invoice]:
    query = select(Invoice).where(Invoice.status != InvoiceStatus.VOID.value)
    for name, value in where.items():
        query = query.where(getattr(Invoice, name) == value)
    return list(session().execute(query).scalars())


def _build(
    order: SalesOrder,
    items: list[tuple[OrderLine, int, int | None]],
    actor: Actor,
    shipment: Shipment | None,
) -> Invoice:
    """A draft invoice for ``items`` (order line, quantity, shipment line id)."""
    errors: list[str] = []
    for line, quantity, _ in items:
        already = invoiced_quantity(line.id)
        if already + quantity > line.qty_shipped:
            errors.append(
                f"line {line.line_no}: {already} of {line.qty_shipped} shipped units are "
                f"already invoiced; {quantity} more would exceed what shipped"
            )
    if errors:
        raise ConflictError("; ".join(errors))
    rate = default_tax_rate()
    invoice = Invoice(
        order_id=order.id,
        shipment_id=shipment.id if shipment else None,
        customer_id=order.customer_id,
        payment_term_id=order.payment_term_id or order.customer.payment_term_id,
        currency=order.currency,
        tax_rate=rate,
        status=InvoiceStatus.DRAFT.value,
        created_by=actor.name,
        created_at=utcnow(),
    )
    for line_no, (line, quantity, shipment_line_id) in enumerate(items, start=1):
        amount = money(Decimal(quantity) * line.unit_price)
        invoice.lines.append(
            InvoiceLine(
                line_no=line_no,
                order_line_id=line.id,
                shipment_line_id=shipment_line_id,
                product_id=line.product_id,
                description=f"{line.product.sku} {line.product.name}"[:200],
                quantity=quantity,
                unit_price=line.unit_price,
                amount=amount,
                tax_amount=money(amount * rate),
            )
        )
    _total(invoice)
    session().add(invoice)
    session().flush()
    audit.record(
        actor,
        "invoice",
        invoice.id,
        "create",
        after={
            "order": order.number,
            "shipment": shipment.number if shipment else None,
            "lines": len(invoice.lines),
            "tax_rate": invoice.tax_rate,
            "subtotal": invoice.subtotal,
            "tax_amount": invoice.tax_amount,
            "total": invoice.total,
        },
    )
    return invoice


def _total(invoice: Invoice) -> None:
    invoice.subtotal = sum((line.amount for line in invoice.lines), Decimal("0.00"))
    invoice.tax_amount = sum((line.tax_amount for line in invoice.lines), Decimal("0.00"))
    invoice.total = invoice.subtotal + invoice.tax_amount


def _issue(invoice: Invoice, actor: Actor) -> None:
    if invoice.status != InvoiceStatus.DRAFT.value:
        raise ConflictError(f"invoice {invoice} is {invoice.status}; only a draft can be issued")
    term = session().get(PaymentTerm, invoice.payment_term_id) if invoice.payment_term_id else None
    if term is None:
        raise ValidationFailed(
            {"payment_term_id": ["the order has no payment terms; set them before issuing"]}
        )
    if not invoice.lines:
        raise ValidationFailed({"lines": ["an invoice needs at least one line"]})
    today = utcnow().date()
    invoice.number = numbering.next_number("invoice")
    invoice.issue_date = today
    invoice.due_date = today + timedelta(days=term.days)
    invoice.status = InvoiceStatus.ISSUED.value
    invoice.issued_by = actor.name
    invoice.issued_at = utcnow()
    _settle(invoice)
    session().flush()
    audit.record(
        actor,
        "invoice",
        invoice.id,
        "issue",
        after={
            "number": invoice.number,
            "issue_date": invoice.issue_date,
            "due_date": invoice.due_date,
            "total": invoice.total,
            "status": invoice.status,
        },
    )


def invoice_shipment(shipment: Shipment, actor: Actor, *, issue: bool = True) -> Invoice:
    """Invoice the shipped quantities of one shipment (``INVOICE_MODE=shipment``)."""
    with audited_refusal(actor, "shipment", shipment.id, "invoice"):
        require(actor, "can_write", INVOICE_VIEW, "create invoices")
        if invoice_mode() != "shipment":
            raise ConflictError("INVOICE_MODE is 'order': invoice the whole order instead")
        with unit_of_work():
            order = _lock_order(shipment.order_id)
            existing = _live_invoices(shipment_id=shipment.id)
            if existing:
                raise ConflictError(f"shipment {shipment.number} is already on {existing[0]}")
            items = [(item.order_line, item.quantity, item.id) for item in shipment.lines]
            invoice = _build(order, items, actor, shipment)
            if issue:
                _issue(invoice, actor)
            mark_invoiced_if_complete(order, actor)
    return invoice


def invoice_order(order: SalesOrder, actor: Actor, *, issue: bool = True) -> Invoice:
    """Invoice a whole order once nothing is left to ship (``INVOICE_MODE=order``)."""
    with audited_refusal(actor, "sales_order", order.id, "invoice"):
        require(actor, "can_write", INVOICE_VIEW, "create invoices")
        if invoice_mode() != "order":
            raise ConflictError("INVOICE_MODE is 'shipment': invoice each shipment instead")
        with unit_of_work():
            order = _lock_order(order.id)
            existing = _live_invoices(order_id=order.id)
            if existing:
                raise ConflictError(f"order {order.number} is already invoiced on {existing[0]}")
            unshipped = [
                line.line_no
                for line in order.lines
                if line.quantity - line.qty_cancelled - line.qty_shipped > 0
            ]
            if unshipped or order.status == OrderStatus.CANCELLED.value:
                raise ConflictError(
                    f"order {order.number} is not fully shipped "
                    f"(lines {', '.join(map(str, unshipped))} still open)"
                )
            items = [(line, line.qty_shipped, None) for line in order.lines if line.qty_shipped]
            if not items:
                raise ConflictError(f"order {order.number} has nothing shipped to invoice")
            invoice = _build(order, items, actor, None)
            if issue:
                _issue(invoice, actor)
            mark_invoiced_if_complete(order, actor)
    return invoice


def invoice_pending(order: SalesOrder, actor: Actor) -> list[Invoice]:
    """Issue whatever the order still needs invoiced, following ``INVOICE_MODE``."""
    if invoice_mode() == "order":
        return [invoice_order(order, actor)]
    shipments = session().execute(
        select(Shipment).where(Shipment.order_id == order.id).order_by(Shipment.id)
    )
    pending = [s for s in shipments.scalars() if not _live_invoices(shipment_id=s.id)]
    if not pending:
        raise ConflictError(f"order {order.number} has no shipment left to invoice")
    return [invoice_shipment(shipment, actor) for shipment in pending]


def mark_invoiced_if_complete(order: SalesOrder, actor: Actor) -> bool:
    """Move a delivered order whose shipped units are all invoiced to ``invoiced``."""
    if order.status != OrderStatus.DELIVERED.value:
        return False
    if any(invoiced_quantity(line.id) < line.qty_shipped for line in order.lines):
        return False
    orders.transition(order, OrderStatus.INVOICED.value, actor)
    return True


def issue(invoice: Invoice, actor: Actor) -> Invoice:
    """Issue a draft: number, issue and due date (from the payment terms); then immutable."""
    with audited_refusal(actor, "invoice", invoice.id, "issue"):
        require(actor, "can_write", INVOICE_VIEW, "issue invoices")
        with unit_of_work():
            _issue(lock_invoice(invoice.id), actor)
    return invoice


def void(invoice: Invoice, actor: Actor, reason: str) -> Invoice:
    """Void a draft, or an issued invoice nothing was paid or credited on (number is kept)."""
    with audited_refusal(actor, "invoice", invoice.id, "void"):
        require(actor, "can_write", INVOICE_VIEW, "void invoices")
        if not (reason or "").strip():
            raise ValidationFailed({"reason": ["is required to void an invoice"]})
        with unit_of_work():
            invoice = lock_invoice(invoice.id)
            if invoice.status not in (InvoiceStatus.DRAFT.value, InvoiceStatus.ISSUED.value):
                raise ConflictError(f"invoice {invoice} is {invoice.status} and cannot be voided")
            if invoice.amount_paid or invoice.amount_credited or _pending_credits(invoice.id):
                raise ConflictError(
                    f"invoice {invoice} has payments or credits; credit it instead of voiding"
                )
            before = invoice.status
            invoice.status = InvoiceStatus.VOID.value
            invoice.voided_by = actor.name
            invoice.voided_at = utcnow()
            invoice.void_reason = reason.strip()[:200]
            session().flush()
            audit.record(
                actor,
                "invoice",
                invoice.id,
                "void",
                before={"status": before},
                after={"status": invoice.status},
                detail={"reason": invoice.void_reason},
            )
    return invoice


class InvoiceService(RecordService[Invoice]):
    """Edits of a draft invoice (tax rate, notes); an issued invoice refuses them (409)."""

    model = Invoice
    entity = "invoice"
    permission_view = INVOICE_VIEW
    editable = ("tax_rate", "notes")

    def create(self, data: Mapping[str, Any], actor: Actor) -> Invoice:
        raise ConflictError("invoices are created from shipments or orders, not by hand")

    def update(
        self,
        record: Invoice,
        changes: Mapping[str, Any],
        actor: Actor,
        expected_version: int | None = None,
    ) -> Invoice:
        with audited_refusal(actor, "invoice", record.id, "update"):
            self._require(actor, "can_write")
            if record.status != InvoiceStatus.DRAFT.value:
                raise ConflictError(
                    f"invoice {record} is {record.status}: an issued invoice is immutable; "
                    "correct it with a credit memo"
                )
            return super().update(record, changes, actor, expected_version)

    def validate(self, sess: Session, record: Invoice, changed: set[str]):
        if "tax_rate" in changed:
            rate = record.tax_rate
            if not isinstance(rate, Decimal) or not Decimal("0") <= rate < Decimal("1"):
                return {"tax_rate": ["must be a fraction from 0 up to (not including) 1"]}
            for line in record.lines:
                line.tax_amount = money(line.amount * rate)
            _total(record)
        return {}


invoices = InvoiceService()


def open_balance_query(customer_id: int) -> Select:
    """The query of what a customer owes on issued invoices (one value)."""
    return select(
        func.coalesce(func.sum(Invoice.total - Invoice.amount_paid - Invoice.amount_credited), 0)
    ).where(Invoice.customer_id == customer_id, Invoice.status.in_(OPEN_STATUSES))


def open_balance_for_customer(customer_id: int) -> Decimal:
    """What a customer owes on issued invoices (used by the credit-exposure check)."""
    return money(Decimal(session().execute(open_balance_query(customer_id)).scalar_one()))


# -- payments --------------------------------------------------------------------------------


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
            _settle(invoice)
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


# -- credit memos ----------------------------------------------------------------------------


def _pending_credits(invoice_id: int) -> int:
    return int(
        session()
        .execute(
            select(func.count()).where(
                CreditMemo.invoice_id == invoice_id,
                CreditMemo.status == CreditMemoStatus.REQUESTED.value,
            )
        )
        .scalar_one()
    )


def credited_quantity(invoice_line_id: int) -> int:
    """Units of an invoice line on credit memos that are requested or approved."""
    return int(
        session()
        .execute(
            select(func.coalesce(func.sum(CreditMemoLine.quantity), 0))
            .join(CreditMemo, CreditMemoLine.credit_memo_id == CreditMemo.id)
            .where(
                CreditMemoLine.invoice_line_id == invoice_line_id,
                CreditMemo.status != CreditMemoStatus.REJECTED.value,
            )
        )
        .scalar_one()
    )


CreditItem = tuple[InvoiceLine, int, Decimal]


def _credit_lines(invoice: Invoice, lines: Mapping[int, int]) -> list[CreditItem]:
    """Each credited invoice line with its quantity and value (net plus its tax, in cents)."""
    by_id = {line.id: line for line in invoice.lines}
    errors: list[str] = []
    result: list[CreditItem] = []
    for line_id, quantity in lines.items():
        line = by_id.get(line_id)
        if line is None:
            errors.append(f"line {line_id} is not on {invoice}")
            continue
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            errors.append(f"line {line.line_no}: quantity must be a whole number above 0")
            continue
        left = line.quantity - credited_quantity(line.id)
        if quantity > left:
            errors.append(f"line {line.line_no}: only {left} units are left to credit")
            continue
        net = money(Decimal(quantity) * line.unit_price)
        result.append((line, quantity, net + money(net * invoice.tax_rate)))
    if errors:
        raise ValidationFailed({"lines": errors})
    return result


def request_credit(
    invoice: Invoice,
    actor: Actor,
    *,
    reason_code: str,
    amount: Any = None,
    lines: Mapping[int, int] | None = None,
    reason_text: str | None = None,
    dispute: Dispute | None = None,
) -> CreditMemo:
    """Request a credit against an issued invoice, by amount or by invoice lines.

    The amount (or the lines' value with their tax) may not exceed the invoice's open balance.
    The memo waits for a Supervisor who is not the requester (see :func:`approve`).
    """
    invoice_id = invoice.id
    with audited_refusal(actor, "invoice", invoice_id, "request_credit"):
        require(actor, "can_write", CREDIT_VIEW, "request credit memos")
        errors: dict[str, list[str]] = {}
        if reason_code not in CREDIT_REASONS:
            errors["reason_code"] = [f"must be one of {', '.join(CREDIT_REASONS)}"]
        if (amount is None) == (not lines):
            errors["amount"] = ["give either an amount or lines to credit, not both"]
        if errors:
            raise ValidationFailed(errors)
        with unit_of_work() as sess:
            invoice = lock_invoice(invoice_id)
            if invoice.status not in OPEN_STATUSES:
                raise ConflictError(
                    f"invoice {invoice} is {invoice.status}; only an open invoice can be credited"
                )
            credit_lines = _credit_lines(invoice, lines) if lines else []
            value = (
                sum((item[2] for item in credit_lines), Decimal("0.00"))
                if credit_lines
                else parse_amount(amount)
            )
            if value > invoice.balance:
                raise ValidationFailed(
                    {"amount": [f"{value} is more than the open balance ({invoice.balance})"]}
                )
            memo = CreditMemo(
                number=numbering.next_number("credit_memo"),
                invoice_id=invoice.id,
                dispute_id=dispute.id if dispute else None,
                status=CreditMemoStatus.REQUESTED.value,
                reason_code=reason_code,
                reason_text=(reason_text or "").strip()[:400] or None,
                amount=value,
                requested_by=actor.name,
                requested_at=utcnow(),
            )
            for line, quantity, line_amount in credit_lines:
                memo.lines.append(
                    CreditMemoLine(invoice_line_id=line.id, quantity=quantity, amount=line_amount)
                )
            sess.add(memo)
            sess.flush()
            audit.record(
                actor,
                "credit_memo",
                memo.id,
                "request",
                after={
                    "number": memo.number,
                    "invoice": invoice.number,
                    "amount": value,
                    "reason_code": reason_code,
                    "lines": {item[0].line_no: item[1] for item in credit_lines} or None,
                    "dispute": dispute.number if dispute else None,
                },
            )
    return memo


def approval_limit(actor: Actor) -> Decimal | None:
    """The largest credit ``actor`` may approve (``None``: no limit, Admin).

    The per-role limits are :data:`portal.security.APPROVAL_LIMITS`; the optional setting
    ``CREDIT_APPROVAL_USER_LIMITS`` (username → amount) overrides them for single users.
    """
    if actor.is_admin:
        return None
    per_user = current_app.config.get("CREDIT_APPROVAL_USER_LIMITS") or {}
    if actor.name in per_user:
        return Decimal(str(per_user[actor.name]))
    from portal.extensions import appbuilder

    user = appbuilder.sm.get_user_by_id(actor.user_id) if actor.user_id else None
    limits = [
        security.APPROVAL_LIMITS[role.name]
        for role in (user.roles if user else [])
        if role.name in security.APPROVAL_LIMITS
    ]
    return max(limits, default=Decimal("0.00"))


def _decide(memo: CreditMemo, actor: Actor, approve: bool, note: str | None) -> CreditMemo:
    memo_id = memo.id
    action = "approve" if approve else "reject"
    with audited_refusal(actor, "credit_memo", memo_id, action):
        if actor.is_system or not actor.can("can_approve", CREDIT_VIEW):
            raise PermissionDenied(f"{actor.name} may not approve or reject credit memos")
        note = (note or "").strip()[:400] or None
        if not approve and not note:
            raise ValidationFailed({"reason": ["is required to reject a credit memo"]})
        with unit_of_work() as sess:
            invoice = lock_invoice(_reload(CreditMemo, memo_id).invoice_id)
            memo = _reload(CreditMemo, memo_id)
            if memo.status != CreditMemoStatus.REQUESTED.value:
                raise ConflictError(f"credit memo {memo} is already {memo.status}")
            if memo.requested_by == actor.name:
                raise PermissionDenied(
                    f"segregation of duties: {actor.name} requested {memo} and may not {action} it"
                )
            before = {"status": memo.status}
            if approve:
                limit = approval_limit(actor)
                if limit is not None and memo.amount > limit:
                    raise PermissionDenied(
                        f"{memo} for {memo.amount} is above {actor.name}'s approval limit of "
                        f"{limit}; it needs an approver with a higher limit (Admin)"
                    )
                if invoice.status not in OPEN_STATUSES or memo.amount > invoice.balance:
                    raise ConflictError(
                        f"{memo} for {memo.amount} would take invoice {invoice} below zero "
                        f"(balance {invoice.balance}, {invoice.status})"
                    )
                balance_before = invoice.balance
                invoice.amount_credited += memo.amount
                _settle(invoice)
            decided = CreditMemoStatus.APPROVED if approve else CreditMemoStatus.REJECTED
            memo.status = decided.value
            memo.decided_by = actor.name
            memo.decided_at = utcnow()
            memo.decision_note = note
            sess.flush()
            audit.record(
                actor,
                "credit_memo",
                memo.id,
                action,
                before=before,
                after={"status": memo.status, "decided_by": actor.name},
                detail={"amount": memo.amount, "invoice": invoice.number, "note": note},
            )
            if approve:
                notifications.notify(invoice.order, "credit_approved", actor, memo=memo)
                audit.record(
                    actor,
                    "invoice",
                    invoice.id,
                    "credit_applied",
                    before={"balance": balance_before},
                    after={
                        "balance": invoice.balance,
                        "amount_credited": invoice.amount_credited,
                        "status": invoice.status,
                    },
                    detail={"credit_memo": memo.number},
                )
    return memo


def approve(memo: CreditMemo, actor: Actor, note: str | None = None) -> CreditMemo:
    """Approve a requested credit and apply it to the invoice balance.

    Refused unless ``actor`` holds ``can_approve`` on credit memos, did not request it, has an
    approval limit covering the amount, and the locked invoice's balance still covers it.
    """
    return _decide(memo, actor, True, note)


def reject(memo: CreditMemo, actor: Actor, reason: str) -> CreditMemo:
    """Reject a requested credit with a reason (same role and segregation rules)."""
    return _decide(memo, actor, False, reason)


@dataclass
class BulkOutcome:
    """Result of a bulk decision: the memos done and the refused ones with the reason."""

    done: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def decide_many(
    memo_ids: list[int], actor: Actor, *, approve_them: bool, note: str | None = None
) -> BulkOutcome:
    """Approve or reject several memos, each checked and committed (or refused) on its own."""
    outcome = BulkOutcome()
    for memo_id in memo_ids:
        memo = session().get(CreditMemo, memo_id)
        if memo is None:
            outcome.refused.append((f"#{memo_id}", "does not exist"))
            continue
        number = memo.number
        try:
            _decide(memo, actor, approve_them, note)
        except ServiceError as error:
            outcome.refused.append((number, error.message))
        else:
            outcome.done.append(number)
    return outcome


class CreditMemoService(RecordService[CreditMemo]):
    """Credit memos for the generic views and API: create() requests a credit by amount."""

    model = CreditMemo
    entity = "credit_memo"
    permission_view = CREDIT_VIEW
    creatable = ("invoice_id", "reason_code", "reason_text", "amount")

    def create(self, data: Mapping[str, Any], actor: Actor) -> CreditMemo:
        unknown = sorted(set(data) - set(self.creatable))
        if unknown:
            raise ValidationFailed({name: ["unknown or read-only field"] for name in unknown})
        if not data.get("invoice_id"):
            raise ValidationFailed({"invoice_id": ["is required"]})
        return request_credit(
            invoices.get(data["invoice_id"]),
            actor,
            reason_code=data.get("reason_code") or "",
            amount=data.get("amount"),
            reason_text=data.get("reason_text"),
        )

    def update(self, record: CreditMemo, changes: Mapping[str, Any], actor: Actor, *args: Any):
        raise ConflictError("a credit memo is approved or rejected, never edited")


credit_memos = CreditMemoService()
