"""What an order import will do: customers and products matched or new, each order's wanted
state, and whether that is a create, an update, no change or a refusal.

Nothing here writes; ``imports_write`` carries a plan out. Matching: a customer or product by
its code (customer id, SKU) when the file gives one, else by its exact name; one not found is
new when the import may create it (its segment, region, category kept), else its rows are
refused. An order is found by its external reference (the team's order id). One found that an
import of this kind created and that has not moved on since (same version) is updated to the
file's values; one found that was entered in the portal, or changed there since, is left as
it is and its rows say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Customer, ImportRecord, OrderLine, Product, SalesOrder
from portal.services.imports_rows import (
    SHIPPED_STATUSES,
    LineIn,
    OrderIn,
    line_prices,
    status_for,
)

IN_CHUNK = 500
HEADER_FIELDS = (
    "customer_id",
    "order_date",
    "requested_date",
    "ship_date",
    "delivered_date",
    "ship_mode",
    "status",
    "customer_po",
    "ship_to_text",
)
LINE_FIELDS = (
    "product_id",
    "quantity",
    "unit_price",
    "list_price",
    "discount_pct",
    "qty_shipped",
    "qty_delivered",
    "qty_cancelled",
    "qty_returned",
)


@dataclass
class NewRecord:
    """A customer or product the import will create (``id`` once written)."""

    values: dict[str, Any]
    id: int | None = None


@dataclass
class Catalog:
    """Customers and products by the file's code or name: an id, or a new record."""

    customers: dict[tuple[str, str], int | NewRecord] = field(default_factory=dict)
    products: dict[tuple[str, str], int | NewRecord] = field(default_factory=dict)
    product_prices: dict[int, Decimal] = field(default_factory=dict)

    def new_customers(self) -> list[NewRecord]:
        return _unique_new(self.customers.values())

    def new_products(self) -> list[NewRecord]:
        return _unique_new(self.products.values())


def _unique_new(found: Iterable[int | NewRecord]) -> list[NewRecord]:
    seen: dict[int, NewRecord] = {}
    for item in found:
        if isinstance(item, NewRecord):
            seen.setdefault(id(item), item)
    return list(seen.values())


def _key(code: str | None, name: str | None) -> tuple[str, str]:
    return ("code", code) if code else ("name", name or "")


def _in_chunks(column: Any, values: Sequence[Any], *columns: Any) -> list[Any]:
    rows: list[Any] = []
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start : start + IN_CHUNK]
        rows.extend(db.session.execute(select(*columns).where(column.in_(chunk))).all())
    return rows


def _free_code(name: str, taken: set[str], width: int) -> str:
    base = re.sub(r"[^A-Z0-9]", "", name.upper())[: width - 4] or "IMPORTED"
    code, suffix = base, 1
    while code in taken:
        suffix += 1
        code = f"{base}-{suffix}"
    taken.add(code)
    return code


def resolve_customers(
    orders: Iterable[OrderIn], catalog: Catalog, may_create: bool
) -> dict[tuple[str, str], str]:
    """Match every order's customer; returns the refusals by customer key."""
    wanted: dict[tuple[str, str], Mapping[str, Any]] = {}
    for order in orders:
        head = order.header
        wanted.setdefault(_key(head.get("customer_code"), head.get("customer_name")), head)
    codes = [k[1] for k in wanted if k[0] == "code" and k not in catalog.customers]
    names = [k[1] for k in wanted if k[0] == "name" and k not in catalog.customers]
    for customer_id, code in _in_chunks(Customer.code, codes, Customer.id, Customer.code):
        catalog.customers[("code", code)] = customer_id
    for customer_id, name in _in_chunks(Customer.name, names, Customer.id, Customer.name):
        catalog.customers.setdefault(("name", name), customer_id)
    refused: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    for key, head in wanted.items():
        if key in catalog.customers:
            continue
        if not may_create:
            refused[key] = f"no customer {key[1]!r} (creating customers is off)"
            continue
        name = head.get("customer_name") or key[1]
        code = key[1] if key[0] == "code" else _free_code(name, taken | _codes_like(name), 20)
        problem = _too_long({"customer id": (code, 20), "customer name": (name, 120)})
        if problem:
            refused[key] = problem
            continue
        catalog.customers[key] = NewRecord(
            {
                "code": code,
                "name": name,
                "segment": (head.get("segment") or None),
                "region": (head.get("region") or None),
            }
        )
    return refused


def _codes_like(name: str) -> set[str]:
    base = re.sub(r"[^A-Z0-9]", "", name.upper())[:16]
    rows = db.session.execute(select(Customer.code).where(Customer.code.like(f"{base}%")))
    return set(rows.scalars())


def _too_long(values: Mapping[str, tuple[str | None, int]]) -> str:
    for label, (value, most) in values.items():
        if value and len(value) > most:
            return f"the {label} {value[:20]!r}… is longer than {most} characters"
    return ""


def resolve_products(
    lines: Iterable[LineIn],
    catalog: Catalog,
    may_create: bool,
    attributes: Mapping[str, tuple[str | None, str | None]],
) -> dict[tuple[str, str], str]:
    """Match every line's product; returns the refusals by product key. ``attributes`` are
    each product's category and sub-category, as the file first gives them."""
    wanted: dict[tuple[str, str], LineIn] = {}
    for line in lines:
        wanted.setdefault(_key(line.product_code, line.product_name), line)
    codes = [k[1] for k in wanted if k[0] == "code" and k not in catalog.products]
    names = [k[1] for k in wanted if k[0] == "name" and k not in catalog.products]
    columns = (Product.id, Product.sku, Product.list_price)
    for product_id, sku, price in _in_chunks(Product.sku, codes, *columns):
        catalog.products[("code", sku)] = product_id
        catalog.product_prices[product_id] = price
    for product_id, name, price in _in_chunks(
        Product.name, names, Product.id, Product.name, Product.list_price
    ):
        catalog.products.setdefault(("name", name), product_id)
        catalog.product_prices[product_id] = price
    refused: dict[tuple[str, str], str] = {}
    for key, line in wanted.items():
        if key in catalog.products:
            continue
        if not may_create:
            refused[key] = f"unknown product {key[1]!r} (creating products is off)"
            continue
        if key[0] == "name":
            refused[key] = f"no product id for {key[1]!r}, and no product of that name"
            continue
        name = line.product_name or key[1]
        problem = _too_long({"product id": (key[1], 40), "product name": (name, 160)})
        if problem:
            refused[key] = problem
            continue
        category, sub_category = attributes.get(key[1], (None, None))
        list_price = line_prices(line)[1]
        catalog.products[key] = NewRecord(
            {
                "sku": key[1],
                "name": name,
                "list_price": list_price if list_price is not None else Decimal("0"),
                "category": category or None,
                "sub_category": sub_category or None,
            }
        )
    return refused


def customer_of(order: OrderIn, catalog: Catalog) -> int | NewRecord | None:
    head = order.header
    return catalog.customers.get(_key(head.get("customer_code"), head.get("customer_name")))


def product_of(line: LineIn, catalog: Catalog) -> int | NewRecord | None:
    return catalog.products.get(_key(line.product_code, line.product_name))


def ship_to_text(head: Mapping[str, Any]) -> str | None:
    """The ship-to the file gives, as one line ("street, city state postcode, country")."""
    place = " ".join(str(part) for part in (head.get("ship_city"), head.get("ship_state")) if part)
    place = " ".join(part for part in (place, head.get("ship_postal_code") or "") if part)
    parts = [head.get("ship_street"), place, head.get("ship_country")]
    text = ", ".join(str(part) for part in parts if part)
    return text[:300] or None


def wanted_header(order: OrderIn, today: date, open_status: str = "confirmed") -> dict[str, Any]:
    """The order's columns as the file has them (``customer_id`` filled in later)."""
    head = order.header
    status = status_for(head, today, open_status)
    if (
        status == open_status
        and order.lines
        and all(line.cancelled >= line.quantity for line in order.lines)
    ):
        status = "cancelled"
    return {
        "order_date": head["order_date"],
        "requested_date": head.get("requested_date"),
        "promised_date": head.get("promised_date"),
        "ship_date": head.get("ship_date"),
        "delivered_date": head.get("delivered_date"),
        "ship_mode": head.get("ship_mode"),
        "status": status,
        "customer_po": head.get("customer_po"),
        "notes": head.get("notes"),
        "ship_to_text": ship_to_text(head),
    }


def wanted_line(line: LineIn, status: str, prices: tuple[Decimal, Decimal]) -> dict[str, Any]:
    """A line's prices and quantities for an order of ``status`` (history: nothing
    allocated)."""
    kept = line.quantity - line.cancelled
    shipped = kept if status in SHIPPED_STATUSES else 0
    delivered = kept if status in ("delivered", "invoiced", "closed") else 0
    cancelled = line.quantity if status == "cancelled" else line.cancelled
    return {
        "quantity": line.quantity,
        "unit_price": prices[0],
        "list_price": prices[1],
        "discount_pct": line.discount_pct,
        "qty_shipped": shipped,
        "qty_delivered": delivered,
        "qty_cancelled": cancelled,
        "qty_returned": line.returned,
    }


def existing_orders(refs: Sequence[str]) -> dict[str, SalesOrder]:
    """The orders these external references name, with their lines."""
    found: dict[str, SalesOrder] = {}
    for start in range(0, len(refs), IN_CHUNK):
        chunk = refs[start : start + IN_CHUNK]
        query = select(SalesOrder).where(SalesOrder.external_ref.in_(chunk))
        found.update((order.external_ref, order) for order in db.session.scalars(query))
    return found


def imported_versions(order_ids: Sequence[int]) -> dict[int, int]:
    """The version each order had after the last import that created or updated it."""
    versions: dict[int, int] = {}
    for start in range(0, len(order_ids), IN_CHUNK):
        chunk = order_ids[start : start + IN_CHUNK]
        query = (
            select(ImportRecord.entity_id, func.max(ImportRecord.id))
            .where(ImportRecord.entity == "sales_order", ImportRecord.entity_id.in_(chunk))
            .group_by(ImportRecord.entity_id)
        )
        last_ids = [row[1] for row in db.session.execute(query)]
        if last_ids:
            rows = db.session.execute(
                select(ImportRecord.entity_id, ImportRecord.version).where(
                    ImportRecord.id.in_(last_ids)
                )
            )
            versions.update((entity_id, version) for entity_id, version in rows)
    return versions


def lines_moved_on(order_ids: Sequence[int]) -> set[int]:
    """Orders (created by an import) with a line whose version is not the one the last import
    left: 1 for a line an import created, else the version its last update recorded."""
    moved: set[int] = set()
    for start in range(0, len(order_ids), IN_CHUNK):
        chunk = order_ids[start : start + IN_CHUNK]
        lines = db.session.execute(
            select(OrderLine.order_id, OrderLine.id, OrderLine.version).where(
                OrderLine.order_id.in_(chunk)
            )
        ).all()
        changed = [(order_id, line_id) for order_id, line_id, version in lines if version != 1]
        if not changed:
            continue
        recorded = dict(
            db.session.execute(
                select(ImportRecord.entity_id, func.max(ImportRecord.version))
                .where(
                    ImportRecord.entity == "order_line",
                    ImportRecord.entity_id.in_([line_id for _, line_id in changed]),
                )
                .group_by(ImportRecord.entity_id)
            ).all()
        )
        versions = {line_id: version for _, line_id, version in lines}
        moved.update(
            order_id for order_id, line_id in changed if recorded.get(line_id) != versions[line_id]
        )
    return moved


def differences(
    order: SalesOrder, header: Mapping[str, Any], lines: Mapping[str, dict[str, Any]]
) -> tuple[dict[str, Any], dict[int, dict[str, Any]], list[str]]:
    """What differs between a stored order and the file: header fields, lines by id, and
    the external refs of lines the order lacks."""
    header_changes = {
        name: value for name, value in header.items() if getattr(order, name) != value
    }
    by_ref: dict[str | None, OrderLine] = {line.external_ref: line for line in order.lines}
    line_changes: dict[int, dict[str, Any]] = {}
    missing: list[str] = []
    for ref, values in lines.items():
        stored = by_ref.get(ref)
        if stored is None:
            missing.append(ref)
            continue
        changed = {name: v for name, v in values.items() if getattr(stored, name) != v}
        if changed:
            line_changes[stored.id] = changed
    return header_changes, line_changes, missing
