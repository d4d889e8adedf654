"""Shipments in a tracker: carrier, tracking, ETA, delivery date and delay reason edited in the
sheet through the shipments service (a batch per transaction, a savepoint per edit); a row
naming an order and a warehouse (and a carrier) ships what the order has allocated there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, select

from portal.extensions import db
from portal.models import (
    DELAY_REASONS,
    Allocation,
    OrderLine,
    SalesOrder,
    Shipment,
    ShipmentStatus,
    Warehouse,
)
from portal.services import fulfillment, shipments
from portal.services.base import Actor, NotFound, ServiceError, ValidationFailed
from portal.sync.base import Field, Kind, Row, fields_of, select_chunks
from portal.sync.orders import order_by_number
from portal.sync.stock_receipts import warehouse_id_by_code
from sheets.trackers import Column


class ShipmentsKind(Kind):
    name = "shipments"
    entities = frozenset(("shipment",))
    key_field = "number"
    key_header = "Shipment"
    fields = fields_of(
        Field("order", creatable=True),
        Field("warehouse", creatable=True),
        Field("carrier", editable=True, creatable=True),
        Field("tracking_number", editable=True, creatable=True),
        Field("ship_date", "date", creatable=True),
        Field("eta", "date", editable=True, creatable=True),
        Field("delivered_date", "date", editable=True),
        Field("promised_date", "date"),
        Field("status"),
        Field("late", "bool"),
        Field("delay_reason", editable=True, creatable=True),
    )
    filters = {"open": "shipments not yet delivered"}
    can_create = True
    batch_updates = True
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
    columns = {
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

    def query(self, filter: str | None) -> Select:
        query = (
            select(*self.columns.values())
            .join(SalesOrder, Shipment.order_id == SalesOrder.id)
            .join(Warehouse, Shipment.warehouse_id == Warehouse.id)
        )
        if filter == "open":
            query = query.where(Shipment.status != ShipmentStatus.DELIVERED.value)
        return query

    def touches(self, entity: str, ids: list[int]) -> ColumnElement[bool] | None:
        return Shipment.id.in_(ids) if entity == "shipment" else None

    def left_filter(self, filter: str, entity: str, status: str) -> bool:
        return status != ShipmentStatus.DELIVERED.value  # "open": not yet delivered

    def finish(self, row: Row) -> None:
        row["late"] = shipments.arrives_late(
            row["eta"], row["delivered_date"], row["promised_date"]
        )

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        self.check_fields(changes, "editable")
        shipment = db.session.execute(
            select(Shipment).where(Shipment.number == key)
        ).scalar_one_or_none()
        if shipment is None:
            raise NotFound(f"shipment {key} does not exist")
        shipments.update_shipment(shipment, dict(changes), actor)

    def update_many(
        self, items: Sequence[tuple[str, Mapping[str, Any]]], actor: Actor, tracker_name: str
    ) -> list[ServiceError | None]:
        """The shipments of ``items`` loaded with one query per chunk, then
        ``shipments.update_shipments``: one transaction, a savepoint per edit."""
        query = select(Shipment)
        keys = [key for key, _ in items]
        found = {s.number: s for _, (s,) in select_chunks(query, keys, self._by_number)}
        return self.update_loaded(items, found, shipments.update_shipments, actor)

    @staticmethod
    def _by_number(query: Select, keys: list[str]) -> Select:
        return query.where(Shipment.number.in_(keys))

    def create(self, values: Mapping[str, Any], actor: Actor) -> str:
        """A row naming an order and a warehouse ships what the order has allocated there."""
        self.check_fields(values, "creatable")
        data = dict(values)
        number, code = data.pop("order", None), data.pop("warehouse", None)
        errors: dict[str, list[str]] = {}
        if not number:
            errors["order"] = ["is required (an order number)"]
        warehouse_id = warehouse_id_by_code(code) if code else None
        if warehouse_id is None:
            errors["warehouse"] = [f"no warehouse {code}" if code else "is required"]
        if errors:
            raise ValidationFailed(errors)
        order = order_by_number(str(number))
        lines = dict(
            db.session.execute(
                select(Allocation.order_line_id, Allocation.quantity)
                .join(OrderLine, Allocation.order_line_id == OrderLine.id)
                .where(
                    OrderLine.order_id == order.id,
                    Allocation.warehouse_id == warehouse_id,
                    Allocation.quantity > 0,
                )
            ).all()
        )
        if not lines:
            raise ValidationFailed(
                {"warehouse": [f"nothing of order {order.number} is allocated in {code}"]}
            )
        shipment = fulfillment.ship(order, actor, warehouse_id=warehouse_id, lines=lines, **data)
        return shipment.number
