"""Invoices from shipped quantities: build, issue, void, and the customer's open balance.

Once issued an invoice is immutable: only its balance fields (and status, or voiding) change,
enforced by the services and by a flush guard that refuses anything else (409). The guard is
registered by the app at start (:func:`register_guards`, called from ``create_app``).

Settings: ``INVOICE_MODE`` (``shipment``: one invoice per shipment, the default; ``order``: one
invoice per order once nothing is left to ship) and ``TAX_RATE`` (a fraction, ``0.2`` for
20 %, default 0; copied onto each invoice, where a draft may change it). Money rules are in
:mod:`portal.services.money`; refused attempts are audited (:mod:`portal.services.refusals`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import current_app
from sqlalchemy import Select, event, func, inspect, select
from sqlalchemy.orm import Session

import portal.security as security
from portal.models import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    OrderLine,
    OrderStatus,
    PaymentTerm,
    SalesOrder,
    Shipment,
    utcnow,
)
from portal.services import audit, numbering, states
from portal.services.base import (
    Actor,
    ConflictError,
    RecordService,
    ServiceError,
    ValidationFailed,
    require,
    session,
    unit_of_work,
)
from portal.services.money import OPEN_STATUSES, lock_invoice, money, settle
from portal.services.refusals import audited_refusal

INVOICE_VIEW = security.INVOICES
INVOICE_MODES = ("shipment", "order")
# What may still change on an issued invoice: its balance, the status that follows from it,
# and voiding.
MUTABLE_AFTER_ISSUE = frozenset(
    {"amount_paid", "amount_credited", "status", "version", "voided_by", "voided_at", "void_reason"}
)


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


def register_guards(target: Any) -> None:
    """Refuse changes to issued invoices in ``target``'s sessions (a Session class,
    sessionmaker or scoped session); the app calls it once at start, again is a no-op."""
    if not event.contains(target, "before_flush", _issued_invoices_are_immutable):
        event.listen(target, "before_flush", _issued_invoices_are_immutable)


# -- invoices --------------------------------------------------------------------------------


def invoiced_quantities(order_line_ids: Iterable[int]) -> dict[int, int]:
    """Units of each order line on invoices that are not void (0 for none), one query."""
    wanted = sorted(set(order_line_ids))
    if not wanted:
        return {}
    rows = session().execute(
        select(InvoiceLine.order_line_id, func.sum(InvoiceLine.quantity))
        .join(Invoice, InvoiceLine.invoice_id == Invoice.id)
        .where(
            InvoiceLine.order_line_id.in_(wanted),
            Invoice.status != InvoiceStatus.VOID.value,
        )
        .group_by(InvoiceLine.order_line_id)
    )
    found = {line_id: quantity for line_id, quantity in rows}
    return {line_id: int(found.get(line_id) or 0) for line_id in wanted}


def _lock_orders(order_ids: Iterable[int]) -> dict[int, SalesOrder]:
    """The orders, locked in id order and read afresh."""
    rows = session().execute(
        select(SalesOrder)
        .where(SalesOrder.id.in_(sorted(set(order_ids))))
        .order_by(SalesOrder.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {order.id: order for order in rows.scalars()}


def _lock_order(order_id: int) -> SalesOrder:
    return _lock_orders([order_id])[order_id]


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
    invoiced: dict[int, int] | None = None,
) -> Invoice:
    """A draft invoice for ``items`` (order line, quantity, shipment line id).

    ``invoiced`` may hold the lines' invoiced quantities, read already; they are counted up.
    """
    if invoiced is None:
        invoiced = invoiced_quantities(line.id for line, _, _ in items)
    errors: list[str] = []
    for line, quantity, _ in items:
        already = invoiced[line.id]
        if already + quantity > line.qty_shipped:
            errors.append(
                f"line {line.line_no}: {already} of {line.qty_shipped} shipped units are "
                f"already invoiced; {quantity} more would exceed what shipped"
            )
    if errors:
        raise ConflictError("; ".join(errors))
    for line, quantity, _ in items:
        invoiced[line.id] += quantity
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


def _issue(
    invoice: Invoice, actor: Actor, on: date | None = None, number: str | None = None
) -> None:
    """Issue ``invoice`` dated ``on`` (default today; a date already past is how an import or
    the demo's history records an invoice issued then; a future date is refused), with
    ``number`` if one was taken for it already."""
    states.check(invoice, InvoiceStatus.ISSUED.value)
    term = session().get(PaymentTerm, invoice.payment_term_id) if invoice.payment_term_id else None
    if term is None:
        raise ValidationFailed(
            {"payment_term_id": ["the order has no payment terms; set them before issuing"]}
        )
    if not invoice.lines:
        raise ValidationFailed({"lines": ["an invoice needs at least one line"]})
    today = utcnow().date()
    if on is not None and on > today:
        raise ValidationFailed({"issue_date": [f"{on} is in the future"]})
    issue_date = on or today
    states.transition(
        invoice,
        InvoiceStatus.ISSUED.value,
        actor,
        fields={
            "number": number or numbering.next_number("invoice"),
            "issue_date": issue_date,
            "due_date": issue_date + timedelta(days=term.days),
            "issued_by": actor.name,
            "issued_at": utcnow(),
        },
        detail={"total": invoice.total},
    )
    settle(invoice)
    session().flush()


def invoice_shipment(
    shipment: Shipment, actor: Actor, *, issue: bool = True, on: date | None = None
) -> Invoice:
    """Invoice the shipped quantities of one shipment (``INVOICE_MODE=shipment``), issued
    ``on`` that date (default today)."""
    with audited_refusal(actor, "shipment", shipment.id, "invoice"):
        return _invoice_shipments([shipment], actor, issue=issue, on=on)[0]


def invoice_shipments(
    shipments: Sequence[Shipment], actor: Actor, *, on: date | None = None
) -> list[Invoice]:
    """Invoice and issue many shipments in one transaction (all or none), each as
    :func:`invoice_shipment` would, all issued ``on`` that date (default today).

    The orders are locked, the shipments' invoices and the lines' invoiced quantities read
    and the invoice numbers taken with one statement each for the whole batch. A refusal is
    audited against the batch's shipments.
    """
    refused = ",".join(str(shipment.id) for shipment in shipments)
    with audited_refusal(actor, "shipment", refused, "invoice"):
        return _invoice_shipments(shipments, actor, issue=True, on=on)


def _invoice_shipments(
    shipments: Sequence[Shipment], actor: Actor, *, issue: bool, on: date | None
) -> list[Invoice]:
    require(actor, "can_write", INVOICE_VIEW, "create invoices")
    if invoice_mode() != "shipment":
        raise ConflictError("INVOICE_MODE is 'order': invoice the whole order instead")
    if not shipments:
        return []
    with unit_of_work():
        orders = _lock_orders(shipment.order_id for shipment in shipments)
        clash = (
            session()
            .execute(
                select(Invoice).where(
                    Invoice.shipment_id.in_([shipment.id for shipment in shipments]),
                    Invoice.status != InvoiceStatus.VOID.value,
                )
            )
            .scalar()
        )
        if clash is not None:
            raise ConflictError(f"shipment {clash.shipment.number} is already on {clash}")
        invoiced = invoiced_quantities(
            item.order_line_id for shipment in shipments for item in shipment.lines
        )
        numbers = numbering.next_numbers("invoice", len(shipments)) if issue else []
        created = []
        for index, shipment in enumerate(shipments):
            items = [(item.order_line, item.quantity, item.id) for item in shipment.lines]
            invoice = _build(orders[shipment.order_id], items, actor, shipment, invoiced)
            if issue:
                _issue(invoice, actor, on, numbers[index])
            created.append(invoice)
        for order in orders.values():
            mark_invoiced_if_complete(order, actor, invoiced)
    return created


def invoice_order(
    order: SalesOrder, actor: Actor, *, issue: bool = True, on: date | None = None
) -> Invoice:
    """Invoice a whole order once nothing is left to ship (``INVOICE_MODE=order``), issued
    ``on`` that date (default today)."""
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
                _issue(invoice, actor, on)
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


def mark_invoiced_if_complete(
    order: SalesOrder, actor: Actor, invoiced: Mapping[int, int] | None = None
) -> bool:
    """Move a delivered order whose shipped units are all invoiced to ``invoiced``
    (``invoiced`` may hold the lines' invoiced quantities, read already)."""
    if order.status != OrderStatus.DELIVERED.value:
        return False
    if invoiced is None or any(line.id not in invoiced for line in order.lines):
        invoiced = invoiced_quantities(line.id for line in order.lines)
    if any(invoiced[line.id] < line.qty_shipped for line in order.lines):
        return False
    states.transition(order, OrderStatus.INVOICED.value, actor)
    return True


def issue(invoice: Invoice, actor: Actor, on: date | None = None) -> Invoice:
    """Issue a draft: number, issue date (``on``, default today) and due date (from the
    payment terms); then immutable."""
    with audited_refusal(actor, "invoice", invoice.id, "issue"):
        require(actor, "can_write", INVOICE_VIEW, "issue invoices")
        with unit_of_work():
            _issue(lock_invoice(invoice.id), actor, on)
    return invoice


def void(invoice: Invoice, actor: Actor, reason: str) -> Invoice:
    """Void a draft, or an issued invoice nothing was paid or credited on (number is kept)."""
    with audited_refusal(actor, "invoice", invoice.id, "void"):
        require(actor, "can_write", INVOICE_VIEW, "void invoices")
        if not (reason or "").strip():
            raise ValidationFailed({"reason": ["is required to void an invoice"]})
        with unit_of_work():
            invoice = lock_invoice(invoice.id)
            states.check(invoice, InvoiceStatus.VOID.value)
            if not states.voidable(invoice):
                raise ConflictError(
                    f"invoice {invoice} has payments or credits; credit it instead of voiding"
                )
            states.transition(
                invoice,
                InvoiceStatus.VOID.value,
                actor,
                reason.strip()[:200],
                fields={
                    "voided_by": actor.name,
                    "voided_at": utcnow(),
                    "void_reason": reason.strip()[:200],
                },
            )
            session().flush()
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
