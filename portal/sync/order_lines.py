"""Order lines in a tracker (key ``ORDER/LINE``): quantities and prices edited in the sheet,
a blank-key row adds a line to an order."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, not_, select

from portal.extensions import db
from portal.models import Backorder, OrderLine, Product, SalesOrder, Shipment
from portal.services import changes as order_changes
from portal.services import orders
from portal.services.base import Actor, NotFound, ServiceError, ValidationFailed
from portal.sync.base import (
    CLOSED_ORDER_STATUSES,
    Field,
    Kind,
    Row,
    fields_of,
    select_chunks,
)
from portal.sync.orders import order_by_number
from sheets.trackers import Column

CENT = Decimal("0.01")


def split_line_key(key: str) -> tuple[str, int]:
    """``SO000123/1`` -> (``SO000123``, 1); NotFound for anything else."""
    number, sep, line_no = key.rpartition("/")
    if not sep or not line_no.isdigit():
        raise NotFound(f"{key!r} is not a line key (ORDER/LINE, e.g. SO000123/1)")
    return number, int(line_no)


class OrderLinesKind(Kind):
    name = "order_lines"
    entities = frozenset(("order_line", "sales_order", "shipment", "backorder"))
    key_field = "line_key"
    key_header = "Line"
    fields = fields_of(
        Field("order", creatable=True),
        Field("line_no", "int"),
        Field("sku", creatable=True),
        Field("product"),
        Field("quantity", "int", editable=True, creatable=True),
        Field("unit_price", "decimal", editable=True, creatable=True),
        Field("list_price", "decimal"),
        Field("discount_pct", "decimal", editable=True, creatable=True),
        Field("qty_allocated", "int"),
        Field("qty_backordered", "int"),
        Field("qty_shipped", "int"),
        Field("qty_delivered", "int"),
        Field("amount", "decimal"),
        Field("order_status"),
    )
    filters = {"open": "lines of orders not yet delivered, invoiced, closed or cancelled"}
    can_create = True
    can_cancel = True
    batch_updates = True
    preset = (
        Column("Order No", "order", "text", "portal"),
        Column("SKU", "sku", "text", "portal"),
        Column("Product", "product", "text", "portal"),
        Column("Qty", "quantity", "int", "both"),
        Column("Unit price", "unit_price", "decimal", "both"),
        Column("Discount %", "discount_pct", "decimal", "both"),
        Column("Allocated", "qty_allocated", "int", "portal"),
        Column("Backordered", "qty_backordered", "int", "portal"),
        Column("Shipped", "qty_shipped", "int", "portal"),
        Column("Order status", "order_status", "text", "portal"),
    )
    columns = {
        "id": OrderLine.id,
        "order": SalesOrder.number,
        "line_no": OrderLine.line_no,
        "sku": Product.sku,
        "product": Product.name,
        "quantity": OrderLine.quantity,
        "unit_price": OrderLine.unit_price,
        "list_price": OrderLine.list_price,
        "discount_pct": OrderLine.discount_pct,
        "qty_allocated": OrderLine.qty_allocated,
        "qty_backordered": OrderLine.qty_backordered,
        "qty_shipped": OrderLine.qty_shipped,
        "qty_delivered": OrderLine.qty_delivered,
        "qty_cancelled": OrderLine.qty_cancelled,
        "order_status": SalesOrder.status,
    }

    def query(self, filter: str | None) -> Select:
        query = (
            select(*self.columns.values())
            .join(SalesOrder, OrderLine.order_id == SalesOrder.id)
            .join(Product, OrderLine.product_id == Product.id)
        )
        if filter == "open":
            query = query.where(not_(SalesOrder.status.in_(CLOSED_ORDER_STATUSES)))
        return query

    def narrow(self, query: Select, keys: list[str]) -> Select:
        return query.where(SalesOrder.number.in_({split_line_key(k)[0] for k in keys}))

    def touches(self, entity: str, ids: list[int]) -> ColumnElement[bool] | None:
        by_order = {
            "sales_order": lambda: OrderLine.order_id.in_(ids),
            "shipment": lambda: OrderLine.order_id.in_(
                select(Shipment.order_id).where(Shipment.id.in_(ids))
            ),
            "order_line": lambda: OrderLine.id.in_(ids),
            "backorder": lambda: OrderLine.id.in_(
                select(Backorder.order_line_id).where(Backorder.id.in_(ids))
            ),
        }
        return by_order[entity]() if entity in by_order else None

    def left_filter(self, filter: str, entity: str, status: str) -> bool:
        return entity == "sales_order" and status not in CLOSED_ORDER_STATUSES

    def finish(self, row: Row) -> None:
        row["line_key"] = f"{row['order']}/{row['line_no']}"
        open_qty = row["quantity"] - row["qty_cancelled"]
        row["amount"] = (Decimal(open_qty) * Decimal(row["unit_price"])).quantize(CENT)

    def _line(self, key: str) -> OrderLine:
        number, line_no = split_line_key(key)
        line = db.session.execute(
            select(OrderLine)
            .join(SalesOrder, OrderLine.order_id == SalesOrder.id)
            .where(SalesOrder.number == number, OrderLine.line_no == line_no)
        ).scalar_one_or_none()
        if line is None:
            raise NotFound(f"order line {key} does not exist")
        return line

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        self.check_fields(changes, "editable")
        orders.order_lines.update(self._line(key), dict(changes), actor)

    def cancel(self, key: str, actor: Actor, tracker_name: str) -> None:
        note = f"row deleted from tracker {tracker_name}"
        order_changes.cancel_line(self._line(key), actor, "customer_request", note)

    def update_many(
        self, items: Sequence[tuple[str, Mapping[str, Any]]], actor: Actor, tracker_name: str
    ) -> list[ServiceError | None]:
        """The lines of ``items`` and their orders loaded with one query per chunk of
        orders, then ``order_lines.update_many``: one UPDATE for all the applied edits."""
        numbers = set()
        for key, _ in items:
            with contextlib.suppress(NotFound):  # not a line key: "does not exist" below
                numbers.add(split_line_key(key)[0])
        query = select(OrderLine, SalesOrder).join(SalesOrder, OrderLine.order_id == SalesOrder.id)
        found = {
            f"{order.number}/{line.line_no}": line
            for _, (line, order) in select_chunks(query, sorted(numbers), self._of_orders)
        }
        return self.update_loaded(items, found, orders.order_lines.update_many, actor)

    @staticmethod
    def _of_orders(query: Select, numbers: list[str]) -> Select:
        return query.where(SalesOrder.number.in_(numbers))

    def create(self, values: Mapping[str, Any], actor: Actor) -> str:
        self.check_fields(values, "creatable")
        data = dict(values)
        number, sku = data.pop("order", None), data.pop("sku", None)
        errors = {}
        if not number:
            errors["order"] = ["is required (an order number)"]
        if not sku:
            errors["sku"] = ["is required"]
        if errors:
            raise ValidationFailed(errors)
        order = order_by_number(str(number))
        product_id = db.session.execute(
            select(Product.id).where(Product.sku == str(sku))
        ).scalar_one_or_none()
        if product_id is None:
            raise ValidationFailed({"sku": [f"no product with SKU {sku}"]})
        line = orders.add_line(order, {**data, "product_id": product_id}, actor)
        return f"{order.number}/{line.line_no}"
