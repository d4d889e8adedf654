"""Amendments and cancellations of confirmed orders.

An amendment is a numbered revision with a reason, the user and a diff; no line may drop below
what already shipped, and allocations above the new quantity are released to stock.
Cancelling an order or a line releases its allocations and closes its backorders.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    CANCEL_REASONS,
    INCOTERMS,
    Allocation,
    Backorder,
    BackorderStatus,
    MovementKind,
    OrderLine,
    OrderRevision,
    OrderStatus,
    SalesOrder,
    Warehouse,
    utcnow,
)
from portal.services import (
    audit,
    fulfillment,
    inventory,
    notifications,
    orders,
    pricing,
    states,
)
from portal.services.audit import plain
from portal.services.base import (
    Actor,
    ConflictError,
    ValidationFailed,
    check_version,
    unit_of_work,
)
from portal.services.bounds import entered_value_problem

AMENDABLE = states.ORDERS.sources("amend")
AMENDABLE_HEADER = (
    "customer_po",
    "requested_date",
    "promised_date",
    "ship_to_id",
    "incoterm",
    "notes",
)


def _release(line: OrderLine, units: int, actor: Actor, reference: str) -> int:
    """Give back up to ``units`` allocated units of ``line`` to stock, lowest priority first."""
    released = 0
    rows = (
        db.session.execute(
            select(Allocation)
            .join(Warehouse, Allocation.warehouse_id == Warehouse.id)
            .where(Allocation.order_line_id == line.id, Allocation.quantity > 0)
            .order_by(Warehouse.priority.desc())
        )
        .scalars()
        .all()
    )
    for row in rows:
        if released >= units:
            break
        take = min(row.quantity, units - released)
        level = inventory.stock_level(line.product_id, row.warehouse_id, lock=True)
        inventory.move(
            level, MovementKind.RELEASE, actor, allocated_delta=-take, reference=reference
        )
        row.quantity -= take
        line.qty_allocated -= take
        released += take
    return released


def _close_backorder(line: OrderLine, status: str) -> None:
    for backorder in db.session.execute(
        select(Backorder).where(
            Backorder.order_line_id == line.id, Backorder.status == BackorderStatus.OPEN.value
        )
    ).scalars():
        backorder.status = status
    line.qty_backordered = 0


def _amend_errors(
    order: SalesOrder,
    reason: str,
    header: Mapping[str, Any],
    quantities: Mapping[int, int],
    by_id: Mapping[int, OrderLine],
) -> dict[str, list[str]]:
    """What is wrong with an amendment: the reason, the header fields, the line quantities."""
    errors: dict[str, list[str]] = {}
    if not (reason or "").strip():
        errors["reason"] = ["say why the order is amended"]
    for name in sorted(set(header) - set(AMENDABLE_HEADER)):
        errors[name] = ["can't be amended"]
    for name in sorted(set(header) & set(AMENDABLE_HEADER)):
        problem = entered_value_problem(SalesOrder.__table__.c[name], header[name])
        if problem is not None:
            errors[name] = [problem]
    if header.get("incoterm") is not None and header["incoterm"] not in INCOTERMS:
        errors["incoterm"] = [f"must be one of {', '.join(INCOTERMS)}"]
    for line_id, quantity in quantities.items():
        problem = _quantity_error(order, by_id.get(line_id), line_id, quantity)
        if problem is not None:
            errors.setdefault("quantities", []).append(problem)
    return errors


def _quantity_error(
    order: SalesOrder, line: OrderLine | None, line_id: int, quantity: Any
) -> str | None:
    """Why ``quantity`` can't be the new quantity of line ``line_id``; None if it can."""
    if line is None:
        return f"line {line_id} is not on {order.number}"
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
        return f"line {line.line_no}: whole number ≥ 0"
    if quantity < line.qty_shipped + line.qty_cancelled:
        return f"line {line.line_no}: {line.qty_shipped} already shipped, can't go to {quantity}"
    if quantity % line.product.pack_size:
        return f"line {line.line_no}: not a multiple of the pack size {line.product.pack_size}"
    return None


def _apply_amendment(
    order: SalesOrder,
    actor: Actor,
    header: Mapping[str, Any],
    quantities: Mapping[int, int],
    by_id: Mapping[int, OrderLine],
) -> dict[str, Any]:
    """Set the (valid) header fields and quantities; the diff of what actually changed."""
    diff: dict[str, Any] = {}
    for name, value in header.items():
        if getattr(order, name) != value:
            diff[name] = {"from": plain(getattr(order, name)), "to": plain(value)}
            setattr(order, name, value)
    for line_id, quantity in quantities.items():
        line = by_id[line_id]
        if line.quantity == quantity:
            continue
        diff[f"line {line.line_no} quantity"] = {"from": line.quantity, "to": quantity}
        line.quantity = quantity
        _reprice(line, diff)
        surplus = line.qty_allocated - fulfillment.open_quantity(line)
        if surplus > 0:
            _release(line, surplus, actor, f"{order.number} rev {order.revision + 1}")
        if line.qty_backordered:
            fulfillment._sync_backorder(line, utcnow().date())
    return diff


def _reprice(line: OrderLine, diff: dict[str, Any]) -> None:
    """Price a line's new quantity from the price list (its break may have changed); an
    approved override keeps its price."""
    if line.price_override_by:
        return
    price = pricing.quote(line.order.customer, line.product, line.quantity).unit_price
    if price != line.unit_price:
        diff[f"line {line.line_no} unit price"] = {
            "from": plain(line.unit_price),
            "to": plain(price),
        }
        line.unit_price = price


def _reallocate(order: SalesOrder, actor: Actor) -> None:
    """Allocate what an amendment added to an order already allocated (the rest is
    backordered), as allocating it again would; a confirmed order waits for its allocation."""
    fulfillment._settle_status(order, actor)
    if order.status in fulfillment.ALLOCATABLE and any(
        fulfillment.unallocated(line) > 0 for line in order.lines
    ):
        fulfillment.allocate_many([order], actor)


def amend(
    order: SalesOrder,
    actor: Actor,
    *,
    reason: str,
    header: Mapping[str, Any] | None = None,
    quantities: Mapping[int, int] | None = None,
    expected_version: int | None = None,
) -> OrderRevision:
    """Change a confirmed order's header fields and line quantities as a new revision."""
    orders.orders._require(actor, "can_write")
    check_version(order, expected_version)
    if order.status not in AMENDABLE:
        raise ConflictError(f"order {order.number} is {order.status}; it can't be amended")
    header = dict(header or {})
    quantities = dict(quantities or {})
    by_id = {line.id: line for line in order.lines}
    errors = _amend_errors(order, reason, header, quantities, by_id)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        diff = _apply_amendment(order, actor, header, quantities, by_id)
        if not diff:
            raise ValidationFailed({"reason": ["the amendment changes nothing"]})
        order.revision += 1
        revision = OrderRevision(
            order_id=order.id,
            revision=order.revision,
            reason=reason.strip(),
            actor=actor.name,
            diff=json.dumps(diff, sort_keys=True),
        )
        db.session.add(revision)
        db.session.flush()
        audit.record(
            actor,
            "sales_order",
            order.id,
            "amend",
            detail={"revision": order.revision, "reason": reason.strip(), "diff": diff},
        )
        if order.status == OrderStatus.CONFIRMED.value:
            fulfillment._settle_status(order, actor)
        else:
            _reallocate(order, actor)
        notifications.notify(order, "amended", actor, reason=reason.strip())
    return revision


def _check_reason(reason_code: str) -> None:
    if reason_code not in CANCEL_REASONS:
        raise ValidationFailed({"reason_code": [f"must be one of {', '.join(CANCEL_REASONS)}"]})


def _cancel_open_units(line: OrderLine, actor: Actor, reference: str) -> int:
    open_units = fulfillment.open_quantity(line)
    if open_units <= 0:
        return 0
    _release(line, line.qty_allocated, actor, reference)
    _close_backorder(line, BackorderStatus.CANCELLED.value)
    line.qty_cancelled += open_units
    return open_units


def cancel_order(
    order: SalesOrder, actor: Actor, reason_code: str, note: str | None = None
) -> SalesOrder:
    """Cancel everything not yet shipped; an order with shipments keeps what shipped."""
    orders.orders._require(actor, "can_write")
    _check_reason(reason_code)
    if not states.nothing_shipped(order):
        raise ConflictError(
            f"order {order.number} has shipped lines; cancel the open lines instead"
        )
    with unit_of_work():
        for line in order.lines:
            _cancel_open_units(line, actor, f"{order.number} cancelled")
        reason = CANCEL_REASONS[reason_code] + (f" — {note.strip()}" if note else "")
        states.transition(order, OrderStatus.CANCELLED.value, actor, reason)
        notifications.notify(order, "cancelled", actor, lines=[], reason=reason)
    return order


def cancel_line(
    line: OrderLine, actor: Actor, reason_code: str, note: str | None = None
) -> OrderLine:
    """Cancel the open (unshipped) units of one line, releasing its allocation."""
    orders.orders._require(actor, "can_write")
    _check_reason(reason_code)
    order = line.order
    if order.status in (OrderStatus.CANCELLED.value, OrderStatus.CLOSED.value):
        raise ConflictError(f"order {order.number} is {order.status}")
    with unit_of_work():
        cancelled = _cancel_open_units(line, actor, f"{order.number}/{line.line_no} cancelled")
        if not cancelled:
            raise ConflictError(f"line {line.line_no} has nothing left to cancel")
        reason = CANCEL_REASONS[reason_code] + (f" — {note.strip()}" if note else "")
        db.session.flush()
        audit.record(
            actor,
            "order_line",
            line.id,
            "cancel",
            after={"qty_cancelled": line.qty_cancelled},
            detail={"reason": reason, "units": cancelled},
        )
        if all(fulfillment.open_quantity(item) == 0 for item in order.lines) and not any(
            item.qty_shipped for item in order.lines
        ):
            states.transition(order, OrderStatus.CANCELLED.value, actor, reason)
        elif order.status in fulfillment.ALLOCATABLE + fulfillment.SHIPPABLE:
            fulfillment._settle_status(order, actor)
        notifications.notify(order, "cancelled", actor, lines=[line], reason=reason)
    return line
