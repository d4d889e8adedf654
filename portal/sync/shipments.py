"""Shipments in a tracker: carrier, tracking, ETA, delivery date and delay reason edited in the
sheet through the fulfillment service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, select

from portal.extensions import db
from portal.models import DELAY_REASONS, SalesOrder, Shipment, ShipmentStatus, Warehouse
from portal.services import fulfillment
from portal.services.base import Actor, NotFound
from portal.sync.base import Field, Kind, Row, fields_of
from sheets.trackers import Column


class ShipmentsKind(Kind):
    name = "shipments"
    entities = frozenset(("shipment",))
    key_field = "number"
    key_header = "Shipment"
    fields = fields_of(
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

    def finish(self, row: Row) -> None:
        row["late"] = fulfillment.arrives_late(
            row["eta"], row["delivered_date"], row["promised_date"]
        )

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        self.check_fields(changes, "editable")
        shipment = db.session.execute(
            select(Shipment).where(Shipment.number == key)
        ).scalar_one_or_none()
        if shipment is None:
            raise NotFound(f"shipment {key} does not exist")
        fulfillment.update_shipment(shipment, dict(changes), actor)
