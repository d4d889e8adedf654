"""Order entry: a draft's lines added, changed and removed, and what the entry page shows as
the user types (the price with its quantity break, the line total, stock per warehouse).

Lines change only while the order is open for entry (``orders.EDITABLE_STATUSES``: a quote,
a draft, or a held order being fixed); after that, amendments and cancellations
(``changes``) take over. A changed quantity is re-priced from the price list unless the
line's price was overridden or a price is given with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select

from portal.extensions import db
from portal.models import (
    Customer,
    OrderCheck,
    OrderLine,
    PriceOverrideRequest,
    Product,
    SalesOrder,
    StockLevel,
    Warehouse,
)
from portal.services import audit, invoices, lifecycle, orders, pricing, units
from portal.services.base import (
    Actor,
    ConflictError,
    NotFound,
    ValidationFailed,
    check_version,
    unit_of_work,
)


def _editable(order: SalesOrder, doing: str) -> None:
    if order.status not in orders.EDITABLE_STATUSES:
        raise ConflictError(
            f"order {order.number} is {order.status.replace('_', ' ')}; its lines can't be "
            f"{doing} (amend or cancel instead)"
        )


def update_line(
    line: OrderLine,
    changes: Mapping[str, Any],
    actor: Actor,
    expected_version: int | None = None,
) -> OrderLine:
    """Change a line's quantity, price or discount; a new quantity without a price is
    re-priced from the price list (unless the line's price was overridden)."""
    _editable(line.order, "changed")
    changes = dict(changes)
    quantity = changes.get("quantity")
    if (
        isinstance(quantity, int)
        and not isinstance(quantity, bool)
        and quantity > 0
        and "unit_price" not in changes
        and not line.price_override_by
    ):
        changes["unit_price"] = pricing.quote(
            line.order.customer, line.product, quantity
        ).unit_price
    return orders.order_lines.update(line, changes, actor, expected_version)


def remove_line(line: OrderLine, actor: Actor, expected_version: int | None = None) -> SalesOrder:
    """Delete a line of an order still open for entry (its price requests go with it)."""
    orders.orders._require(actor, "can_write")
    order = line.order
    _editable(order, "removed")
    check_version(line, expected_version)
    with unit_of_work() as sess:
        requests = sess.execute(
            delete(PriceOverrideRequest)
            .where(PriceOverrideRequest.order_line_id == line.id)
            .returning(PriceOverrideRequest.id)
        ).scalars()
        audit.record(
            actor,
            "order_line",
            line.id,
            "delete",
            before={
                "order": order.number,
                "line_no": line.line_no,
                "product": line.product.sku,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
            },
            detail={"price_requests_removed": list(requests)},
        )
        order.lines.remove(line)
        sess.delete(line)
    return order


@dataclass(frozen=True)
class LineQuote:
    """What the entry page shows for one line as it is typed."""

    product: Product
    quantity: int
    price: pricing.PriceQuote
    stock: list[tuple[Warehouse, int]]

    @property
    def line_total(self) -> Decimal:
        return (Decimal(self.quantity) * self.price.unit_price).quantize(Decimal("0.01"))

    def as_dict(self, currency: str) -> dict[str, Any]:
        pack = self.product.pack_size
        return {
            "product_id": self.product.id,
            "sku": self.product.sku,
            "unit": self.product.unit,
            "pack_size": pack,
            "quantity": self.quantity,
            "quantity_text": units.quantity_text(self.quantity, self.product),
            "whole_packs": self.quantity % pack == 0,
            "unit_price": str(self.price.unit_price),
            "unit_price_text": units.price_text(self.price.unit_price, currency),
            "price_break": self.price.min_quantity,
            "price_source": self.price.source,
            "line_total": str(self.line_total),
            "line_total_text": units.price_text(self.line_total, currency),
            "available": sum(units_ for _, units_ in self.stock),
            "enough": sum(units_ for _, units_ in self.stock) >= self.quantity,
            "warehouses": [{"code": w.code, "name": w.name, "available": n} for w, n in self.stock],
        }


def stock_by_warehouse(product_ids: Iterable[int]) -> dict[int, list[tuple[Warehouse, int]]]:
    """Available units per active warehouse (priority order) of each product: one query."""
    wanted = sorted(set(product_ids))
    found: dict[int, list[tuple[Warehouse, int]]] = {product_id: [] for product_id in wanted}
    if not wanted:
        return found
    rows = db.session.execute(
        select(StockLevel.product_id, Warehouse, StockLevel.on_hand - StockLevel.allocated)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .where(StockLevel.product_id.in_(wanted), Warehouse.active.is_(True))
        .order_by(StockLevel.product_id, Warehouse.priority, Warehouse.id)
    ).all()
    for product_id, warehouse, available in rows:
        found[product_id].append((warehouse, int(available)))
    return found


def quote_line(customer_id: int | None, product_id: int, quantity: int) -> LineQuote:
    """The price (break applied) and stock of ``quantity`` units of a product for a
    customer (no customer: the list price)."""
    if quantity < 1:
        raise ValidationFailed({"quantity": ["must be a whole number above 0"]})
    product = db.session.get(Product, product_id)
    if product is None:
        raise NotFound(f"product {product_id} does not exist")
    customer = db.session.get(Customer, customer_id) if customer_id else None
    if customer_id and customer is None:
        raise NotFound(f"customer {customer_id} does not exist")
    price = (
        pricing.quote(customer, product, quantity)
        if customer is not None
        else pricing.PriceQuote(product.list_price, None, None)
    )
    return LineQuote(product, quantity, price, stock_by_warehouse([product_id])[product_id])


@dataclass(frozen=True)
class Exposure:
    """A customer's credit exposure: open invoices plus open (confirmed, unshipped) orders."""

    open_invoices: Decimal
    open_orders: Decimal
    limit: Decimal

    @property
    def total(self) -> Decimal:
        return self.open_invoices + self.open_orders

    @property
    def headroom(self) -> Decimal:
        return self.limit - self.total


def credit_exposure(customer: Customer) -> Exposure:
    """What the ``credit_exposure`` check counts for ``customer`` now (two queries)."""
    return Exposure(
        invoices.open_balance_for_customer(customer.id),
        lifecycle.open_order_value(customer.id).quantize(Decimal("0.01")),
        customer.credit_limit,
    )


def customer_orders(customer_id: int, limit: int = 50) -> list[SalesOrder]:
    """A customer's latest orders (with their lines, for the totals): two queries."""
    return list(
        db.session.execute(
            select(SalesOrder)
            .where(SalesOrder.customer_id == customer_id)
            .order_by(SalesOrder.id.desc())
            .limit(limit)
        ).scalars()
    )


@dataclass(frozen=True)
class CheckRow:
    """One of the nine checks as the checklist panel shows it."""

    name: str
    label: str
    passed: bool | None  # None: not run yet
    detail: str


CHECK_LABELS = {
    "customer_active": "Customer active, no credit hold",
    "credit_exposure": "Credit exposure within the limit",
    "duplicate_po": "Customer PO not on another open order",
    "products_active": "Every product active",
    "pack_size": "Quantities in whole packs",
    "price": "Prices from the price list (or approved)",
    "requested_date": "Requested date after the lead time",
    "ship_to": "Ship-to address complete",
    "terms": "Payment terms set",
}


def hold_text(reasons: str | None) -> str:
    """An order's hold reasons with each check's label instead of its code."""
    if not reasons:
        return ""
    worded = []
    for reason in reasons.split("; "):
        name, sep, detail = reason.partition(": ")
        worded.append(f"{CHECK_LABELS[name]}: {detail}" if sep and name in CHECK_LABELS else reason)
    return "; ".join(worded)


def checklist(order_id: int) -> list[CheckRow]:
    """The nine checks of an order, as last run (one query), in the checklist's order."""
    stored = {
        check.name: check
        for check in db.session.execute(
            select(OrderCheck).where(OrderCheck.order_id == order_id)
        ).scalars()
    }
    rows = []
    for name in lifecycle.CHECK_NAMES:
        check = stored.get(name)
        rows.append(
            CheckRow(
                name,
                CHECK_LABELS[name],
                None if check is None else check.passed,
                "not checked yet" if check is None else (check.detail or ""),
            )
        )
    return rows
