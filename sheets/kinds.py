"""Record kinds a tracker can hold: how to list, update and create them through the services.

Each :class:`Kind` knows its fields (name, column type, whether a sheet may edit or set it on
create), its filters, and three operations the sync job calls:

* :meth:`Kind.records` — the portal side of the merge: key -> field -> typed value for the
  records inside the tracker's filter (one SQL query, no ORM objects: trackers hold 50,000 rows);
* :meth:`Kind.update` — apply a sheet edit through the record's service;
* :meth:`Kind.create` — create a record from a blank-key row, returning its key.

:func:`portal_rows`, :func:`apply_update` and :func:`apply_create` adapt these to the engine
(headers, :class:`UpdateResult` / :class:`CreateResult`; service errors become row errors and
never raise). Every write uses the actor ``sheet:<tracker>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import Select, func, not_, select

from portal.extensions import db
from portal.models import (
    CREDIT_REASONS,
    DELAY_REASONS,
    DISPUTE_TYPES,
    INCOTERMS,
    ROOT_CAUSES,
    CreditMemo,
    CreditMemoStatus,
    Customer,
    Dispute,
    DisputeStatus,
    Invoice,
    OrderLine,
    OrderStatus,
    PaymentTerm,
    Product,
    SalesOrder,
    Shipment,
    ShipmentStatus,
    StockLevel,
    Warehouse,
    utcnow,
)
from portal.services import inventory, orders
from portal.services.base import (
    Actor,
    ConflictError,
    NotFound,
    ServiceError,
    ValidationFailed,
    unit_of_work,
)
from sheets.engine import CreateResult, RecordCreate, RecordUpdate, UpdateResult
from sheets.trackers import Column, TrackerSpec
from sheets.values import ValueParseError, normalize, to_cell

Row = dict[str, Any]
CLOSED_ORDER_STATUSES = (
    OrderStatus.DELIVERED.value,
    OrderStatus.INVOICED.value,
    OrderStatus.CLOSED.value,
    OrderStatus.CANCELLED.value,
)


@dataclass(frozen=True)
class Field:
    """A field a tracker column may map: its type, and what the sheet may do with it."""

    name: str
    type: str = "text"
    editable: bool = False
    creatable: bool = False


def sheet_actor(tracker_name: str) -> Actor:
    """The audit actor of writes made on behalf of a tracker."""
    return Actor.system(f"sheet:{tracker_name}")


class Kind:
    """One kind of record a tracker can hold. Subclasses fill in the class attributes."""

    name: str
    key_field: str
    key_header: str
    fields: dict[str, Field]
    filters: dict[str, str] = {}
    can_create: bool = False
    preset: tuple[Column, ...] = ()
    choices: dict[str, tuple[str, ...]] = {}  # field -> allowed values (dropdowns in new books)

    def records(
        self, filter: str | None, wanted: Iterable[str], keys: Iterable[str] | None = None
    ) -> dict[str, Row]:
        """key -> field -> value for the records in ``filter`` (only ``keys`` if given)."""
        raise NotImplementedError

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        """Apply ``changes`` (field -> value) to the record ``key``; raises ServiceError."""
        raise NotImplementedError

    def create(self, values: Mapping[str, Any], actor: Actor) -> str:
        """Create a record from ``values`` (field -> value); its key. Raises ServiceError."""
        raise ServiceError(f"a tracker cannot add {self.name.replace('_', ' ')}")

    # -- helpers ------------------------------------------------------------------------

    def check_fields(self, names: Iterable[str], how: str) -> None:
        """Refuse fields a sheet may not set (``how``: ``editable`` or ``creatable``)."""
        bad = {
            n: [f"is not {'editable' if how == 'editable' else 'settable'} from a tracker"]
            for n in names
            if n not in self.fields or not getattr(self.fields[n], how)
        }
        if bad:
            raise ValidationFailed(bad)

    def current(self, key: str, filter: str | None, wanted: Iterable[str]) -> Row:
        row = self.records(filter, wanted, keys=[key]).get(key)
        if row is None:
            raise NotFound(f"{self.name.replace('_', ' ')} record {key} is not in this tracker")
        return row


def _select_rows(query: Select, names: list[str]) -> list[Row]:
    return [dict(zip(names, values, strict=True)) for values in db.session.execute(query)]


def _in_chunks(keys: list[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(keys), size):
        yield keys[i : i + size]


def _rows_by_key(
    query: Select,
    columns: Mapping[str, Any],
    key: str,
    keys: Iterable[str] | None,
    finish: Callable[[Row], None] | None = None,
) -> dict[str, Row]:
    """Run ``query`` (for all rows, or ``keys`` in chunks) into key -> row dicts."""
    chunks: list[list[str] | None] = [None] if keys is None else list(_in_chunks(list(keys)))
    out: dict[str, Row] = {}
    for chunk in chunks:
        q = query if chunk is None else query.where(columns[key].in_(chunk))
        for row in _select_rows(q, list(columns)):
            if finish is not None:
                finish(row)
            out[row[key]] = row
    return out


# -- orders ----------------------------------------------------------------------------------


class OrdersKind(Kind):
    name = "orders"
    key_field = "number"
    key_header = "Order No"
    fields = {
        f.name: f
        for f in (
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
    }
    filters = {"open": "orders not yet delivered, invoiced, closed or cancelled"}
    can_create = True
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

    _columns: dict[str, Any] = {
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

    def _filtered(self, query: Select, filter: str | None, keys: list[str] | None) -> Select:
        if filter == "open":
            query = query.where(not_(SalesOrder.status.in_(CLOSED_ORDER_STATUSES)))
        if keys is not None:
            query = query.where(SalesOrder.number.in_(keys))
        return query

    def records(self, filter, wanted, keys=None):
        wanted = set(wanted)
        cols = {n: c for n, c in self._columns.items() if n in wanted or n == "number"}
        names = ["id", *cols]
        query = (
            select(SalesOrder.id, *cols.values())
            .join(Customer, SalesOrder.customer_id == Customer.id)
            .outerjoin(PaymentTerm, SalesOrder.payment_term_id == PaymentTerm.id)
        )
        key_list = None if keys is None else list(keys)
        out: dict[str, Row] = {}
        chunks = [None] if key_list is None else list(_in_chunks(key_list))
        for chunk in chunks:
            for row in _select_rows(self._filtered(query, filter, chunk), names):
                out[row["number"]] = row
        if "total" in wanted:
            totals = self._totals(filter, chunks)
            zero = Decimal("0.00")
            for row in out.values():
                row["total"] = totals.get(row["id"], zero)
        return out

    def _totals(self, filter: str | None, chunks: list[list[str] | None]) -> dict[int, Decimal]:
        cent = Decimal("0.01")
        totals: dict[int, Decimal] = {}
        query = select(
            OrderLine.order_id, OrderLine.quantity, OrderLine.qty_cancelled, OrderLine.unit_price
        ).join(SalesOrder, OrderLine.order_id == SalesOrder.id)
        for chunk in chunks:
            for order_id, qty, cancelled, price in db.session.execute(
                self._filtered(query, filter, chunk)
            ):
                amount = (Decimal(qty - cancelled) * Decimal(price)).quantize(cent)
                totals[order_id] = totals.get(order_id, Decimal("0.00")) + amount
        return totals

    def _order(self, number: str) -> SalesOrder:
        order = db.session.execute(
            select(SalesOrder).where(SalesOrder.number == number)
        ).scalar_one_or_none()
        if order is None:
            raise NotFound(f"order {number} does not exist")
        return order

    def update(self, key, changes, actor, tracker_name):
        self.check_fields(changes, "editable")
        orders.orders.update(self._order(key), dict(changes), actor)

    def create(self, values, actor):
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


# -- order lines -----------------------------------------------------------------------------


class OrderLinesKind(Kind):
    name = "order_lines"
    key_field = "line_key"
    key_header = "Line"
    fields = {
        f.name: f
        for f in (
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
    }
    filters = {"open": "lines of orders not yet delivered, invoiced, closed or cancelled"}
    can_create = True
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

    _columns: dict[str, Any] = {
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

    @staticmethod
    def split_key(key: str) -> tuple[str, int]:
        number, sep, line_no = key.rpartition("/")
        if not sep or not line_no.isdigit():
            raise NotFound(f"{key!r} is not a line key (ORDER/LINE, e.g. SO000123/1)")
        return number, int(line_no)

    def records(self, filter, wanted, keys=None):
        query = (
            select(*self._columns.values())
            .join(SalesOrder, OrderLine.order_id == SalesOrder.id)
            .join(Product, OrderLine.product_id == Product.id)
        )
        if filter == "open":
            query = query.where(not_(SalesOrder.status.in_(CLOSED_ORDER_STATUSES)))
        chunks: list[list[str] | None] = [None] if keys is None else list(_in_chunks(list(keys)))
        out: dict[str, Row] = {}
        cent = Decimal("0.01")
        for chunk in chunks:
            q = query
            if chunk is not None:
                q = q.where(SalesOrder.number.in_({self.split_key(k)[0] for k in chunk}))
            for row in _select_rows(q, list(self._columns)):
                key = f"{row['order']}/{row['line_no']}"
                if chunk is not None and key not in chunk:
                    continue
                row["line_key"] = key
                open_qty = row["quantity"] - row["qty_cancelled"]
                row["amount"] = (Decimal(open_qty) * Decimal(row["unit_price"])).quantize(cent)
                out[key] = row
        return out

    def _line(self, key: str) -> OrderLine:
        number, line_no = self.split_key(key)
        line = db.session.execute(
            select(OrderLine)
            .join(SalesOrder, OrderLine.order_id == SalesOrder.id)
            .where(SalesOrder.number == number, OrderLine.line_no == line_no)
        ).scalar_one_or_none()
        if line is None:
            raise NotFound(f"order line {key} does not exist")
        return line

    def update(self, key, changes, actor, tracker_name):
        self.check_fields(changes, "editable")
        orders.order_lines.update(self._line(key), dict(changes), actor)

    def create(self, values, actor):
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
        order = OrdersKind()._order(str(number))
        product_id = db.session.execute(
            select(Product.id).where(Product.sku == str(sku))
        ).scalar_one_or_none()
        if product_id is None:
            raise ValidationFailed({"sku": [f"no product with SKU {sku}"]})
        line = orders.add_line(order, {**data, "product_id": product_id}, actor)
        return f"{order.number}/{line.line_no}"


# -- stock levels ----------------------------------------------------------------------------


class StockLevelsKind(Kind):
    name = "stock_levels"
    key_field = "stock_key"
    key_header = "SKU @ warehouse"
    fields = {
        f.name: f
        for f in (
            Field("sku"),
            Field("product"),
            Field("warehouse"),
            Field("on_hand", "int", editable=True),
            Field("allocated", "int"),
            Field("available", "int"),
            Field("reorder_point", "int"),
        )
    }
    filters = {"active": "active products in active warehouses"}
    preset = (
        Column("SKU", "sku", "text", "portal"),
        Column("Product", "product", "text", "portal"),
        Column("Warehouse", "warehouse", "text", "portal"),
        Column("On hand", "on_hand", "int", "both"),
        Column("Allocated", "allocated", "int", "portal"),
        Column("Available", "available", "int", "portal"),
    )

    _columns: dict[str, Any] = {
        "id": StockLevel.id,
        "sku": Product.sku,
        "product": Product.name,
        "warehouse": Warehouse.code,
        "on_hand": StockLevel.on_hand,
        "allocated": StockLevel.allocated,
        "reorder_point": StockLevel.reorder_point,
    }

    @staticmethod
    def split_key(key: str) -> tuple[str, str]:
        sku, sep, warehouse = key.rpartition("@")
        if not sep:
            raise NotFound(f"{key!r} is not a stock key (SKU@WAREHOUSE, e.g. SKU-1@W1)")
        return sku.strip(), warehouse.strip()

    def records(self, filter, wanted, keys=None):
        query = (
            select(*self._columns.values())
            .join(Product, StockLevel.product_id == Product.id)
            .join(Warehouse, StockLevel.warehouse_id == Warehouse.id)
        )
        if filter == "active":
            query = query.where(Product.active.is_(True), Warehouse.active.is_(True))
        chunks: list[list[str] | None] = [None] if keys is None else list(_in_chunks(list(keys)))
        out: dict[str, Row] = {}
        for chunk in chunks:
            q = query
            if chunk is not None:
                q = q.where(Product.sku.in_({self.split_key(k)[0] for k in chunk}))
            for row in _select_rows(q, list(self._columns)):
                key = f"{row['sku']}@{row['warehouse']}"
                if chunk is not None and key not in chunk:
                    continue
                row["stock_key"] = key
                row["available"] = row["on_hand"] - row["allocated"]
                out[key] = row
        return out

    def update(self, key, changes, actor, tracker_name):
        self.check_fields(changes, "editable")
        sku, code = self.split_key(key)
        level = db.session.execute(
            select(StockLevel)
            .join(Product, StockLevel.product_id == Product.id)
            .join(Warehouse, StockLevel.warehouse_id == Warehouse.id)
            .where(Product.sku == sku, Warehouse.code == code)
        ).scalar_one_or_none()
        if level is None:
            raise NotFound(f"no stock level {key}")
        new_on_hand = changes["on_hand"]
        if new_on_hand is None:
            raise ValidationFailed({"on_hand": ["is required"]})
        inventory.adjust(level, new_on_hand, f"sheet {tracker_name}", actor)


# -- shipments -------------------------------------------------------------------------------


class ShipmentsKind(Kind):
    name = "shipments"
    key_field = "number"
    key_header = "Shipment"
    fields = {
        f.name: f
        for f in (
            Field("order"),
            Field("warehouse"),
            Field("carrier", editable=True),
            Field("tracking_number", editable=True),
            Field("ship_date", "date"),
            Field("eta", "date", editable=True),
            Field("delivered_date", "date", editable=True),
            Field("promised_date", "date"),
            Field("status"),
            Field("late", "bool"),
            Field("delay_reason", editable=True),
        )
    }
    filters = {"open": "shipments not yet delivered"}
    choices = {"delay_reason": tuple(DELAY_REASONS)}
    preset = (
        Column("Order No", "order", "text", "portal"),
        Column("Warehouse", "warehouse", "text", "portal"),
        Column("Carrier", "carrier", "text", "both"),
        Column("Tracking", "tracking_number", "text", "both"),
        Column("Shipped", "ship_date", "date", "portal"),
        Column("ETA", "eta", "date", "both"),
        Column("Promised", "promised_date", "date", "portal"),
        Column("Delivered", "delivered_date", "date", "both"),
        Column("Late", "late", "bool", "portal"),
        Column("Delay reason", "delay_reason", "text", "both"),
    )

    _columns: dict[str, Any] = {
        "id": Shipment.id,
        "number": Shipment.number,
        "order": SalesOrder.number,
        "warehouse": Warehouse.code,
        "carrier": Shipment.carrier,
        "tracking_number": Shipment.tracking_number,
        "ship_date": Shipment.ship_date,
        "eta": Shipment.eta,
        "delivered_date": Shipment.delivered_date,
        "promised_date": SalesOrder.promised_date,
        "status": Shipment.status,
        "delay_reason": Shipment.delay_reason,
    }

    def records(self, filter, wanted, keys=None):
        query = (
            select(*self._columns.values())
            .join(SalesOrder, Shipment.order_id == SalesOrder.id)
            .join(Warehouse, Shipment.warehouse_id == Warehouse.id)
        )
        if filter == "open":
            query = query.where(Shipment.status != ShipmentStatus.DELIVERED.value)

        def late(row: Row) -> None:
            arrival = row["delivered_date"] or row["eta"]
            promised = row["promised_date"]
            row["late"] = bool(promised and arrival and arrival > promised)

        return _rows_by_key(query, self._columns, "number", keys, late)

    def update(self, key, changes, actor, tracker_name):
        from portal.services import fulfillment

        self.check_fields(changes, "editable")
        shipment = db.session.execute(
            select(Shipment).where(Shipment.number == key)
        ).scalar_one_or_none()
        if shipment is None:
            raise NotFound(f"shipment {key} does not exist")
        fulfillment.update_shipment(shipment, dict(changes), actor)


class DisputesKind(Kind):
    """Disputes: owner, amount, due date and description are edited in the sheet; the status
    column moves a dispute to investigating, resolved (with root cause and corrective action
    from the same row) or rejected; a blank-key row opens a dispute on an invoice."""

    name = "disputes"
    key_field = "number"
    key_header = "Dispute"
    fields = {
        f.name: f
        for f in (
            Field("invoice", creatable=True),
            Field("customer"),
            Field("dispute_type", creatable=True),
            Field("amount", "decimal", editable=True, creatable=True),
            Field("owner", editable=True, creatable=True),
            Field("due_date", "date", editable=True),
            Field("status", editable=True),
            Field("overdue", "bool"),
            Field("root_cause", editable=True),
            Field("corrective_action", editable=True),
            Field("description", editable=True, creatable=True),
        )
    }
    filters = {"open": "disputes not yet resolved or rejected"}
    can_create = True
    choices = {
        "dispute_type": tuple(DISPUTE_TYPES),
        "status": tuple(status.value for status in DisputeStatus),
        "root_cause": tuple(ROOT_CAUSES),
    }
    preset = (
        Column("Invoice", "invoice", "text", "both"),
        Column("Customer", "customer", "text", "portal"),
        Column("Type", "dispute_type", "text", "both"),
        Column("Amount", "amount", "decimal", "both"),
        Column("Owner", "owner", "text", "both"),
        Column("Due", "due_date", "date", "both"),
        Column("Status", "status", "text", "both"),
        Column("Overdue", "overdue", "bool", "portal"),
        Column("Root cause", "root_cause", "text", "both"),
        Column("Corrective action", "corrective_action", "text", "both"),
    )

    _columns: dict[str, Any] = {
        "number": Dispute.number,
        "invoice": Invoice.number,
        "customer": Customer.code,
        "dispute_type": Dispute.dispute_type,
        "amount": Dispute.amount,
        "owner": Dispute.owner,
        "due_date": Dispute.due_date,
        "status": Dispute.status,
        "root_cause": Dispute.root_cause,
        "corrective_action": Dispute.corrective_action,
        "description": Dispute.description,
    }
    _open = (DisputeStatus.OPEN.value, DisputeStatus.INVESTIGATING.value)

    def records(self, filter, wanted, keys=None):
        query = (
            select(*self._columns.values())
            .join(Invoice, Dispute.invoice_id == Invoice.id)
            .join(Customer, Invoice.customer_id == Customer.id)
        )
        if filter == "open":
            query = query.where(Dispute.status.in_(self._open))
        today = utcnow().date()

        def overdue(row: Row) -> None:
            row["overdue"] = row["status"] in self._open and row["due_date"] < today

        return _rows_by_key(query, self._columns, "number", keys, overdue)

    def update(self, key, changes, actor, tracker_name):
        from portal.services import disputes

        self.check_fields(changes, "editable")
        dispute = db.session.execute(
            select(Dispute).where(Dispute.number == key)
        ).scalar_one_or_none()
        if dispute is None:
            raise NotFound(f"dispute {key} does not exist")
        changes = dict(changes)
        status = changes.pop("status", None)
        root_cause = changes.pop("root_cause", dispute.root_cause)
        corrective = changes.pop("corrective_action", dispute.corrective_action)
        with unit_of_work():
            fields = {k: v for k, v in changes.items() if v != getattr(dispute, k)}
            if fields:
                disputes.disputes.update(dispute, fields, actor)
            if status in (None, dispute.status):
                if (root_cause, corrective) != (dispute.root_cause, dispute.corrective_action):
                    raise ValidationFailed(
                        {"root_cause": ["is set when the status becomes resolved or rejected"]}
                    )
                return
            if status == DisputeStatus.INVESTIGATING.value:
                disputes.investigate(dispute, actor)
            elif status == DisputeStatus.RESOLVED.value:
                disputes.resolve(
                    dispute, actor, root_cause=root_cause or "", corrective_action=corrective or ""
                )
            elif status == DisputeStatus.REJECTED.value:
                disputes.reject(
                    dispute,
                    actor,
                    reason=corrective or f"rejected in tracker {tracker_name}",
                    root_cause=root_cause,
                )
            else:
                raise ValidationFailed(
                    {"status": ["can become investigating, resolved or rejected"]}
                )

    def create(self, values, actor):
        from portal.services import disputes

        self.check_fields(values, "creatable")
        invoice = _invoice(values.get("invoice"))
        dispute = disputes.open_dispute(
            invoice,
            actor,
            dispute_type=values.get("dispute_type") or "",
            amount=values.get("amount"),
            description=values.get("description"),
            owner=values.get("owner"),
        )
        return dispute.number


class CreditMemosKind(Kind):
    """Credit memos: read-only in the sheet (a Supervisor approves them in the portal); a
    blank-key row requests a credit by amount against an invoice."""

    name = "credit_memos"
    key_field = "number"
    key_header = "Credit memo"
    fields = {
        f.name: f
        for f in (
            Field("invoice", creatable=True),
            Field("customer"),
            Field("reason_code", creatable=True),
            Field("reason_text", creatable=True),
            Field("amount", "decimal", creatable=True),
            Field("status"),
            Field("requested_by"),
            Field("decided_by"),
            Field("decided_at", "datetime"),
        )
    }
    filters = {"pending": "credit memos waiting for approval"}
    can_create = True
    choices = {"reason_code": tuple(CREDIT_REASONS)}
    preset = (
        Column("Invoice", "invoice", "text", "both"),
        Column("Customer", "customer", "text", "portal"),
        Column("Reason", "reason_code", "text", "both"),
        Column("Note", "reason_text", "text", "both"),
        Column("Amount", "amount", "decimal", "both"),
        Column("Status", "status", "text", "portal"),
        Column("Requested by", "requested_by", "text", "portal"),
        Column("Decided by", "decided_by", "text", "portal"),
    )

    _columns: dict[str, Any] = {
        "number": CreditMemo.number,
        "invoice": Invoice.number,
        "customer": Customer.code,
        "reason_code": CreditMemo.reason_code,
        "reason_text": CreditMemo.reason_text,
        "amount": CreditMemo.amount,
        "status": CreditMemo.status,
        "requested_by": CreditMemo.requested_by,
        "decided_by": CreditMemo.decided_by,
        "decided_at": CreditMemo.decided_at,
    }

    def records(self, filter, wanted, keys=None):
        query = (
            select(*self._columns.values())
            .join(Invoice, CreditMemo.invoice_id == Invoice.id)
            .join(Customer, Invoice.customer_id == Customer.id)
        )
        if filter == "pending":
            query = query.where(CreditMemo.status == CreditMemoStatus.REQUESTED.value)
        return _rows_by_key(query, self._columns, "number", keys)

    def update(self, key, changes, actor, tracker_name):
        raise ConflictError(
            f"credit memo {key} is approved or rejected in the portal; the sheet can't change it"
        )

    def create(self, values, actor):
        from portal.services import credits

        self.check_fields(values, "creatable")
        memo = credits.request_credit(
            _invoice(values.get("invoice")),
            actor,
            reason_code=values.get("reason_code") or "",
            amount=values.get("amount"),
            reason_text=values.get("reason_text"),
        )
        return memo.number


def _invoice(number: Any) -> Invoice:
    invoice = (
        db.session.execute(select(Invoice).where(Invoice.number == number)).scalar_one_or_none()
        if number
        else None
    )
    if invoice is None:
        raise ValidationFailed({"invoice": [f"{number or 'blank'}: no such invoice"]})
    return invoice


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        OrdersKind(),
        OrderLinesKind(),
        StockLevelsKind(),
        ShipmentsKind(),
        DisputesKind(),
        CreditMemosKind(),
    )
}


def get_kind(name: str) -> Kind:
    """The kind named ``name``; ``ValueError`` for kinds no tracker can hold yet."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(
            f"trackers of {name.replace('_', ' ')} are not supported yet "
            f"(supported: {', '.join(KINDS)})"
        ) from None


# -- engine adapters -------------------------------------------------------------------------


def _header_row(spec: TrackerSpec, record: Row) -> Row:
    return {c.header: record.get(c.field) for c in spec.columns}


def portal_rows(spec: TrackerSpec, filter: str | None) -> dict[str, Row]:
    """The portal side of the merge: key -> header -> typed value, every header present."""
    kind = get_kind(spec.kind)
    records = kind.records(filter, [c.field for c in spec.columns])
    headers = [c.header for c in spec.columns]
    getter = itemgetter(*(c.field for c in spec.columns))
    if len(headers) == 1:
        return {key: {headers[0]: getter(rec)} for key, rec in records.items()}
    return {key: dict(zip(headers, getter(rec), strict=True)) for key, rec in records.items()}


def new_workbook_rows(spec: TrackerSpec, filter: str | None) -> list[list[Any]]:
    """Rows for a new tracker workbook (key, mapped columns, empty status), sorted by key."""
    rows = portal_rows(spec, filter)
    return [
        [key, *(to_cell(c.type, rows[key][c.header]) for c in spec.columns), None]
        for key in sorted(rows)
    ]


def workbook_choices(spec: TrackerSpec) -> dict[str, tuple[str, ...]]:
    """header -> dropdown values for a new tracker workbook."""
    choices = get_kind(spec.kind).choices
    return {c.header: choices[c.field] for c in spec.columns if c.field in choices}


def _stale_fields(spec: TrackerSpec, now: Row, expected: Mapping[str, Any]) -> list[str]:
    types = {c.field: c.type for c in spec.columns}
    stale = []
    for name, value in expected.items():
        try:
            if normalize(types[name], now.get(name)) != value:
                stale.append(name)
        except ValueParseError:
            stale.append(name)
    return stale


def apply_update(
    spec: TrackerSpec,
    filter: str | None,
    update: RecordUpdate,
    also: Callable[[], None] | None = None,
) -> UpdateResult:
    """Apply a sheet edit through the services in one unit of work (with ``also``, if given).

    Refuses an update whose record changed in the portal since the merge read it (the next
    sync merges again). A service error becomes ``UpdateResult.error``; nothing raises.
    """
    kind = get_kind(spec.kind)
    wanted = [c.field for c in spec.columns]
    try:
        with unit_of_work():
            now = kind.current(update.key, filter, wanted)
            stale = _stale_fields(spec, now, update.expected)
            if stale:
                raise ConflictError(
                    f"{', '.join(stale)} changed in the portal during this sync; merged again "
                    "on the next sync"
                )
            kind.update(update.key, update.changes, sheet_actor(spec.name), spec.name)
            if also is not None:
                also()
    except ServiceError as error:
        return UpdateResult(update.key, error=error.message)
    after = kind.records(filter, wanted, keys=[update.key]).get(update.key)
    return UpdateResult(update.key, values=None if after is None else _header_row(spec, after))


def record_values(spec: TrackerSpec, key: str) -> Row | None:
    """header -> value of the record ``key`` (whatever the filter), for created rows."""
    rec = get_kind(spec.kind).records(None, [c.field for c in spec.columns], keys=[key]).get(key)
    return None if rec is None else _header_row(spec, rec)


def apply_create(
    spec: TrackerSpec, create: RecordCreate, also: Callable[[str], None] | None = None
) -> CreateResult:
    """Create a record from a blank-key row; ``also(key)`` runs in the same unit of work."""
    kind = get_kind(spec.kind)
    try:
        if not kind.can_create:
            raise ServiceError(f"a tracker cannot add {kind.name.replace('_', ' ')}")
        with unit_of_work():
            key = kind.create(create.values, sheet_actor(spec.name))
            if also is not None:
                also(key)
    except ServiceError as error:
        return CreateResult(create.row, error=error.message)
    return CreateResult(create.row, key=key, values=record_values(spec, key))
