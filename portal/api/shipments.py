"""``shipment``: POST ships allocated units, PUT changes carrier details, ``deliver``.

Each write is one ``fulfillment`` service call run through the action pipeline.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from marshmallow import ValidationError

import portal.security as security
from portal.actions import Action
from portal.api.base import ResourceApi
from portal.api.schemas import DeliverInput, ShipmentInput, ShipmentUpdateInput
from portal.extensions import db
from portal.models import SalesOrder, Shipment
from portal.services import fulfillment
from portal.services.base import Actor


def _ship(_: None, actor: Actor, body: dict[str, Any]) -> Shipment:
    order = db.session.get(SalesOrder, body["order_id"])
    if order is None:
        raise ValidationError({"order_id": [f"{body['order_id']} does not exist"]})
    return fulfillment.ship(
        order,
        actor,
        warehouse_id=body["warehouse_id"],
        lines={line["order_line_id"]: line["quantity"] for line in body["lines"]},
        carrier=body["carrier"],
        tracking_number=body.get("tracking_number"),
        ship_date=body.get("ship_date"),
        eta=body.get("eta"),
        delay_reason=body.get("delay_reason"),
    )


def _update(shipment: Shipment, actor: Actor, body: dict[str, Any]) -> Shipment:
    version = body.pop("version", None)
    return fulfillment.update_shipment(shipment, body, actor, version)


SHIP = Action("create", Shipment, _ship, ShipmentInput, status=201)
UPDATE = Action("update", Shipment, _update, ShipmentUpdateInput)
DELIVER = Action(
    "deliver",
    Shipment,
    lambda s, a, b: fulfillment.deliver(s, a, b.get("delivered_date")),
    DeliverInput,
)


class ShipmentApi(ResourceApi):
    """Shipments: POST ships allocated units; PUT changes carrier details; deliver."""

    resource_name = "shipment"
    datamodel = SQLAInterface(Shipment)
    class_permission_name = security.SHIPMENTS
    method_permission_name = {**security.METHOD_PERMISSIONS, "deliver": "write"}
    # No _info: its form metadata can't describe the nested line lists of these payloads.
    include_route_methods = {"get", "get_list", "post", "put", "deliver"}
    list_columns = [
        "id",
        "number",
        "order_id",
        "warehouse_id",
        "carrier",
        "tracking_number",
        "ship_date",
        "eta",
        "delivered_date",
        "status",
        "delay_reason",
        "is_late",
        "version",
    ]
    show_columns = list_columns
    order_columns = ["id", "number", "ship_date", "eta", "status"]
    add_model_schema = ShipmentInput()
    edit_model_schema = ShipmentUpdateInput()

    def post_headless(self) -> Response:
        return self.run_action(SHIP)

    def put_headless(self, pk: Any) -> Response:
        return self.run_action(UPDATE, pk)

    @expose("/<int:pk>/deliver", methods=["POST"])
    @protect()
    @safe
    @permission_name("deliver")
    def deliver(self, pk: int):
        """Record the delivery of a shipment.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema: {type: object, properties: {delivered_date: {type: string, format: date}}}
          responses:
            200: {description: The delivered shipment}
            409: {description: Already delivered}
        """
        return self.run_action(DELIVER, pk)
