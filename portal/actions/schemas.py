"""Input schemas of the REST actions: each body is loaded (and type-checked) by one of these.

Integers and ids are strict whole numbers in SQL INTEGER range; decimals are loaded exactly as
sent (never rounded: the services refuse an amount with too many decimal places); a field
that fails names itself in the 422's message.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from portal.actions import MAX_INT
from portal.models import CANCEL_REASONS, DELAY_REASONS, RETURN_CONDITIONS


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


# -- finance --------------------------------------------------------------------------------


class _Strict(Schema):
    """Action bodies: unknown fields are refused."""


class NoteSchema(_Strict):
    note = fields.String(allow_none=True, validate=validate.Length(max=400))


class ReasonSchema(_Strict):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=400))


class GenerateSchema(_Strict):
    order_id = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))


class InvestigateSchema(_Strict):
    owner = fields.String(allow_none=True, validate=validate.Length(max=120))


class ResolveSchema(_Strict):
    root_cause = fields.String(required=True)
    corrective_action = fields.String(required=True)
    note = fields.String(allow_none=True)
    credit_amount = fields.Decimal(allow_none=True)  # unrounded: the service checks its places


class DisputeRejectSchema(_Strict):
    reason = fields.String(required=True, validate=validate.Length(min=1))
    root_cause = fields.String(allow_none=True)


class BulkOrderInput(Schema):
    """One order of ``POST /api/v1/sales_order/bulk``: the header (with the team's own
    ``external_ref`` and a past ``order_date`` if it has them) and its lines."""

    customer_id = Id(required=True)
    customer_po = fields.String(allow_none=True, validate=validate.Length(max=40))
    order_date = fields.Date()
    requested_date = fields.Date(allow_none=True)
    ship_to_id = Id(allow_none=True)
    payment_term_id = Id(allow_none=True)
    incoterm = fields.String(allow_none=True, validate=validate.Length(max=3))
    notes = fields.String(allow_none=True, validate=validate.Length(max=4000))
    external_ref = fields.String(allow_none=True, validate=validate.Length(1, 60))
    lines = fields.List(fields.Nested(OrderLineInput), load_default=list)
