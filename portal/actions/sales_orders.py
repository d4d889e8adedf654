"""The actions on a ``sales_order``: the REST API's (``confirm``, ``allocate``, ``cancel``,
``amend``, ``release``, ``convert``, ``approve_price``, and ``bulk``: many new orders) and
the HTML forms' (the amendment form, invoicing the shipments); shipping from the order page
is in :mod:`.shipments`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from marshmallow import ValidationError

from portal.actions import Action
from portal.actions.forms import AmendForm
from portal.actions.schemas import (
    AmendInput,
    BulkOrderInput,
    CancelInput,
    PriceOverrideInput,
    ReasonInput,
)
from portal.models import OrderLine, SalesOrder
from portal.services import changes, fulfillment, invoices, lifecycle, limits, orders_bulk
from portal.services.base import Actor, ServiceError


def _line(order: SalesOrder, line_id: int) -> OrderLine:
    """The order's line ``line_id`` (the pipeline has checked it is the order's)."""
    return next(line for line in order.lines if line.id == line_id)


def _cancel(order: SalesOrder, actor: Actor, body: dict[str, Any]) -> SalesOrder:
    if body.get("line_id"):
        line = _line(order, body["line_id"])
        changes.cancel_line(line, actor, body["reason_code"], body.get("note"))
        return order
    return changes.cancel_order(order, actor, body["reason_code"], body.get("note"))


def _amend(order: SalesOrder, actor: Actor, body: dict[str, Any]) -> SalesOrder:
    changes.amend(
        order,
        actor,
        reason=body["reason"],
        header=body.get("header"),
        quantities={int(k): v for k, v in body.get("quantities", {}).items()},
        expected_version=body.get("version"),
    )
    return order


def _approve_price(order: SalesOrder, actor: Actor, body: dict[str, Any]) -> SalesOrder:
    lifecycle.approve_price_override(_line(order, body["line_id"]), actor, body["reason"])
    return order


CONFIRM = Action("confirm", SalesOrder, lambda o, a, b: lifecycle.confirm(o, a))
ALLOCATE = Action("allocate", SalesOrder, lambda o, a, b: fulfillment.allocate(o, a))
CANCEL = Action(
    "cancel",
    SalesOrder,
    _cancel,
    CancelInput,
    line_ids=lambda body: [body["line_id"]] if body.get("line_id") else [],
)
AMEND = Action(
    "amend",
    SalesOrder,
    _amend,
    AmendInput,
    line_ids=lambda body: [int(key) for key in body.get("quantities", {})],
)
RELEASE = Action(
    "release", SalesOrder, lambda o, a, b: lifecycle.release_hold(o, a, b["reason"]), ReasonInput
)
CONVERT = Action("convert", SalesOrder, lambda o, a, b: lifecycle.convert_quote(o, a))
APPROVE_PRICE = Action(
    "approve_price",
    SalesOrder,
    _approve_price,
    PriceOverrideInput,
    line_ids=lambda body: [body["line_id"]],
)

# The HTML forms'
AMEND_FORM = replace(AMEND, schema=AmendForm)
INVOICE = Action("invoice", SalesOrder, lambda o, a, b: invoices.invoice_pending(o, a))


def _bulk(_: None, actor: Actor, body: dict[str, Any]) -> list[orders_bulk.BulkItem]:
    """Load each item with its schema (its errors kept), then create the good ones."""
    raw = body.get("orders")
    if not isinstance(raw, list) or not raw:
        raise ValidationError({"orders": ["must be a non-empty list of orders"]})
    limits.check_bulk(len(raw), "orders")  # before any per-item work
    items = []
    for index, entry in enumerate(raw):
        item = orders_bulk.BulkItem(index)
        try:
            if not isinstance(entry, dict):
                raise ValidationError({"_schema": ["must be an object"]})
            limits.check_line_count(len(entry.get("lines") or []))
            loaded = BulkOrderInput().load(entry)
            item.lines = loaded.pop("lines")
            item.header = loaded
        except ValidationError as error:
            item.errors = error.messages
        except ServiceError as error:
            item.errors = error.field_errors or {"_schema": [error.message]}
        items.append(item)
    return orders_bulk.create_orders(items, actor)


BULK = Action("bulk", SalesOrder, _bulk, schema=None, body_required=True)
