"""Orders in a tracker: header fields edited in the sheet, a blank-key row creates an order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, func, not_, select

from portal.extensions import db
from portal.models import INCOTERMS, Customer, OrderLine, PaymentTerm, SalesOrder
from portal.services import changes as order_changes
from portal.services import orders
from portal.services.base import (
    Actor,
    NotFound,
    ServiceError,
    ValidationFailed,
    unit_of_work,
)
from portal.sync.base import CLOSED_ORDER_STATUSES, Field, Kind, Row, fields_of, select_chunks
from sheets.trackers import Column


def order_by_number(number: str) -> SalesOrder:
    """The order ``number``; NotFound if there is none."""
    order = db.session.execute(
        select(SalesOrder).where(SalesOrder.number == number)
    ).scalar_one_or_none()
    if order is None:
        raise NotFound(f"order {number} does not exist")
    return order


class OrdersKind(Kind):
    name = "orders"
    entities = frozenset(("sales_order", "order_line"))
    key_field = "number"
    key_header = "Order No"
    fields = fields_of(
        Field("customer", creatable=True),
        Field("customer_name"),
        Field("customer_po", editable=True, creatable=True),
        Field("order_date", "date"),
        Field("requested_date", "date", editable=True, creatable=True),
        Field("promised_date", "date", editable=True, creatable=True),
        Field("incoterm", editable=True, creatable=True),
        Field("payment_terms"),
        Field("currency"),
        Field("status"),
        Field("hold_reasons"),
        Field("notes", editable=True, creatable=True),
        Field("total", "decimal"),
    )
    filters = {"open": "orders not yet delivered, invoiced, closed or cancelled"}
    can_create = True
    can_cancel = True
    batch_updates = True
    choices = {"incoterm": INCOTERMS}
    preset = (
        Column("Customer", "customer", "text", "both"),
        Column("Customer name", "customer_name", "text", "portal"),
        Column("Customer PO", "customer_po", "text", "both"),
        Column("Order date", "order_date", "date", "portal"),
        Column("Requested", "requested_date", "date", "both"),
        Column("Promised", "promised_date", "date", "both"),
        Column("Incoterm", "incoterm", "text", "both"),
        Column("Status", "status", "text", "portal"),
        Column("Total", "total", "decimal", "portal"),
        Column("Notes", "notes", "text", "both"),
    )
    columns = {
        "id": SalesOrder.id,
        "number": SalesOrder.number,
        "customer": Customer.code,
        "customer_name": Customer.name,
        "customer_po": SalesOrder.customer_po,
        "order_date": SalesOrder.order_date,
        "requested_date": SalesOrder.requested_date,
        "promised_date": SalesOrder.promised_date,
        "incoterm": SalesOrder.incoterm,
        "payment_terms": PaymentTerm.code,
        "currency": SalesOrder.currency,
        "status": SalesOrder.status,
        "hold_reasons": SalesOrder.hold_reasons,
        "notes": SalesOrder.notes,
    }

    def query(self, filter: str | None) -> Select:
        """The orders inside ``filter`` (their ids; :meth:`records` selects the columns)."""
        return self._filtered(select(SalesOrder.id), filter)

    def touches(self, entity: str, ids: list[int]) -> ColumnElement[bool] | None:
        if entity == "sales_order":
            return SalesOrder.id.in_(ids)
        if entity == "order_line":
            return SalesOrder.id.in_(select(OrderLine.order_id).where(OrderLine.id.in_(ids)))
        return None

    def left_filter(self, filter: str, entity: str, status: str) -> bool:
        # "open": a move out of an open status may have closed it; a line never leaves alone
        return entity == "sales_order" and status not in CLOSED_ORDER_STATUSES

    @staticmethod
    def _filtered(query: Select, filter: str | None) -> Select:
        if filter == "open":
            query = query.where(not_(SalesOrder.status.in_(CLOSED_ORDER_STATUSES)))
        return query

    def records(
        self, filter: str | None, wanted: Iterable[str], keys: Iterable[str] | None = None
    ) -> dict[str, Row]:
        """Only the wanted columns (and id, number) are selected; ``total`` is summed from
        the lines (open quantity times unit price, per line to the cent)."""
        wanted = set(wanted)
        cols = {n: c for n, c in self.columns.items() if n in wanted or n in ("id", "number")}
        query = (
            select(*cols.values())
            .join(Customer, SalesOrder.customer_id == Customer.id)
            .outerjoin(PaymentTerm, SalesOrder.payment_term_id == PaymentTerm.id)
        )
        keys = None if keys is None else list(keys)
        out: dict[str, Row] = {}
        for _, values in select_chunks(self._filtered(query, filter), keys, self.narrow):
            row = dict(zip(cols, values, strict=True))
            out[row["number"]] = row
        if "total" in wanted:
            totals = self._totals(filter, keys)
            zero = Decimal("0.00")
            for row in out.values():
                row["total"] = totals.get(row["id"], zero)
        return out

    def _totals(self, filter: str | None, keys: list[str] | None) -> dict[int, Decimal]:
        cent = Decimal("0.01")
        totals: dict[int, Decimal] = {}
        query = select(
            OrderLine.order_id, OrderLine.quantity, OrderLine.qty_cancelled, OrderLine.unit_price
        ).join(SalesOrder, OrderLine.order_id == SalesOrder.id)
        for _, (order_id, qty, cancelled, price) in select_chunks(
            self._filtered(query, filter), keys, self.narrow
        ):
            amount = (Decimal(qty - cancelled) * Decimal(price)).quantize(cent)
            totals[order_id] = totals.get(order_id, Decimal("0.00")) + amount
        return totals

    def order(self, key: str) -> SalesOrder:
        """The order a row's key names (its number here; a variant may key otherwise)."""
        return order_by_number(key)

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        self.check_fields(changes, "editable")
        orders.orders.update(self.order(key), dict(changes), actor)

    def cancel(self, key: str, actor: Actor, tracker_name: str) -> None:
        note = f"row deleted from tracker {tracker_name}"
        order_changes.cancel_order(self.order(key), actor, "customer_request", note)

    def update_many(
        self, items: Sequence[tuple[str, Mapping[str, Any]]], actor: Actor, tracker_name: str
    ) -> list[ServiceError | None]:
        """The orders of ``items`` loaded with one query per chunk, then
        ``orders.update_many``: one UPDATE for all the applied edits."""
        found: dict[str, SalesOrder] = {}
        query = select(SalesOrder)
        for _, (order,) in select_chunks(query, [key for key, _ in items], self._by_number):
            found[order.number] = order
        return self.update_loaded(items, found, orders.orders.update_many, actor)

    @staticmethod
    def _by_number(query: Select, keys: list[str]) -> Select:
        return query.where(SalesOrder.number.in_(keys))

    def create(self, values: Mapping[str, Any], actor: Actor) -> str:
        self.check_fields(values, "creatable")
        data = dict(values)
        code = data.pop("customer", None)
        if not code:
            raise ValidationFailed({"customer": ["is required (a customer code)"]})
        customer_id = db.session.execute(
            select(Customer.id).where(func.upper(Customer.code) == str(code).upper())
        ).scalar_one_or_none()
        if customer_id is None:
            raise ValidationFailed({"customer": [f"no customer with code {code}"]})
        later = {k: data.pop(k) for k in list(data) if k not in orders.orders.creatable}
        with unit_of_work():
            order = orders.orders.create_with_lines({**data, "customer_id": customer_id}, [], actor)
            if later:
                orders.orders.update(order, later, actor)
        return order.number
