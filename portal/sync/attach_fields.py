"""The fields a team's headers may map to when a workbook is attached, per record kind.

Each :class:`~sheets.mapping.FieldChoice` names a field of the kind keyed on the team's own
references (:mod:`portal.sync.team_keys`), with the label users read and the other names
teams give it. The key choice (``order_ref`` for orders, ``line_ref`` for one row per line)
becomes the tracker's key column; the rest become mapped columns. Fields the portal computes
(status, totals, allocations) are not offered: an attached sheet keeps its history, and a
portal default must never overwrite it (docs/sync-attach.md).
"""

from __future__ import annotations

from sheets.mapping import FieldChoice

ORDER_ID = ("order id", "order no", "order number", "so#", "so number", "order", "order ref")
_ORDER = (
    FieldChoice("number", "Portal order number", "text", ("portal number", "portal order")),
    FieldChoice(
        "customer", "Customer code", "text", ("customer id", "customer code", "account", "cust")
    ),
    FieldChoice(
        "customer_name", "Customer name", "text", ("customer", "company name", "client", "company")
    ),
    FieldChoice("customer_po", "Customer PO", "text", ("po", "po number", "purchase order")),
    FieldChoice(
        "order_date", "Order date", "date", ("date ordered", "ordered on", "date", "order dt")
    ),
    FieldChoice(
        "requested_date", "Requested date", "date", ("required date", "due date", "need by")
    ),
)
_LINE = (
    FieldChoice("sku", "SKU", "text", ("product id", "item code", "product code", "item no")),
    FieldChoice("product", "Product name", "text", ("product", "item", "description", "item name")),
    FieldChoice("quantity", "Quantity", "int", ("qty", "units", "ordered qty", "quantity ordered")),
    FieldChoice("unit_price", "Unit price", "money", ("price", "unit cost", "price each")),
    FieldChoice("discount_pct", "Discount %", "decimal", ("discount", "disc", "discount pct")),
)

KEY_CHOICES = {
    "orders": FieldChoice("order_ref", "Order ID (the team's)", "text", ORDER_ID),
    "order_lines": FieldChoice(
        "line_ref", "Line ID (the team's)", "text", ("row id", "line id", "line no", "line ref")
    ),
}
FIELD_CHOICES: dict[str, tuple[FieldChoice, ...]] = {
    "orders": (
        KEY_CHOICES["orders"],
        *_ORDER,
        FieldChoice("promised_date", "Promised date", "date", ("promise date", "eta")),
        FieldChoice("notes", "Notes", "text", ("note", "comments", "remarks")),
    ),
    "order_lines": (
        KEY_CHOICES["order_lines"],
        FieldChoice("order_ref", "Order ID (the team's)", "text", ORDER_ID),
        *_ORDER,
        *_LINE,
    ),
}
ATTACH_KINDS = tuple(FIELD_CHOICES)


def field_choices(kind: str) -> tuple[FieldChoice, ...]:
    """What a header of a ``kind`` sheet may map to; ValueError for other kinds."""
    try:
        return FIELD_CHOICES[kind]
    except KeyError:
        raise ValueError(
            f"attaching a workbook of {kind.replace('_', ' ')} is not supported yet "
            f"(kinds: {', '.join(ATTACH_KINDS)})"
        ) from None


def label_of(kind: str, field: str | None) -> str:
    """The label users read for a field of ``kind`` ("Leave alone" for None)."""
    if field is None:
        return "Leave alone"
    return next((f.label for f in field_choices(kind) if f.name == field), field)
