"""Order REST resources and lifecycle actions.

``sales_order`` (create with lines, honouring ``Idempotency-Key``; actions ``confirm``,
``allocate``, ``cancel``, ``amend``, ``release``, ``convert``, ``approve_price``),
``order_line``, ``shipment`` (create = ship, ``deliver``), ``backorder``,
``return_authorization`` (create, ``authorize``, ``receive``, ``close``, ``reject``) and
``notification``. Every action calls one service function; its errors become 403/404/409/422.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from flask import request
from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.exceptions import BadRequest

import portal.security as security
from portal.actors import current_actor
from portal.api.base import MAX_INT, READ_ONLY_ROUTES, ResourceApi, ServiceResourceApi
from portal.crud import new_values
from portal.extensions import appbuilder, db
from portal.models import (
    CANCEL_REASONS,
    DELAY_REASONS,
    RETURN_CONDITIONS,
    Backorder,
    Notification,
    ReturnAuthorization,
    SalesOrder,
    Shipment,
)
from portal.services import changes, fulfillment, idempotency, lifecycle, orders, returns
from portal.services.base import ServiceError

ORDER_ACTIONS = {
    "confirm": "write",
    "allocate": "write",
    "cancel": "write",
    "amend": "write",
    "convert": "write",
    "release": "release",
    "approve_price": "override_price",
}
RETURN_ACTIONS = {name: "write" for name in ("authorize", "receive", "credit", "close", "reject")}


def Id(**kwargs: Any) -> fields.Integer:
    """A record id: a whole number in SQL INTEGER range."""
    return fields.Integer(strict=True, validate=validate.Range(1, MAX_INT), **kwargs)


Quantity = Id


def Text(size: int, **kwargs: Any) -> fields.String:
    """Non-empty text of at most ``size`` characters."""
    return fields.String(validate=validate.Length(1, size), **kwargs)


class OrderLineInput(Schema):
    product_id = Id(required=True)
    quantity = Quantity(required=True)
    unit_price = fields.Decimal(validate=validate.Range(0, 10**9))
    discount_pct = fields.Decimal(validate=validate.Range(0, 100))


class CancelInput(Schema):
    reason_code = fields.String(required=True, validate=validate.OneOf(list(CANCEL_REASONS)))
    note = Text(200)
    line_id = Id()


class AmendHeaderInput(Schema):
    customer_po = fields.String(allow_none=True, validate=validate.Length(max=40))
    requested_date = fields.Date(allow_none=True)
    promised_date = fields.Date(allow_none=True)
    ship_to_id = Id(allow_none=True)
    incoterm = fields.String(allow_none=True, validate=validate.Length(max=3))
    notes = fields.String(allow_none=True, validate=validate.Length(max=4000))


class AmendInput(Schema):
    reason = Text(200, required=True)
    header = fields.Nested(AmendHeaderInput, load_default=dict)
    quantities = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^\d{1,9}$")),
        values=fields.Integer(strict=True, validate=validate.Range(0, MAX_INT)),
        load_default=dict,
    )
    version = fields.Integer(strict=True)


class ReasonInput(Schema):
    reason = Text(200, required=True)


class PriceOverrideInput(Schema):
    line_id = Id(required=True)
    reason = Text(200, required=True)


class ShipLineInput(Schema):
    order_line_id = Id(required=True)
    quantity = Quantity(required=True)


class ShipmentInput(Schema):
    order_id = Id(required=True)
    warehouse_id = Id(required=True)
    carrier = Text(60, required=True)
    tracking_number = fields.String(allow_none=True, validate=validate.Length(max=80))
    ship_date = fields.Date()
    eta = fields.Date(allow_none=True)
    delay_reason = fields.String(allow_none=True, validate=validate.OneOf(list(DELAY_REASONS)))
    lines = fields.List(fields.Nested(ShipLineInput), required=True, validate=validate.Length(1))


class ShipmentUpdateInput(Schema):
    carrier = Text(60)
    tracking_number = fields.String(allow_none=True, validate=validate.Length(max=80))
    eta = fields.Date(allow_none=True)
    delay_reason = fields.String(allow_none=True, validate=validate.OneOf(list(DELAY_REASONS)))
    delivered_date = fields.Date()
    version = fields.Integer(strict=True)


class DeliverInput(Schema):
    delivered_date = fields.Date()


class ReturnLineInput(Schema):
    order_line_id = Id(required=True)
    quantity = Quantity(required=True)


class ReturnInput(Schema):
    order_id = Id(required=True)
    warehouse_id = Id(required=True)
    reason = Text(200, required=True)
    lines = fields.List(fields.Nested(ReturnLineInput), required=True, validate=validate.Length(1))


class ReceiveLineInput(Schema):
    return_line_id = Id(required=True)
    quantity = Quantity(required=True)
    condition = fields.String(required=True, validate=validate.OneOf(RETURN_CONDITIONS))


class ReceiveInput(Schema):
    lines = fields.List(fields.Nested(ReceiveLineInput), required=True, validate=validate.Length(1))


class ActionMixin:
    """Run one service call on one record with a validated JSON body."""

    def _body(self, schema: Schema) -> dict[str, Any]:
        raw = request.get_json(silent=True) if request.data else {}
        if request.data and not request.is_json:
            raise BadRequest("Request is not JSON (send Content-Type: application/json)")
        if not isinstance(raw, dict):
            raise BadRequest("Request body must be a JSON object")
        return schema.load(raw)

    def _act(self, model: type, pk: int, schema: Schema, call: Callable[..., Any]):
        record = db.session.get(model, pk) if 1 <= pk <= MAX_INT else None
        if record is None:
            return self.response_404()
        try:
            body = self._body(schema)
        except BadRequest as error:
            return self.response_400(message=error.description)
        except ValidationError as error:
            return self.response_422(message=error.messages)
        try:
            result = call(record, current_actor("api"), body)
        except ServiceError as error:
            db.session.rollback()
            return self.response(error.status, **error.to_dict())
        return self.response(200, result=self._dump(result))

    def _dump(self, record: Any) -> dict[str, Any]:
        return self.show_model_schema.dump(record, many=False)


class SalesOrderApi(ActionMixin, ServiceResourceApi):
    resource_name = "sales_order"
    service = orders.orders
    class_permission_name = security.ORDERS
    method_permission_name = {**security.METHOD_PERMISSIONS, **ORDER_ACTIONS}
    include_route_methods = READ_ONLY_ROUTES | {"post", "put", *ORDER_ACTIONS}
    list_columns = [
        "id",
        "number",
        "customer_id",
        "customer_po",
        "order_date",
        "requested_date",
        "promised_date",
        "ship_to_id",
        "payment_term_id",
        "incoterm",
        "currency",
        "status",
        "hold_reasons",
        "revision",
        "version",
    ]
    show_columns = [*list_columns, "notes", "created_at", "updated_at"]
    add_columns = [
        "customer_id",
        "customer_po",
        "requested_date",
        "ship_to_id",
        "payment_term_id",
        "incoterm",
        "notes",
    ]
    edit_columns = [
        "customer_po",
        "requested_date",
        "promised_date",
        "ship_to_id",
        "payment_term_id",
        "incoterm",
        "notes",
        "version",
    ]
    order_columns = ["id", "number", "order_date", "requested_date", "status"]

    def post_headless(self):
        """Create an order with its ``lines``; a repeated ``Idempotency-Key`` replays."""
        try:
            body = self._json_body()
        except BadRequest as error:
            return self.response_400(message=error.description)
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return self._create(body)
        if len(key) > 100:
            return self.response_400(message="Idempotency-Key is longer than 100 characters")
        actor = current_actor("api")
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        try:
            claim = idempotency.claim(key, actor.user_id, "sales_order.post", fingerprint)
        except ServiceError as error:
            return self.response(error.status, **error.to_dict())
        if claim.replay is not None:
            status, payload = claim.replay
            return self.response(status, **payload)
        response = self._create(body)
        if response.status_code < 300:
            idempotency.complete(claim, response.status_code, response.get_json())
        else:
            idempotency.release(claim)
        return response

    def _create(self, body: dict[str, Any]):
        body = dict(body)
        raw_lines = body.pop("lines", [])
        try:
            if not isinstance(raw_lines, list):
                raise ValidationError({"lines": ["must be a list"]})
            lines = OrderLineInput(many=True).load(raw_lines)
            item = self.add_model_schema.load(body)
        except ValidationError as error:
            return self.response_422(message=error.messages)
        try:
            record = orders.orders.create_with_lines(new_values(item), lines, current_actor("api"))
        except ServiceError as error:
            return self.response(error.status, **error.to_dict())
        return self.response(201, result=self._dump(record), id=record.id)

    @expose("/<int:pk>/confirm", methods=["POST"])
    @protect()
    @safe
    @permission_name("confirm")
    def confirm(self, pk: int):
        """Run the validation checklist: confirmed, or on hold with the reasons.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: The order, confirmed or on hold}
            404: {$ref: '#/components/responses/404'}
            409: {description: Not a draft}
        """
        return self._act(SalesOrder, pk, Schema(), lambda o, a, b: lifecycle.confirm(o, a))

    @expose("/<int:pk>/allocate", methods=["POST"])
    @protect()
    @safe
    @permission_name("allocate")
    def allocate(self, pk: int):
        """Allocate stock in warehouse priority order; the rest is backordered.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: The order with its new status}
            409: {description: The order is not confirmed}
        """
        return self._act(SalesOrder, pk, Schema(), lambda o, a, b: fulfillment.allocate(o, a))

    @expose("/<int:pk>/cancel", methods=["POST"])
    @protect()
    @safe
    @permission_name("cancel")
    def cancel(self, pk: int):
        """Cancel the order (or one line with ``line_id``), releasing allocations.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [reason_code]
                  properties:
                    reason_code: {type: string}
                    note: {type: string}
                    line_id: {type: integer}
          responses:
            200: {description: The order}
            409: {description: Already shipped or cancelled}
            422: {$ref: '#/components/responses/422'}
        """

        def cancel(order: SalesOrder, actor, body: dict[str, Any]) -> SalesOrder:
            if body.get("line_id"):
                line = next((ln for ln in order.lines if ln.id == body["line_id"]), None)
                if line is None:
                    raise ServiceError(f"line {body['line_id']} is not on {order.number}")
                changes.cancel_line(line, actor, body["reason_code"], body.get("note"))
                return order
            return changes.cancel_order(order, actor, body["reason_code"], body.get("note"))

        return self._act(SalesOrder, pk, CancelInput(), cancel)

    @expose("/<int:pk>/amend", methods=["POST"])
    @protect()
    @safe
    @permission_name("amend")
    def amend(self, pk: int):
        """Amend a confirmed order as a new revision (reason required).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [reason]
                  properties:
                    reason: {type: string}
                    version: {type: integer}
                    header: {type: object}
                    quantities:
                      type: object
                      additionalProperties: {type: integer}
          responses:
            200: {description: The amended order}
            409: {description: Stale version or not amendable}
            422: {$ref: '#/components/responses/422'}
        """

        def amend(order: SalesOrder, actor, body: dict[str, Any]) -> SalesOrder:
            changes.amend(
                order,
                actor,
                reason=body["reason"],
                header=body.get("header"),
                quantities={int(k): v for k, v in body.get("quantities", {}).items()},
                expected_version=body.get("version"),
            )
            return order

        return self._act(SalesOrder, pk, AmendInput(), amend)

    @expose("/<int:pk>/release", methods=["POST"])
    @protect()
    @safe
    @permission_name("release")
    def release(self, pk: int):
        """Supervisor: release a hold, confirming the order (reason required).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema: {type: object, required: [reason], properties: {reason: {type: string}}}
          responses:
            200: {description: The confirmed order}
            409: {description: Not on hold}
        """
        return self._act(
            SalesOrder, pk, ReasonInput(), lambda o, a, b: lifecycle.release_hold(o, a, b["reason"])
        )

    @expose("/<int:pk>/convert", methods=["POST"])
    @protect()
    @safe
    @permission_name("convert")
    def convert(self, pk: int):
        """Turn a quote into a draft order.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: The draft order}
            409: {description: Not a quote}
        """
        return self._act(SalesOrder, pk, Schema(), lambda o, a, b: lifecycle.convert_quote(o, a))

    @expose("/<int:pk>/approve_price", methods=["POST"])
    @protect()
    @safe
    @permission_name("approve_price")
    def approve_price(self, pk: int):
        """Supervisor: accept a line's price that differs from the price list.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [line_id, reason]
                  properties: {line_id: {type: integer}, reason: {type: string}}
          responses:
            200: {description: The order}
        """

        def approve(order: SalesOrder, actor, body: dict[str, Any]) -> SalesOrder:
            line = next((ln for ln in order.lines if ln.id == body["line_id"]), None)
            if line is None:
                raise ServiceError(f"line {body['line_id']} is not on {order.number}")
            lifecycle.approve_price_override(line, actor, body["reason"])
            return order

        return self._act(SalesOrder, pk, PriceOverrideInput(), approve)


class OrderLineApi(ServiceResourceApi):
    resource_name = "order_line"
    service = orders.order_lines
    class_permission_name = security.ORDER_LINES
    include_route_methods = READ_ONLY_ROUTES | {"put"}
    list_columns = [
        "id",
        "order_id",
        "line_no",
        "product_id",
        "quantity",
        "unit_price",
        "list_price",
        "discount_pct",
        "qty_allocated",
        "qty_backordered",
        "qty_shipped",
        "qty_delivered",
        "qty_cancelled",
        "qty_returned",
        "price_override_by",
        "price_override_reason",
        "version",
    ]
    show_columns = list_columns
    edit_columns = ["quantity", "unit_price", "discount_pct", "version"]
    order_columns = ["id", "order_id", "line_no", "product_id", "quantity"]
    search_columns = ["order_id", "product_id", "line_no", "quantity"]


class ShipmentApi(ActionMixin, ResourceApi):
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

    def post_headless(self):
        try:
            body = self._body(ShipmentInput())
        except BadRequest as error:
            return self.response_400(message=error.description)
        except ValidationError as error:
            return self.response_422(message=error.messages)
        order = db.session.get(SalesOrder, body["order_id"])
        if order is None:
            return self.response_422(message={"order_id": [f"{body['order_id']} does not exist"]})
        try:
            shipment = fulfillment.ship(
                order,
                current_actor("api"),
                warehouse_id=body["warehouse_id"],
                lines={line["order_line_id"]: line["quantity"] for line in body["lines"]},
                carrier=body["carrier"],
                tracking_number=body.get("tracking_number"),
                ship_date=body.get("ship_date"),
                eta=body.get("eta"),
                delay_reason=body.get("delay_reason"),
            )
        except ServiceError as error:
            db.session.rollback()
            return self.response(error.status, **error.to_dict())
        return self.response(201, result=self._dump(shipment), id=shipment.id)

    def put_headless(self, pk: Any):
        def update(shipment: Shipment, actor, body: dict[str, Any]) -> Shipment:
            version = body.pop("version", None)
            return fulfillment.update_shipment(shipment, body, actor, version)

        try:
            pk = int(pk)
        except ValueError:
            return self.response_404()
        return self._act(Shipment, pk, ShipmentUpdateInput(), update)

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
        return self._act(
            Shipment,
            pk,
            DeliverInput(),
            lambda s, a, b: fulfillment.deliver(s, a, b.get("delivered_date")),
        )


class BackorderApi(ResourceApi):
    resource_name = "backorder"
    datamodel = SQLAInterface(Backorder)
    class_permission_name = security.BACKORDERS
    list_columns = [
        "id",
        "order_line_id",
        "quantity",
        "expected_date",
        "priority",
        "status",
        "created_at",
        "filled_at",
    ]
    show_columns = list_columns
    order_columns = ["id", "expected_date", "priority", "status", "created_at"]


class ReturnAuthorizationApi(ActionMixin, ResourceApi):
    resource_name = "return_authorization"
    datamodel = SQLAInterface(ReturnAuthorization)
    class_permission_name = security.RETURNS
    method_permission_name = {**security.METHOD_PERMISSIONS, **RETURN_ACTIONS}
    include_route_methods = {"get", "get_list", "post", *RETURN_ACTIONS}
    list_columns = [
        "id",
        "number",
        "order_id",
        "warehouse_id",
        "status",
        "reason",
        "requested_by",
        "credit_memo_id",
        "created_at",
        "version",
    ]
    show_columns = list_columns
    order_columns = ["id", "number", "status", "created_at"]
    add_model_schema = ReturnInput()

    def post_headless(self):
        try:
            body = self._body(ReturnInput())
        except BadRequest as error:
            return self.response_400(message=error.description)
        except ValidationError as error:
            return self.response_422(message=error.messages)
        order = db.session.get(SalesOrder, body["order_id"])
        if order is None:
            return self.response_422(message={"order_id": [f"{body['order_id']} does not exist"]})
        try:
            rma = returns.request_return(
                order,
                current_actor("api"),
                lines={line["order_line_id"]: line["quantity"] for line in body["lines"]},
                reason=body["reason"],
                warehouse_id=body["warehouse_id"],
            )
        except ServiceError as error:
            db.session.rollback()
            return self.response(error.status, **error.to_dict())
        return self.response(201, result=self._dump(rma), id=rma.id)

    def _step(self, pk: int, call: Callable[..., Any]):
        return self._act(ReturnAuthorization, pk, Schema(), lambda r, a, b: call(r, a))

    @expose("/<int:pk>/authorize", methods=["POST"])
    @protect()
    @safe
    @permission_name("authorize")
    def authorize(self, pk: int):
        """Authorize a requested return."""
        return self._step(pk, returns.authorize)

    @expose("/<int:pk>/reject", methods=["POST"])
    @protect()
    @safe
    @permission_name("reject")
    def reject(self, pk: int):
        """Reject a return."""
        return self._step(pk, returns.reject)

    @expose("/<int:pk>/credit", methods=["POST"])
    @protect()
    @safe
    @permission_name("credit")
    def credit(self, pk: int):
        """Request the credit memo for the received units (then approved as usual)."""
        return self._step(pk, returns.credit)

    @expose("/<int:pk>/close", methods=["POST"])
    @protect()
    @safe
    @permission_name("close")
    def close(self, pk: int):
        """Close a received return."""
        return self._step(pk, returns.close)

    @expose("/<int:pk>/receive", methods=["POST"])
    @protect()
    @safe
    @permission_name("receive")
    def receive(self, pk: int):
        """Book returned goods: ``lines: [{return_line_id, quantity, condition}]``.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [lines]
                  properties:
                    lines:
                      type: array
                      items:
                        type: object
                        properties:
                          return_line_id: {type: integer}
                          quantity: {type: integer}
                          condition: {type: string, enum: [restock, scrap]}
          responses:
            200: {description: The received return}
        """

        def receive(rma: ReturnAuthorization, actor, body: dict[str, Any]):
            received = {
                line["return_line_id"]: (line["quantity"], line["condition"])
                for line in body["lines"]
            }
            return returns.receive(rma, actor, received)

        return self._act(ReturnAuthorization, pk, ReceiveInput(), receive)


class NotificationApi(ResourceApi):
    resource_name = "notification"
    datamodel = SQLAInterface(Notification)
    class_permission_name = security.NOTIFICATIONS
    list_columns = [
        "id",
        "order_id",
        "event",
        "recipients",
        "subject",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "sent_at",
    ]
    show_columns = [*list_columns, "body"]
    order_columns = ["id", "event", "status", "created_at", "sent_at"]


def register_order_apis() -> None:
    """Add the order resources and their lifecycle actions."""
    for api in (
        SalesOrderApi,
        OrderLineApi,
        ShipmentApi,
        BackorderApi,
        ReturnAuthorizationApi,
        NotificationApi,
    ):
        appbuilder.add_api(api)
