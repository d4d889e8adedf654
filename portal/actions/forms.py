"""The HTML forms' schemas: a form's fields (text) parsed into the body its action takes.

A form posts text, and a blank field counts as not given (``portal.views.base.form_body``).
A value that does not parse is a 422 naming the form's own field (``qty_12: not a whole
number``): nothing typed is dropped. Per-line fields are named ``<name>_<line id>``
(``qty_12``, ``condition_12``); the pipeline then checks each line id is the record's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate

from portal.actions import MAX_INT, valid_id
from portal.actions.schemas import Text
from portal.models import CREDIT_REASONS, DELAY_REASONS, DISPUTE_TYPES, RETURN_CONDITIONS

_WHOLE = re.compile(r"[+-]?\d{1,10}")


class WholeNumber(fields.Field):
    """A whole number typed into a form, from ``minimum`` up to SQL INTEGER's largest."""

    def __init__(self, minimum: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.minimum = minimum

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        text = str(value).strip()
        if not _WHOLE.fullmatch(text):
            raise ValidationError("not a whole number")
        number = int(text)
        if not self.minimum <= number <= MAX_INT:
            raise ValidationError(f"must be between {self.minimum} and {MAX_INT}")
        return number


Lines = dict[int, dict[str, Any]]


class LineForm(Schema):
    """A form with per-line fields ``<name>_<line id>``, one for each name of ``line_fields``.

    :meth:`load` parses them into ``{line id: {name: value}}`` and the other fields by the
    schema's own; every error of both is reported at once. :meth:`shape` makes the body.
    """

    line_fields: ClassVar[Mapping[str, fields.Field]] = {}

    def load(self, data: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        plain: dict[str, Any] = {}
        lines: Lines = {}
        errors: dict[str, Any] = {}
        for key, value in data.items():
            name, _, suffix = key.rpartition("_")
            field = self.line_fields.get(name)
            if field is None:
                plain[key] = value
            elif not (suffix.isdigit() and valid_id(suffix)):
                errors[key] = ["not a line of this form"]
            else:
                try:
                    lines.setdefault(int(suffix), {})[name] = field.deserialize(value)
                except ValidationError as error:
                    errors[key] = error.messages
        try:
            body = super().load(plain, **kwargs)
        except ValidationError as error:
            errors.update(error.normalized_messages())
            body = {}
        if errors:
            raise ValidationError(errors)
        return self.shape(body, lines)

    def shape(self, body: dict[str, Any], lines: Lines) -> dict[str, Any]:
        return {**body, "lines": lines}


def _quantities(lines: Lines, *, keep_zero: bool) -> dict[int, int]:
    return {
        line_id: values["qty"]
        for line_id, values in sorted(lines.items())
        if "qty" in values and (keep_zero or values["qty"])
    }


class ShipForm(LineForm):
    """The order's ship form: warehouse, carrier details and ``qty_<line id>`` (0: not now)."""

    line_fields = {"qty": WholeNumber()}
    warehouse_id = WholeNumber(minimum=1, required=True)
    carrier = Text(60, required=True)
    tracking_number = fields.String(validate=validate.Length(max=80))
    eta = fields.Date()
    delay_reason = fields.String(validate=validate.OneOf(list(DELAY_REASONS)))

    def shape(self, body: dict[str, Any], lines: Lines) -> dict[str, Any]:
        return {**body, "lines": _quantities(lines, keep_zero=False)}


class AmendForm(LineForm):
    """The amendment form: reason, the dates, ``qty_<line id>`` and the order's ``version``."""

    line_fields = {"qty": WholeNumber()}
    reason = Text(200, required=True)
    version = WholeNumber()
    requested_date = fields.Date()
    promised_date = fields.Date()

    def shape(self, body: dict[str, Any], lines: Lines) -> dict[str, Any]:
        header = {
            name: body.pop(name) for name in ("requested_date", "promised_date") if name in body
        }
        return {**body, "header": header, "quantities": _quantities(lines, keep_zero=True)}


class ReceiveForm(LineForm):
    """The return's receive form: ``qty_<line id>`` (0: not received) and its condition."""

    line_fields = {
        "qty": WholeNumber(),
        "condition": fields.String(validate=validate.OneOf(RETURN_CONDITIONS)),
    }

    def shape(self, body: dict[str, Any], lines: Lines) -> dict[str, Any]:
        quantities = _quantities(lines, keep_zero=False)
        missing = [line_id for line_id in quantities if "condition" not in lines[line_id]]
        if missing:
            raise ValidationError({f"condition_{line_id}": ["is required"] for line_id in missing})
        received = [
            {"return_line_id": line_id, "quantity": qty, "condition": lines[line_id]["condition"]}
            for line_id, qty in quantities.items()
        ]
        return {"lines": received}


def _reason() -> fields.String:
    """The reason, which the forms call ``note``."""
    return fields.String(
        data_key="note",
        required=True,
        validate=validate.Length(1, 400),
        error_messages={"required": "give the reason"},
    )


def _resolve_only() -> fields.Raw:
    return fields.Raw(
        validate=lambda _: False, error_messages={"validator_failed": "only when resolving"}
    )


class RejectCreditForm(Schema):
    """Rejecting a credit memo on its page: the reason is the ``note``."""

    reason = _reason()


class DisputeRejectForm(Schema):
    """Rejecting on the dispute's decide form: the reason is the ``note``; what only a
    resolution takes must be left blank."""

    reason = _reason()
    root_cause = fields.String()
    corrective_action = _resolve_only()
    credit_amount = _resolve_only()


class ShipmentUpdateForm(Schema):
    """The shipment page's form: carrier details, ETA and delay reason (blank: unchanged)."""

    carrier = Text(60)
    tracking_number = fields.String(validate=validate.Length(max=80))
    eta = fields.Date()
    delay_reason = fields.String(validate=validate.OneOf(list(DELAY_REASONS)))
    version = WholeNumber()


class ReturnRequestForm(LineForm):
    """The order's return form: warehouse, reason and ``qty_<order line id>`` (0: none)."""

    line_fields = {"qty": WholeNumber()}
    warehouse_id = WholeNumber(minimum=1, required=True)
    reason = Text(200, required=True)

    def shape(self, body: dict[str, Any], lines: Lines) -> dict[str, Any]:
        return {**body, "lines": _quantities(lines, keep_zero=False)}


class OpenDisputeForm(Schema):
    """An invoice's "Open a dispute" form: the type chosen from a list, amount, details."""

    dispute_type = fields.String(required=True, validate=validate.OneOf(list(DISPUTE_TYPES)))
    amount = Text(20, required=True)
    description = Text(4000)
    owner = Text(120)


class RequestCreditForm(Schema):
    """An invoice's "Request a credit" form: the reason chosen from a list, amount, details."""

    reason_code = fields.String(required=True, validate=validate.OneOf(list(CREDIT_REASONS)))
    amount = Text(20, required=True)
    reason_text = Text(400)
