"""The actions that ship: ``shipment`` create (REST, the order named in the body), update and
``deliver``, and the order page's ship form (``sales_order`` ``ship``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from marshmallow import ValidationError

from portal.actions import Action
from portal.actions.forms import ShipForm, ShipmentUpdateForm
from portal.actions.schemas import DeliverInput, ShipmentInput, ShipmentUpdateInput
from portal.extensions import db
from portal.models import SalesOrder, Shipment
from portal.services import fulfillment, shipments
from portal.services.base import Actor


def _ship_order(order: SalesOrder, actor: Actor, body: dict[str, Any]) -> Shipment:
    """Ship ``lines`` (``{order line id: quantity}``) of ``order``."""
    return fulfillment.ship(
        order,
        actor,
        warehouse_id=body["warehouse_id"],
        lines=body["lines"],
        carrier=body["carrier"],
        tracking_number=body.get("tracking_number"),
        ship_date=body.get("ship_date"),
        eta=body.get("eta"),
        delay_reason=body.get("delay_reason"),
    )


def _ship(_: None, actor: Actor, body: dict[str, Any]) -> Shipment:
    order = db.session.get(SalesOrder, body["order_id"])
    if order is None:
        raise ValidationError({"order_id": [f"{body['order_id']} does not exist"]})
    lines = {line["order_line_id"]: line["quantity"] for line in body["lines"]}
    return _ship_order(order, actor, {**body, "lines": lines})


def _update(shipment: Shipment, actor: Actor, body: dict[str, Any]) -> Shipment:
    version = body.pop("version", None)
    return shipments.update_shipment(shipment, body, actor, version)


SHIP = Action("create", Shipment, _ship, ShipmentInput, status=201)
UPDATE = Action("update", Shipment, _update, ShipmentUpdateInput)
UPDATE_FORM = replace(UPDATE, schema=ShipmentUpdateForm)
DELIVER = Action(
    "deliver",
    Shipment,
    lambda s, a, b: shipments.deliver(s, a, b.get("delivered_date")),
    DeliverInput,
)
# The order page's ship form: the order is the record, its lines are checked.
SHIP_ORDER = Action(
    "ship", SalesOrder, _ship_order, ShipForm, line_ids=lambda body: list(body["lines"])
)
