"""``shipment``: POST ships allocated units, PUT changes carrier details, ``deliver``.

Each write is one ``fulfillment`` service call run through the action pipeline.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name

import portal.security as security
from portal.actions.schemas import ShipmentInput, ShipmentUpdateInput
from portal.actions.shipments import DELIVER, SHIP, UPDATE
from portal.api.base import ResourceApi
from portal.models import Shipment


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
