"""Trackers keyed on the team's own references (docs/sync-attach.md).

A sheet the team already has names its orders by its own order id ("CA-2016-152156",
"10248"), kept on the order as ``external_ref``. Two kinds read such sheets:

- :class:`OrdersByRefKind` — one row per order, key = the order's external reference;
- :class:`LineRowsKind` — one row per order line with the order's fields repeated on each
  line (the Superstore layout), key = the line's external reference (the team's row or line
  id); ``order_ref`` names the line's order.

Both list records like their preset kinds (one query, chunked by key); the rows a sheet adds
are created in batches by :mod:`portal.sync.adopt`, not one at a time through ``create``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, not_, select

from portal.extensions import db
from portal.models import Customer, OrderLine, Product, SalesOrder
from portal.services import orders
from portal.services.base import Actor, NotFound, ServiceError
from portal.sync.base import CLOSED_ORDER_STATUSES, Field, Kind, Row, fields_of
from portal.sync.orders import OrdersKind
from sheets.trackers import Column

CENT = Decimal("0.01")
EXTERNAL_REF = "external_ref"
# a row without the team's id: the id is the team's to give, never the portal's
NO_KEY = {
    "orders": "no order id: type the team's order id in the key column",
    "order_lines": "no line id: type the team's line id in the key column",
}


def order_by_ref(ref: str) -> SalesOrder:
    """The order whose external reference is ``ref``; NotFound if none."""
    order = db.session.execute(
        select(SalesOrder).where(SalesOrder.external_ref == ref)
    ).scalar_one_or_none()
    if order is None:
        raise NotFound(f"no order with the reference {ref}")
    return order


class OrdersByRefKind(OrdersKind):
    """Orders keyed on the team's order id; a new row's order date is kept as given."""

    key_field = EXTERNAL_REF
    key_header = "Order ID"
    fields = fields_of(
        Field("number"),
        *(
            Field(
                f.name, f.type, f.editable, f.creatable or f.name in ("order_date", "customer_name")
            )
            for f in OrdersKind.fields.values()
        ),
    )
    preset = (
        Column("Order No", "number", "text", "portal"),
        Column("Customer", "customer", "text", "both"),
        Column("Order date", "order_date", "date", "both"),
        Column("Requested", "requested_date", "date", "both"),
        Column("Customer PO", "customer_po", "text", "both"),
    )
    columns = {**OrdersKind.columns, EXTERNAL_REF: SalesOrder.external_ref}
    batch_updates = False  # OrdersKind's batch path finds orders by number, not by reference

    def records(
        self, filter: str | None, wanted: Iterable[str], keys: Iterable[str] | None = None
    ) -> dict[str, Row]:
        rows = super().records(filter, {*wanted, EXTERNAL_REF}, keys)
        return {row[EXTERNAL_REF]: row for row in rows.values() if row[EXTERNAL_REF]}

    def order(self, key: str) -> SalesOrder:
        return order_by_ref(key)

    def create(self, values: Mapping[str, Any], actor: Actor) -> str:
        """A row without the team's order id: refused (the id is the team's to give; a new
        row with one is created by ``portal.sync.adopt``)."""
        raise ServiceError(NO_KEY["orders"])


class LineRowsKind(Kind):
    """One row per order line, the order's fields repeated; key = the line's reference."""

    name = "order_lines"
    key_field = EXTERNAL_REF
    key_header = "Line ID"
    fields = fields_of(
        Field("order_ref", creatable=True),
        Field("order"),
        Field("order_date", "date", creatable=True),
        Field("requested_date", "date", editable=True, creatable=True),
        Field("customer_po", editable=True, creatable=True),
        Field("customer", creatable=True),
        Field("customer_name", creatable=True),
        Field("sku", creatable=True),
        Field("product", creatable=True),
        Field("quantity", "int", editable=True, creatable=True),
        Field("unit_price", "decimal", editable=True, creatable=True),
        Field("discount_pct", "decimal", editable=True, creatable=True),
        Field("amount", "decimal"),
        Field("order_status"),
    )
    filters = {"open": "lines of orders not yet delivered, invoiced, closed or cancelled"}
    can_create = True
    order_fields = ("requested_date", "customer_po")  # edits on a line row change the order
    preset = (
        Column("Order ID", "order_ref", "text", "both"),
        Column("Order date", "order_date", "date", "both"),
        Column("Customer", "customer", "text", "both"),
        Column("SKU", "sku", "text", "both"),
        Column("Qty", "quantity", "int", "both"),
    )
    columns = {
        "id": OrderLine.id,
        EXTERNAL_REF: OrderLine.external_ref,
        "order_ref": SalesOrder.external_ref,
        "order": SalesOrder.number,
        "order_date": SalesOrder.order_date,
        "requested_date": SalesOrder.requested_date,
        "customer_po": SalesOrder.customer_po,
        "customer": Customer.code,
        "customer_name": Customer.name,
        "sku": Product.sku,
        "product": Product.name,
        "quantity": OrderLine.quantity,
        "qty_cancelled": OrderLine.qty_cancelled,
        "unit_price": OrderLine.unit_price,
        "discount_pct": OrderLine.discount_pct,
        "order_status": SalesOrder.status,
    }

    def query(self, filter: str | None) -> Select:
        query = (
            select(*self.columns.values())
            .join(SalesOrder, OrderLine.order_id == SalesOrder.id)
            .join(Customer, SalesOrder.customer_id == Customer.id)
            .join(Product, OrderLine.product_id == Product.id)
            .where(OrderLine.external_ref.is_not(None))
        )
        if filter == "open":
            query = query.where(not_(SalesOrder.status.in_(CLOSED_ORDER_STATUSES)))
        return query

    def finish(self, row: Row) -> None:
        open_qty = row["quantity"] - row["qty_cancelled"]
        row["amount"] = (Decimal(open_qty) * Decimal(row["unit_price"])).quantize(CENT)

    def create(self, values: Mapping[str, Any], actor: Actor) -> str:
        """A row without the team's line id: refused (see :data:`NO_KEY`)."""
        raise ServiceError(NO_KEY["order_lines"])

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        self.check_fields(changes, "editable")
        line = db.session.execute(
            select(OrderLine).where(OrderLine.external_ref == key)
        ).scalar_one_or_none()
        if line is None:
            raise NotFound(f"no order line with the reference {key}")
        on_order = {k: v for k, v in changes.items() if k in self.order_fields}
        on_line = {k: v for k, v in changes.items() if k not in self.order_fields}
        if on_order:
            orders.orders.update(line.order, on_order, actor)
        if on_line:
            orders.order_lines.update(line, on_line, actor)


TEAM_KINDS: dict[tuple[str, str], Kind] = {
    ("orders", EXTERNAL_REF): OrdersByRefKind(),
    ("order_lines", EXTERNAL_REF): LineRowsKind(),
}
