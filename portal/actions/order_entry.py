"""Order entry actions: a draft's lines (add, change, remove), price override requests and
their decisions, and the entry page's order with its lines; JSON bodies and the forms'."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

from portal.actions import Action
from portal.actions.forms import WholeNumber
from portal.actions.sales_orders import CANCEL
from portal.actions.schemas import Id, OrderLineInput, Quantity, Text
from portal.models import CANCEL_REASONS, INCOTERMS, OrderLine, PriceOverrideRequest, SalesOrder
from portal.services import order_entry, orders, price_overrides
from portal.services.base import Actor, check_version


class LineAddInput(OrderLineInput):
    version = fields.Integer(strict=True)  # the order's, when the client knows it


class LineChangeInput(Schema):
    line_id = Id(required=True)
    quantity = Quantity()
    unit_price = fields.Decimal(validate=validate.Range(0, 10**9))
    discount_pct = fields.Decimal(validate=validate.Range(0, 100))
    version = fields.Integer(strict=True)  # the line's


class LineRemoveInput(Schema):
    line_id = Id(required=True)
    version = fields.Integer(strict=True)


class PriceRequestInput(Schema):
    line_id = Id(required=True)
    unit_price = fields.Decimal(required=True, validate=validate.Range(0, 10**9))
    reason = Text(200, required=True)


class DecisionInput(Schema):
    reason = Text(200, required=True)
    version = fields.Integer(strict=True)


def _line(order: SalesOrder, line_id: int) -> OrderLine:
    return next(line for line in order.lines if line.id == line_id)


def _add(order: SalesOrder, actor: Actor, body: dict[str, Any]) -> SalesOrder:
    check_version(order, body.pop("version", None))
    orders.add_lines(order, [body], actor)
    return order


def _change(order: SalesOrder, actor: Actor, body: dict[str, Any]) -> SalesOrder:
    line = _line(order, body.pop("line_id"))
    version = body.pop("version", None)
    order_entry.update_line(line, body, actor, version)
    return order


def _remove(order: SalesOrder, actor: Actor, body: dict[str, Any]) -> SalesOrder:
    return order_entry.remove_line(_line(order, body["line_id"]), actor, body.get("version"))


def _request(order: SalesOrder, actor: Actor, body: dict[str, Any]) -> PriceOverrideRequest:
    line = _line(order, body["line_id"])
    return price_overrides.request_price(line, actor, body["unit_price"], body["reason"])


def _line_ids(body: dict[str, Any]) -> list[int]:
    return [body["line_id"]]


ADD_LINE = Action("add_line", SalesOrder, _add, LineAddInput, status=201)
CHANGE_LINE = Action("change_line", SalesOrder, _change, LineChangeInput, line_ids=_line_ids)
REMOVE_LINE = Action("remove_line", SalesOrder, _remove, LineRemoveInput, line_ids=_line_ids)
REQUEST_PRICE = Action(
    "request_price", SalesOrder, _request, PriceRequestInput, line_ids=_line_ids, status=201
)
APPROVE_PRICE_REQUEST = Action(
    "approve",
    PriceOverrideRequest,
    lambda r, a, b: price_overrides.approve(r, a, b["reason"], b.get("version")),
    DecisionInput,
)
REJECT_PRICE_REQUEST = Action(
    "reject",
    PriceOverrideRequest,
    lambda r, a, b: price_overrides.reject(r, a, b["reason"], b.get("version")),
    DecisionInput,
)


# -- the forms' ---------------------------------------------------------------------------


class LineAddForm(Schema):
    product_id = WholeNumber(minimum=1, required=True, error_messages={"required": "pick one"})
    quantity = WholeNumber(minimum=1, required=True)
    product_label = Text(200)  # the picker's text, shown again on a refused form; not stored

    @post_load
    def _without_label(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data.pop("product_label", None)
        return data


class LineChangeForm(Schema):
    line_id = WholeNumber(minimum=1, required=True)
    quantity = WholeNumber(minimum=1, required=True)
    version = WholeNumber()


class LineRemoveForm(Schema):
    line_id = WholeNumber(minimum=1, required=True)
    version = WholeNumber()


class PriceRequestForm(Schema):
    line_id = WholeNumber(minimum=1, required=True)
    unit_price = fields.Decimal(required=True, validate=validate.Range(0, 10**9))
    reason = Text(200, required=True)


class CancelLineForm(Schema):
    line_id = WholeNumber(minimum=1, required=True)
    reason_code = fields.String(required=True, validate=validate.OneOf(list(CANCEL_REASONS)))
    note = Text(200)


class DecisionForm(Schema):
    reason = Text(200, required=True, error_messages={"required": "give the reason"})
    version = WholeNumber()


MAX_FORM_LINES = 200


class OrderEntryForm(Schema):
    """The entry page: the header and lines ``product_id_<n>`` / ``quantity_<n>`` (n from 1;
    a row with neither is skipped, a row with one of them is an error on the other)."""

    customer_id = WholeNumber(minimum=1, required=True, error_messages={"required": "pick one"})
    ship_to_id = WholeNumber(minimum=1)
    customer_po = fields.String(validate=validate.Length(max=40))
    requested_date = fields.Date(error_messages={"invalid": "not a date (YYYY-MM-DD)"})
    incoterm = fields.String(validate=validate.OneOf(INCOTERMS))
    notes = fields.String(validate=validate.Length(max=4000))

    def load(self, data: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        header = {
            k: v
            for k, v in data.items()
            if not k.startswith(("product_id_", "quantity_", "product_label_"))
            and not k.endswith("_label")
        }
        errors: dict[str, Any] = {}
        try:
            body = super().load(header, **kwargs)
        except ValidationError as error:
            errors.update(error.normalized_messages())
            body = {}
        lines = []
        for n in range(1, MAX_FORM_LINES + 1):
            product, quantity = data.get(f"product_id_{n}"), data.get(f"quantity_{n}")
            if product is None and quantity is None:
                continue
            try:
                lines.append(LineAddForm().load({"product_id": product, "quantity": quantity}))
            except ValidationError as error:
                for name, messages in error.normalized_messages().items():
                    errors[f"{name}_{n}"] = messages
        if not lines and not errors:
            errors["lines"] = ["add at least one line"]
        if errors:
            raise ValidationError(errors)
        return {**body, "lines": lines}


def _create(_: None, actor: Actor, body: dict[str, Any]) -> SalesOrder:
    lines = body.pop("lines")
    return orders.orders.create_with_lines(body, lines, actor)


ENTER_ORDER_FORM = Action(
    "create", SalesOrder, _create, OrderEntryForm, status=201, body_required=True
)
ADD_LINE_FORM = replace(ADD_LINE, schema=LineAddForm)
CHANGE_LINE_FORM = replace(CHANGE_LINE, schema=LineChangeForm)
REMOVE_LINE_FORM = replace(REMOVE_LINE, schema=LineRemoveForm)
CANCEL_LINE_FORM = replace(CANCEL, schema=CancelLineForm)
REQUEST_PRICE_FORM = replace(REQUEST_PRICE, schema=PriceRequestForm)
APPROVE_PRICE_REQUEST_FORM = replace(APPROVE_PRICE_REQUEST, schema=DecisionForm)
REJECT_PRICE_REQUEST_FORM = replace(REJECT_PRICE_REQUEST, schema=DecisionForm)
