"""The actions on a ``return_authorization``: request it, ``authorize``, ``receive`` (as JSON
or from the record page's form), ``credit``, ``close``, ``reject``; one ``returns`` call each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from marshmallow import ValidationError

from portal.actions import Action
from portal.actions.forms import ReceiveForm, ReturnRequestForm
from portal.actions.schemas import ReceiveInput, ReturnInput
from portal.extensions import db
from portal.models import ReturnAuthorization, SalesOrder
from portal.services import returns
from portal.services.base import Actor


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


def _request_order(order: SalesOrder, actor: Actor, body: dict[str, Any]) -> ReturnAuthorization:
    """The order page's return form: the order is the record, its lines are checked."""
    return returns.request_return(
        order,
        actor,
        lines=body["lines"],
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
RECEIVE_FORM = replace(RECEIVE, schema=ReceiveForm)
# The order's return form: ``qty_<order line id>`` of what shipped.
REQUEST_FORM = Action(
    "request_return",
    SalesOrder,
    _request_order,
    ReturnRequestForm,
    line_ids=lambda body: list(body["lines"]),
)
