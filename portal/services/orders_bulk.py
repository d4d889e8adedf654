"""Many orders in one request (``POST /api/v1/sales_order/bulk``): one result per item.

The items that pass their schema are created with ``orders.orders.create_many`` — one
transaction, numbers and products read once, every order and line written by one flush. An
item the service refuses (``orders[i].<field>``) is taken out with its reasons and the batch
is tried again without it, so each item is decided exactly as entering it alone would, and
the good ones are created together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.models import SalesOrder
from portal.services import limits
from portal.services.actor import Actor
from portal.services.base import ValidationFailed
from portal.services.orders import orders

_POSITION = re.compile(r"^orders\[(\d+)\]\.(.+)$")


@dataclass
class BulkItem:
    """One item of a bulk request: its position, and either its input or its refusal."""

    index: int
    header: dict[str, Any] = field(default_factory=dict)
    lines: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, Any] | None = None
    order: SalesOrder | None = None


def create_orders(items: Sequence[BulkItem], actor: Actor) -> list[BulkItem]:
    """Create every item without errors; refused items keep their reasons."""
    limits.check_bulk(len(items), "orders")
    _refuse_used_refs(items)
    pending = [item for item in items if item.errors is None]
    while pending:
        try:
            created = orders.create_many([(item.header, item.lines) for item in pending], actor)
        except ValidationFailed as error:
            position, reasons = _first_refused(error, len(pending))
            pending.pop(position).errors = reasons
            continue
        for item, order in zip(pending, created, strict=True):
            item.order = order
        break
    return list(items)


def _refuse_used_refs(items: Sequence[BulkItem]) -> None:
    """An ``external_ref`` already on an order, or twice in the request, refuses the item."""
    wanted = [item.header.get("external_ref") for item in items if item.errors is None]
    refs = [ref for ref in wanted if ref]
    used = set(
        db.session.scalars(select(SalesOrder.external_ref).where(SalesOrder.external_ref.in_(refs)))
    )
    seen: set[str] = set()
    for item in items:
        ref = item.header.get("external_ref")
        if item.errors is None and ref:
            if ref in used or ref in seen:
                item.errors = {"external_ref": [f"{ref} is already used"]}
            seen.add(ref)


def _first_refused(error: ValidationFailed, size: int) -> tuple[int, dict[str, Any]]:
    """The position in the batch the service refused, and its reasons by field."""
    if size == 1:
        return 0, dict(error.field_errors)
    reasons: dict[str, Any] = {}
    position = None
    for name, messages in error.field_errors.items():
        match = _POSITION.match(name)
        if match:
            position = int(match.group(1))
            reasons[match.group(2)] = messages
    if position is None:  # not about one order: every remaining item is refused alike
        raise error
    return position, reasons


def result_of(item: BulkItem) -> Mapping[str, Any]:
    if item.order is not None:
        order = item.order
        return {"index": item.index, "status": 201, "id": order.id, "number": order.number}
    return {"index": item.index, "status": 422, "errors": item.errors}
