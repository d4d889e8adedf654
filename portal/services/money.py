"""Money and invoice balances, shared by invoices, payments and credit memos.

* an amount someone enters has at most two decimal places (the currency's minor unit) and is
  refused otherwise, never rounded: ``bounds.places_problem`` is that rule, used by
  :func:`parse_amount` and by the table-derived checks of every ``Numeric`` column a service
  writes (``base.table_errors``: 2 places for money, 4 for unit prices); the API schemas hand
  the services the exact value, unrounded;
* amounts are ``Decimal``; each invoice line is ``quantity × unit price`` rounded to cents with
  ``ROUND_HALF_UP``, its tax is ``line amount × tax rate`` rounded the same way, and the
  invoice's subtotal, tax and total are exact sums of the rounded lines (so lines always add
  up to the total printed on the invoice);
* ``balance = total − payments − approved credits`` and never goes below zero: payments and
  credit approvals lock the invoice row (:func:`lock_invoice`: ``SELECT … FOR UPDATE`` and a
  re-read) and re-check the balance, and a check constraint on the table backs this up.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select, update

from portal.models import Invoice, InvoiceStatus
from portal.services import states
from portal.services.base import NotFound, ValidationFailed, session
from portal.services.bounds import places_problem

CENT = Decimal("0.01")
OPEN_STATUSES = (InvoiceStatus.ISSUED.value, InvoiceStatus.PARTIALLY_PAID.value)


def money(value: Decimal) -> Decimal:
    """``value`` rounded to cents, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


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
    if problem := places_problem(amount):
        raise ValidationFailed({name: [problem]})
    return amount.quantize(CENT)


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


def reload(model: type, record_id: int) -> Any:
    """Read a record again from the database, replacing what the session holds."""
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


def settle(invoice: Invoice) -> None:
    """Derive an issued invoice's status from its balance.

    The move is checked against the invoice state machine; the payment or credit event that
    changed the balance records the status before and after.
    """
    if invoice.status not in (*OPEN_STATUSES, InvoiceStatus.PAID.value):
        return
    if invoice.balance == 0:
        target = InvoiceStatus.PAID.value
    elif invoice.balance < invoice.total:
        target = InvoiceStatus.PARTIALLY_PAID.value
    else:
        target = InvoiceStatus.ISSUED.value
    if target != invoice.status:
        states.check(invoice, target)
        invoice.status = target
