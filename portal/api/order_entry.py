"""Order entry on the REST API: a draft's ``lines`` (POST, PATCH, DELETE on
``/api/v1/sales_order/<id>/lines[/<line_id>]``), a line's price override request, the nine
checks as last run, the entry page's price-and-stock answer (``quote_line``), and the
``price_override_request`` resource a Supervisor approves or rejects.

Every write runs its action of :mod:`portal.actions.order_entry` through the pipeline (404,
400, 422 per field, 403 audited, 409 on a stale ``version``).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from marshmallow import fields
from werkzeug.exceptions import BadRequest

import portal.security as security
from portal.actions import Action, perform, valid_id
from portal.actions.order_entry import (
    ADD_LINE,
    APPROVE_PRICE_REQUEST,
    CHANGE_LINE,
    REJECT_PRICE_REQUEST,
    REMOVE_LINE,
    REQUEST_PRICE,
)
from portal.api.base import ResourceApi, ServiceResourceApi, json_body
from portal.extensions import db
from portal.models import OrderLine, PriceOverrideRequest, SalesOrder
from portal.services import order_entry
from portal.services.base import ServiceError

# Route method → permission verb, merged into SalesOrderApi's.
ENTRY_ACTIONS = {
    "add_line": "write",
    "change_line": "write",
    "remove_line": "write",
    "request_price": "write",
    "checks": "read",
    "quote_line": "read",
}
LINE_FIELDS = (
    "id",
    "line_no",
    "product_id",
    "quantity",
    "unit_price",
    "list_price",
    "discount_pct",
    "qty_allocated",
    "qty_backordered",
    "qty_shipped",
    "qty_cancelled",
    "price_override_by",
    "version",
)


def line_dict(line: OrderLine) -> dict[str, Any]:
    values = {name: getattr(line, name) for name in LINE_FIELDS}
    for name in ("unit_price", "list_price", "discount_pct"):
        values[name] = str(values[name])
    values["sku"] = line.product.sku
    values["amount"] = str(line.amount)
    return values


LINE_SCHEMA = {
    "type": "object",
    "required": ["product_id", "quantity"],
    "properties": {
        "product_id": {"type": "integer", "minimum": 1},
        "quantity": {"type": "integer", "minimum": 1, "description": "pieces"},
        "unit_price": {"type": "number", "minimum": 0, "description": "else the price list's"},
        "discount_pct": {"type": "number", "minimum": 0, "maximum": 100},
    },
}


def document_lines(schema: Any) -> None:
    """Add ``lines`` (the order's lines, created with it) to the create schema, so the
    OpenAPI spec shows them; the create action loads them with ``OrderLineInput``."""
    field = fields.Raw(
        metadata={
            "type": "array",
            "description": "the order's lines (at most the lines-per-order limit)",
            "items": LINE_SCHEMA,
        }
    )
    field._bind_to_schema("lines", schema)
    schema.fields["lines"] = field
    schema.load_fields["lines"] = field
    schema.declared_fields["lines"] = field


class OrderEntryRoutes(ServiceResourceApi):
    """The order-entry routes of ``SalesOrderApi`` (its base class)."""

    def _run_on_order(self, action: Action, pk: Any, extra: dict[str, Any]) -> Response:
        try:
            body = {**json_body(action.body_required), **extra}
        except BadRequest as error:
            return self.response_400(message=error.description)
        outcome = perform(action, pk, lambda: body, "api")
        if not outcome.ok:
            return self.response(outcome.status, **outcome.error)
        result = outcome.result
        if isinstance(result, PriceOverrideRequest):
            return self.response(outcome.status, id=result.id, result=request_dict(result))
        return self.response(
            outcome.status,
            result=self.show_model_schema.dump(result),
            lines=[line_dict(line) for line in result.lines],
        )

    @expose("/<int:pk>/lines", methods=["POST"])
    @protect()
    @safe
    @permission_name("add_line")
    def add_line(self, pk: int) -> Response:
        """Add a line to a quote or draft (priced from the price list unless given).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [product_id, quantity]
                  properties:
                    product_id: {type: integer}
                    quantity: {type: integer, minimum: 1}
                    unit_price: {type: number}
                    discount_pct: {type: number}
                    version: {type: integer, description: "the order's, to refuse a stale edit"}
          responses:
            201: {description: The order and its lines}
            404: {$ref: '#/components/responses/404'}
            409: {description: Not open for entry, or a stale version}
            422: {$ref: '#/components/responses/422'}
        """
        return self._run_on_order(ADD_LINE, pk, {})

    @expose("/<int:pk>/lines/<int:line_id>", methods=["PATCH"])
    @protect()
    @safe
    @permission_name("change_line")
    def change_line(self, pk: int, line_id: int) -> Response:
        """Change a line's quantity (re-priced from the price list), price or discount.
        ---
        patch:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: path, name: line_id, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    quantity: {type: integer, minimum: 1}
                    unit_price: {type: number}
                    discount_pct: {type: number}
                    version: {type: integer, description: "the line's, to refuse a stale edit"}
          responses:
            200: {description: The order and its lines}
            404: {$ref: '#/components/responses/404'}
            409: {description: Not open for entry, or a stale version}
            422: {$ref: '#/components/responses/422'}
        """
        return self._run_on_order(CHANGE_LINE, pk, {"line_id": line_id})

    @expose("/<int:pk>/lines/<int:line_id>", methods=["DELETE"])
    @protect()
    @safe
    @permission_name("remove_line")
    def remove_line(self, pk: int, line_id: int) -> Response:
        """Remove a line from a quote or draft (``?version=`` refuses a stale removal).
        ---
        delete:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: path, name: line_id, required: true, schema: {type: integer}}
          - {in: query, name: version, schema: {type: integer}}
          responses:
            200: {description: The order and its remaining lines}
            404: {$ref: '#/components/responses/404'}
            409: {description: Not open for entry, or a stale version}
        """
        extra: dict[str, Any] = {"line_id": line_id}
        version = request.args.get("version", "")
        if version:
            if not version.isdigit() or not valid_id(version):
                return self.response_400(message="version: must be a whole number")
            extra["version"] = int(version)
        return self._run_on_order(REMOVE_LINE, pk, extra)

    @expose("/<int:pk>/lines/<int:line_id>/price_override", methods=["POST"])
    @protect()
    @safe
    @permission_name("request_price")
    def request_price(self, pk: int, line_id: int) -> Response:
        """Ask a Supervisor for a price other than the price list's (the line keeps its
        price until approved).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: path, name: line_id, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  required: [unit_price, reason]
                  properties: {unit_price: {type: number}, reason: {type: string}}
          responses:
            201: {description: The request}
            404: {$ref: '#/components/responses/404'}
            409: {description: Not open for entry, or a request already open}
            422: {$ref: '#/components/responses/422'}
        """
        return self._run_on_order(REQUEST_PRICE, pk, {"line_id": line_id})

    @expose("/<int:pk>/checks", methods=["GET"])
    @protect()
    @safe
    @permission_name("checks")
    def checks(self, pk: int) -> Response:
        """The nine validation checks as last run (``passed`` null: not run yet).
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: "The checks: name, label, passed, detail"}
            404: {$ref: '#/components/responses/404'}
        """
        if not valid_id(pk) or db.session.get(SalesOrder, pk) is None:
            return self.response_404()
        rows = order_entry.checklist(pk)
        return self.response(200, result=[row.__dict__ for row in rows])

    @expose("/quote_line", methods=["GET"])
    @protect()
    @safe
    @permission_name("quote_line")
    def quote_line(self) -> Response:
        """A line's price (the quantity break applied), total and stock per warehouse.
        ---
        get:
          parameters:
          - {in: query, name: product_id, required: true, schema: {type: integer}}
          - {in: query, name: quantity, required: true, schema: {type: integer, minimum: 1}}
          - {in: query, name: customer_id, schema: {type: integer}}
          responses:
            200: {description: Price, break, line total, available units per warehouse}
            400: {$ref: '#/components/responses/400'}
            404: {$ref: '#/components/responses/404'}
        """
        args: dict[str, int | None] = {}
        for name in ("customer_id", "product_id", "quantity"):
            raw = request.args.get(name, "").strip()
            if not raw and name == "customer_id":
                args[name] = None
            elif not raw.isdigit() or not valid_id(raw):
                return self.response_400(message=f"{name}: must be a whole number above 0")
            else:
                args[name] = int(raw)
        try:
            found = order_entry.quote_line(
                args["customer_id"], args["product_id"], args["quantity"]
            )
        except ServiceError as error:
            return self.response(error.status, **error.to_dict())
        currency = request.args.get("currency", "USD")[:3].upper()
        return self.response(200, result=found.as_dict(currency))


def request_dict(item: PriceOverrideRequest) -> dict[str, Any]:
    line = item.order_line
    return {
        "id": item.id,
        "order_id": line.order_id,
        "order_line_id": line.id,
        "line_no": line.line_no,
        "requested_price": str(item.requested_price),
        "price_before": str(item.price_before),
        "reason": item.reason,
        "status": item.status,
        "requested_by": item.requested_by,
        "decided_by": item.decided_by,
        "decision_reason": item.decision_reason,
        "version": item.version,
    }


class PriceOverrideRequestApi(ResourceApi):
    """``price_override_request``: read by whoever reads orders; approve and reject are the
    Supervisor's (``can_override_price``), never on their own request."""

    resource_name = "price_override_request"
    datamodel = SQLAInterface(PriceOverrideRequest)
    class_permission_name = security.ORDERS
    method_permission_name = {
        **security.METHOD_PERMISSIONS,
        "approve": "override_price",
        "reject": "override_price",
    }
    include_route_methods = {"get", "get_list", "info", "approve", "reject"}
    list_columns = [
        "id",
        "order_line_id",
        "order_line.order_id",
        "requested_price",
        "price_before",
        "reason",
        "status",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
        "decision_reason",
        "version",
    ]
    show_columns = list_columns
    order_columns = ["id", "status", "requested_at"]
    base_order = ("id", "desc")

    def _decide(self, action: Action, pk: int) -> Response:
        outcome = perform(action, pk, lambda: json_body(True), "api")
        if not outcome.ok:
            return self.response(outcome.status, **outcome.error)
        return self.response(200, result=request_dict(outcome.result))

    @expose("/<int:pk>/approve", methods=["POST"])
    @protect()
    @safe
    @permission_name("approve")
    def approve(self, pk: int) -> Response:
        """Supervisor: approve; the line takes the requested price (reason required).
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
                  properties: {reason: {type: string}, version: {type: integer}}
          responses:
            200: {description: The request, approved}
            403: {$ref: '#/components/responses/403'}
            409: {description: Already decided, or a stale version}
        """
        return self._decide(APPROVE_PRICE_REQUEST, pk)

    @expose("/<int:pk>/reject", methods=["POST"])
    @protect()
    @safe
    @permission_name("reject")
    def reject(self, pk: int) -> Response:
        """Supervisor: reject; the line keeps its price (reason required).
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
                  properties: {reason: {type: string}, version: {type: integer}}
          responses:
            200: {description: The request, rejected}
            403: {$ref: '#/components/responses/403'}
            409: {description: Already decided, or a stale version}
        """
        return self._decide(REJECT_PRICE_REQUEST, pk)
