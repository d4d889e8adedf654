"""The names a person sees for the fields an action refuses: ``Product: pick one`` in a flash
message, not the body's ``product_id: pick one``. The REST API keeps the field names (they
are its contract); :attr:`portal.actions.Outcome.message`, which only the pages show, uses
:func:`refusal_text`.

A per-line form field ``qty_12`` (line id 12) reads "Quantity of line 3" when the record's
line 12 is its line 3; a nested list error (``lines: {0: {...}}``) reads "Line 1 product".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

FIELD_LABELS = {
    "amount": "Amount",
    "carrier": "Carrier",
    "closed_at": "Closed on",
    "condition": "Condition",
    "corrective_action": "Corrective action",
    "credit_amount": "Credit amount",
    "customer_id": "Customer",
    "customer_po": "Customer PO",
    "decided_at": "Decided at",
    "delay_reason": "Delay reason",
    "delivered_date": "Delivered on",
    "discount_pct": "Discount %",
    "dispute_type": "Type",
    "eta": "ETA",
    "incoterm_id": "Incoterm",
    "invoice_id": "Invoice",
    "issue_date": "Issue date",
    "line_id": "Line",
    "lines": "Lines",
    "note": "Reason",
    "on_hand": "On hand",
    "order_id": "Order",
    "owner": "Owner",
    "payment_term_id": "Payment terms",
    "product_id": "Product",
    "promised_date": "Promised date",
    "qty": "Quantity",
    "quantity": "Quantity",
    "reason": "Reason",
    "reason_code": "Reason",
    "reason_text": "Details",
    "received": "Received",
    "reference": "Reference",
    "requested_date": "Requested date",
    "restock": "Back to stock",
    "root_cause": "Root cause",
    "ship_date": "Ship date",
    "ship_to_id": "Ship to",
    "tracking_number": "Tracking number",
    "unit_price": "Unit price",
    "version": "Version",
    "warehouse_id": "Warehouse",
}
INVALID_INPUT = "Invalid input — "
_PER_LINE = re.compile(r"(?P<name>[a-z_]+?)_(?P<line>\d{1,10})")


def per_line(name: Any) -> bool:
    """Whether ``name`` is a per-line form field (``qty_12``)."""
    found = _PER_LINE.fullmatch(str(name))
    return bool(found and found["name"] in FIELD_LABELS)


def field_label(name: Any, lines: Mapping[int, int] | None = None) -> str:
    """What a person calls the field ``name``: its label, or the name in words."""
    text = str(name)
    if text in FIELD_LABELS:
        return FIELD_LABELS[text]
    per_line = _PER_LINE.fullmatch(text)
    if per_line and per_line["name"] in FIELD_LABELS:
        line = int(per_line["line"])
        number = (lines or {}).get(line)
        where = f"line {number}" if number is not None else f"line id {line}"
        return f"{FIELD_LABELS[per_line['name']]} of {where}"
    words = text.removesuffix("_id").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _messages(errors: Any, lines: Mapping[int, int] | None) -> str:
    if isinstance(errors, Mapping):
        return "; ".join(_field_text(name, value, lines) for name, value in errors.items())
    if isinstance(errors, list | tuple):
        return ", ".join(_messages(value, lines) for value in errors)
    return str(errors)


def _field_text(name: Any, errors: Any, lines: Mapping[int, int] | None) -> str:
    if (
        name == "lines"
        and isinstance(errors, Mapping)
        and all(isinstance(key, int) or str(key).isdigit() for key in errors)
    ):
        return "; ".join(
            _field_text(f"Line {int(index) + 1}", value, lines) for index, value in errors.items()
        )
    if isinstance(errors, Mapping) and str(name).startswith("Line "):
        return "; ".join(
            f"{name} {field_label(inner, lines).lower()}: {_messages(value, lines)}"
            for inner, value in errors.items()
        )
    label = name if str(name).startswith("Line ") else field_label(name, lines)
    return f"{label}: {_messages(errors, lines)}"


def refusal_text(errors: Mapping[str, Any], lines: Mapping[int, int] | None = None) -> str:
    """``Invalid input — Product: pick one; Quantity of line 2: not a whole number``."""
    return INVALID_INPUT + "; ".join(
        _field_text(name, value, lines) for name, value in errors.items()
    )
