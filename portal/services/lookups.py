"""Search-as-you-type lookups for the pickers: a few matches of what is typed, never a table.

Each kind answers at most ``limit`` rows (1..:data:`MAX_LIMIT`) in one query, matching the
typed text against the record's code (a prefix, served by the code's unique index) or its
name (contains, bounded by the limit): customers by code or name, products by SKU or name,
invoices by number or customer, the ship-to addresses of one customer, orders by number
(or the team's order id), warehouses by code or name, trackers by name. One more row than
asked is read to tell whether there are more. Reads only; the caller checks the permission
to read the kind.

Order and invoice numbers (the big tables) are matched as a prefix of the stored number
(``SO-0001`` or just the digits: ``123`` finds SO-000123 and the numbers starting
SO-123), with the pattern written into the statement, so PostgreSQL plans it on an index
(order numbers: the trigram index of migration 0023; invoice numbers: the
``varchar_pattern_ops`` index of 0024) whatever the driver's prepared plans.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, or_, select

from portal.models import (
    Customer,
    CustomerAddress,
    Invoice,
    Product,
    SalesOrder,
    Tracker,
    Warehouse,
)
from portal.services.base import ValidationFailed, session
from portal.services.numbering import PREFIXES, WIDTH

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
MAX_TEXT = 100


@dataclass(frozen=True)
class Matches:
    """What a lookup found: the rows (``id``, ``label`` and the kind's own fields) and
    whether more rows match than were returned."""

    result: list[dict[str, Any]]
    more: bool


def _money(value: Decimal, currency: str) -> str:
    return f"{currency} {value:,.2f}"


def _customers(text: str, _: dict[str, Any]) -> tuple[Select, Callable[[Any], dict]]:
    query = select(Customer).order_by(Customer.code)
    if text:
        query = query.where(_code_or_name(Customer.code, Customer.name, text))

    def row(customer: Customer) -> dict[str, Any]:
        return {
            "id": customer.id,
            "label": f"{customer.code} {customer.name}",
            "code": customer.code,
            "name": customer.name,
            "currency": customer.currency,
            "active": customer.active,
            "credit_hold": customer.credit_hold,
        }

    return query, row


def _products(text: str, args: dict[str, Any]) -> tuple[Select, Callable[[Any], dict]]:
    query = select(Product).order_by(Product.sku)
    if not args.get("include_inactive"):
        query = query.where(Product.active.is_(True))
    if text:
        query = query.where(_code_or_name(Product.sku, Product.name, text))

    def row(product: Product) -> dict[str, Any]:
        return {
            "id": product.id,
            "label": f"{product.sku} {product.name}",
            "sku": product.sku,
            "name": product.name,
            "unit": product.unit,
            "pack_size": product.pack_size,
            "list_price": str(product.list_price),
            "active": product.active,
        }

    return query, row


def _invoices(text: str, _: dict[str, Any]) -> tuple[Select, Callable[[Any], dict]]:
    query = (
        select(Invoice, Customer.code, Customer.name)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.number.is_not(None))
        .order_by(Invoice.number.desc())
    )
    if text:
        query = query.where(
            or_(
                number_matches(Invoice.number, "invoice", text),
                _code_or_name(Customer.code, Customer.name, text),
            )
        )

    def row(found: Any) -> dict[str, Any]:
        invoice, code, name = found
        balance = _money(invoice.balance, invoice.currency)
        return {
            "id": invoice.id,
            "label": f"{invoice.number} · {code} {name} · balance {balance}",
            "number": invoice.number,
            "customer": f"{code} {name}",
            "status": invoice.status,
            "total": str(invoice.total),
            "balance": str(invoice.balance),
            "currency": invoice.currency,
        }

    return query, row


def _ship_tos(text: str, args: dict[str, Any]) -> tuple[Select, Callable[[Any], dict]]:
    customer_id = args.get("customer_id")
    if customer_id is None:
        raise ValidationFailed({"customer_id": ["is required: the customer whose addresses"]})
    query = (
        select(CustomerAddress)
        .where(CustomerAddress.customer_id == customer_id)
        .order_by(CustomerAddress.is_default_ship_to.desc(), CustomerAddress.label)
    )
    if text:
        query = query.where(
            or_(
                CustomerAddress.label.icontains(text, autoescape=True),
                CustomerAddress.line1.icontains(text, autoescape=True),
                CustomerAddress.city.icontains(text, autoescape=True),
            )
        )

    def row(address: CustomerAddress) -> dict[str, Any]:
        return {
            "id": address.id,
            "label": repr(address),
            "default": address.is_default_ship_to,
            "complete": address.is_complete,
        }

    return query, row


def _orders(text: str, _: dict[str, Any]) -> tuple[Select, Callable[[Any], dict]]:
    query = (
        select(SalesOrder, Customer.code, Customer.name)
        .join(Customer, Customer.id == SalesOrder.customer_id)
        .order_by(SalesOrder.number.desc())
    )
    if text:
        query = query.where(
            or_(
                number_matches(SalesOrder.number, "sales_order", text),
                SalesOrder.external_ref == text,
            )
        )

    def row(found: Any) -> dict[str, Any]:
        order, code, name = found
        return {
            "id": order.id,
            "label": f"{order.number} · {code} {name}",
            "number": order.number,
            "customer": f"{code} {name}",
            "status": order.status,
            "order_date": order.order_date.isoformat() if order.order_date else None,
        }

    return query, row


def _warehouses(text: str, _: dict[str, Any]) -> tuple[Select, Callable[[Any], dict]]:
    query = select(Warehouse).order_by(Warehouse.priority, Warehouse.code)
    if text:
        query = query.where(_code_or_name(Warehouse.code, Warehouse.name, text))

    def row(warehouse: Warehouse) -> dict[str, Any]:
        return {
            "id": warehouse.id,
            "label": f"{warehouse.code} {warehouse.name}",
            "code": warehouse.code,
            "name": warehouse.name,
            "priority": warehouse.priority,
            "active": warehouse.active,
        }

    return query, row


def _trackers(text: str, _: dict[str, Any]) -> tuple[Select, Callable[[Any], dict]]:
    query = select(Tracker).order_by(Tracker.name)
    if text:
        query = query.where(Tracker.name.icontains(text, autoescape=True))

    def row(tracker: Tracker) -> dict[str, Any]:
        return {
            "id": tracker.id,
            "label": tracker.name,
            "name": tracker.name,
            "kind": tracker.kind,
            "backend": tracker.backend,
        }

    return query, row


def number_matches(column: Any, kind: str, text: str) -> ColumnElement[bool]:
    """``column`` (a business number of ``kind``) starts with what was typed: the number's
    text (any case), or its digits alone (``123``: SO-000123 itself, or SO-123…)."""
    typed = text.strip().upper()
    prefix = PREFIXES[kind]
    if typed.isdigit():
        exact = f"{prefix}{typed.zfill(WIDTH)}"
        return or_(column == exact, _starts_with(column, f"{prefix}{typed}"))
    return _starts_with(column, typed)


def _starts_with(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column LIKE 'prefix%'`` with the pattern in the statement's text (escaped), so the
    planner sees a constant prefix and uses the column's pattern index."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = bindparam(None, f"{escaped}%", literal_execute=True)
    return column.like(pattern, escape="\\")


def _code_or_name(code: Any, name: Any, text: str) -> ColumnElement[bool]:
    return or_(code.istartswith(text, autoescape=True), name.icontains(text, autoescape=True))


KINDS: dict[str, Callable[[str, dict[str, Any]], tuple[Select, Callable[[Any], dict]]]] = {
    "customer": _customers,
    "product": _products,
    "invoice": _invoices,
    "ship_to": _ship_tos,
    "order": _orders,
    "warehouse": _warehouses,
    "tracker": _trackers,
}
JOINED = frozenset({"invoice", "order"})  # kinds whose rows carry their customer's columns


def lookup(kind: str, text: str, limit: int = DEFAULT_LIMIT, **args: Any) -> Matches:
    """Up to ``limit`` records of ``kind`` matching ``text`` (all of them, bounded, if blank)."""
    if kind not in KINDS:
        raise ValidationFailed({"kind": [f"must be one of {', '.join(sorted(KINDS))}"]})
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed({"limit": [f"must be a whole number from 1 to {MAX_LIMIT}"]})
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise ValidationFailed({"q": [f"is longer than {MAX_TEXT} characters"]})
    query, row = KINDS[kind](text, args)
    found = session().execute(query.limit(limit + 1))
    rows = list(found if kind in JOINED else found.scalars())
    return Matches([row(item) for item in rows[:limit]], len(rows) > limit)
