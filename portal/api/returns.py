"""``return_authorization``: request a return (POST) and ``authorize``, ``receive``,
``credit``, ``close``, ``reject``; each one ``returns`` service call run through the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response
from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from marshmallow import ValidationError

import portal.security as security
from portal.actions import Action
from portal.api.base import ResourceApi
from portal.api.schemas import ReceiveInput, ReturnInput
from portal.extensions import db
from portal.models import ReturnAuthorization, SalesOrder
from portal.services import returns
from portal.services.base import Actor

RETURN_ACTIONS = {name: "write" for name in ("authorize", "receive", "credit", "close", "reject")}


def _request(_: None, actor: Actor, body: dict[str, Any]) -> ReturnAuthorization:
    order = db.session.get(SalesOrder, body["order_id"])
    if order is None:
        raise ValidationError({"order_id": [f"{body['order_id']} does not exist"]})
    return returns.request_return(
        order,
        actor,
        lines={line["order_line_id"]: line["quantity"] for line in body["lines"]},
        reason=body["reason"],
        warehouse_id=body["warehouse_id"],
    )


def _receive(rma: ReturnAuthorization, actor: Actor, body: dict[str, Any]) -> ReturnAuthorization:
    received = {
        line["return_line_id"]: (line["quantity"], line["condition"]) for line in body["lines"]
    }
    return returns.receive(rma, actor, received)


def _step(name: str, call: Callable[[ReturnAuthorization, Actor], Any]) -> Action:
    """An action that takes no body: ``call(rma, actor)``."""
    return Action(name, ReturnAuthorization, lambda rma, actor, _: call(rma, actor))


REQUEST = Action("create", ReturnAuthorization, _request, ReturnInput, status=201)
AUTHORIZE = _step("authorize", returns.authorize)
REJECT = _step("reject", returns.reject)
CREDIT = _step("credit", returns.credit)
CLOSE = _step("close", returns.close)
RECEIVE = Action(
    "receive",
    ReturnAuthorization,
    _receive,
    ReceiveInput,
    line_ids=lambda body: [line["return_line_id"] for line in body["lines"]],
)


class ReturnAuthorizationApi(ResourceApi):
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

    def post_headless(self) -> Response:
        return self.run_action(REQUEST)

    @expose("/<int:pk>/authorize", methods=["POST"])
    @protect()
    @safe
    @permission_name("authorize")
    def authorize(self, pk: int):
        """Authorize a requested return."""
        return self.run_action(AUTHORIZE, pk)

    @expose("/<int:pk>/reject", methods=["POST"])
    @protect()
    @safe
    @permission_name("reject")
    def reject(self, pk: int):
        """Reject a return."""
        return self.run_action(REJECT, pk)

    @expose("/<int:pk>/credit", methods=["POST"])
    @protect()
    @safe
    @permission_name("credit")
    def credit(self, pk: int):
        """Request the credit memo for the received units (then approved as usual)."""
        return self.run_action(CREDIT, pk)

    @expose("/<int:pk>/close", methods=["POST"])
    @protect()
    @safe
    @permission_name("close")
    def close(self, pk: int):
        """Close a received return."""
        return self.run_action(CLOSE, pk)

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
        return self.run_action(RECEIVE, pk)
