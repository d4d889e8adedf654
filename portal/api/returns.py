"""``return_authorization``: request a return (POST) and ``authorize``, ``receive``,
``credit``, ``close``, ``reject``; each one ``returns`` service call run through the pipeline.
"""

from __future__ import annotations

from flask import Response
from flask_appbuilder.api import expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name

import portal.security as security
from portal.actions.returns import AUTHORIZE, CLOSE, CREDIT, RECEIVE, REJECT, REQUEST
from portal.actions.schemas import ReturnInput
from portal.api.base import ResourceApi
from portal.models import ReturnAuthorization

RETURN_ACTIONS = {
    **{name: "write" for name in ("receive", "credit", "close", "reject")},
    "authorize": "authorize",  # a Supervisor's (security.SUPERVISOR_CHECKS)
}


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
