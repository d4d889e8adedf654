"""Order validation and confirmation: the named checklist, holds, overrides, quotes.

``confirm`` runs every check of DESIGN.md section 3, stores each result on the order and
either confirms it (setting the promised date) or puts it on hold with the failed checks as
reasons. Supervisors release holds and approve price overrides, with who and why recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    OrderCheck,
    OrderLine,
    OrderStatus,
    SalesOrder,
    utcnow,
)
from portal.services import audit, finance, notifications, orders, pricing
from portal.services.base import (
    Actor,
    ConflictError,
    PermissionDenied,
    ValidationFailed,
    unit_of_work,
)

OPEN_EXPOSURE_STATUSES = (
    OrderStatus.CONFIRMED.value,
    OrderStatus.PARTIALLY_ALLOCATED.value,
    OrderStatus.ALLOCATED.value,
    OrderStatus.PARTIALLY_SHIPPED.value,
    OrderStatus.SHIPPED.value,
    OrderStatus.DELIVERED.value,
)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one named check."""

    name: str
    passed: bool
    detail: str


def _customer_active(order: SalesOrder, today: date) -> CheckResult:
    customer = order.customer
    if not customer.active:
        return CheckResult("customer_active", False, f"customer {customer.code} is inactive")
    if customer.credit_hold:
        return CheckResult("customer_active", False, f"customer {customer.code} is on credit hold")
    return CheckResult("customer_active", True, "active, no credit hold")


def open_exposure(customer_id: int, exclude_order_id: int | None = None) -> Decimal:
    """Value of the customer's confirmed orders not yet shipped.

    Shipped units are invoiced, so they count through the open invoice balance instead.
    """
    open_units = OrderLine.quantity - OrderLine.qty_cancelled - OrderLine.qty_shipped
    query = (
        select(func.coalesce(func.sum(open_units * OrderLine.unit_price), 0))
        .join(SalesOrder, OrderLine.order_id == SalesOrder.id)
        .where(
            SalesOrder.customer_id == customer_id,
            SalesOrder.status.in_(OPEN_EXPOSURE_STATUSES),
        )
    )
    if exclude_order_id is not None:
        query = query.where(SalesOrder.id != exclude_order_id)
    return Decimal(db.session.execute(query).scalar_one()).quantize(Decimal("0.01"))


def _credit_exposure(order: SalesOrder, today: date) -> CheckResult:
    limit = order.customer.credit_limit
    exposure = (
        finance.open_balance_for_customer(order.customer_id)
        + open_exposure(order.customer_id, exclude_order_id=order.id)
        + order.total
    )
    if exposure > limit:
        return CheckResult(
            "credit_exposure", False, f"exposure {exposure} exceeds credit limit {limit}"
        )
    return CheckResult("credit_exposure", True, f"exposure {exposure} within limit {limit}")


def _duplicate_po(order: SalesOrder, today: date) -> CheckResult:
    if not order.customer_po:
        return CheckResult("duplicate_po", True, "no customer PO given")
    others = db.session.execute(
        select(SalesOrder.number).where(
            SalesOrder.customer_id == order.customer_id,
            SalesOrder.customer_po == order.customer_po,
            SalesOrder.id != order.id,
            SalesOrder.status.not_in(
                (OrderStatus.CANCELLED.value, OrderStatus.CLOSED.value, OrderStatus.QUOTE.value)
            ),
        )
    ).scalars()
    numbers = sorted(others)
    if numbers:
        return CheckResult(
            "duplicate_po", False, f"PO {order.customer_po} is also on {', '.join(numbers)}"
        )
    return CheckResult("duplicate_po", True, f"PO {order.customer_po} is unique")


def _products_active(order: SalesOrder, today: date) -> CheckResult:
    inactive = [line.product.sku for line in order.lines if not line.product.active]
    if not order.lines:
        return CheckResult("products_active", False, "the order has no lines")
    if inactive:
        return CheckResult("products_active", False, f"inactive: {', '.join(inactive)}")
    return CheckResult("products_active", True, "all products active")


def _pack_sizes(order: SalesOrder, today: date) -> CheckResult:
    bad = [
        f"line {line.line_no}: {line.quantity} is not a multiple of {line.product.pack_size}"
        for line in order.lines
        if line.quantity <= 0 or line.quantity % line.product.pack_size
    ]
    if bad:
        return CheckResult("pack_size", False, "; ".join(bad))
    return CheckResult("pack_size", True, "quantities are whole packs")


def _prices(order: SalesOrder, today: date) -> CheckResult:
    bad = []
    expected_prices = pricing.prices_for(
        order.customer, [(line.product, line.quantity) for line in order.lines]
    )
    for line, expected in zip(order.lines, expected_prices, strict=True):
        if line.unit_price != expected and not line.price_override_by:
            bad.append(f"line {line.line_no}: {line.unit_price} ≠ price list {expected}")
    if bad:
        return CheckResult("price", False, "; ".join(bad))
    return CheckResult("price", True, "prices match the price list or approved overrides")


def _requested_date(order: SalesOrder, today: date) -> CheckResult:
    if order.requested_date is None:
        return CheckResult("requested_date", False, "no requested date")
    lead = max((line.product.lead_time_days for line in order.lines), default=0)
    earliest = today + timedelta(days=lead)
    if order.requested_date < earliest:
        return CheckResult(
            "requested_date",
            False,
            f"requested {order.requested_date} is before today + lead time ({earliest})",
        )
    return CheckResult("requested_date", True, f"on or after {earliest}")


def _ship_to(order: SalesOrder, today: date) -> CheckResult:
    if order.ship_to is None:
        return CheckResult("ship_to", False, "no ship-to address")
    if not order.ship_to.is_complete:
        return CheckResult("ship_to", False, "ship-to address is incomplete")
    return CheckResult("ship_to", True, "complete")


def _terms(order: SalesOrder, today: date) -> CheckResult:
    if order.payment_term_id is None:
        return CheckResult("terms", False, "no payment terms")
    return CheckResult("terms", True, order.payment_term.name)


CHECKS: tuple[Callable[[SalesOrder, date], CheckResult], ...] = (
    _customer_active,
    _credit_exposure,
    _duplicate_po,
    _products_active,
    _pack_sizes,
    _prices,
    _requested_date,
    _ship_to,
    _terms,
)
CHECK_NAMES = (
    "customer_active",
    "credit_exposure",
    "duplicate_po",
    "products_active",
    "pack_size",
    "price",
    "requested_date",
    "ship_to",
    "terms",
)


def run_checks(order: SalesOrder, today: date | None = None) -> list[CheckResult]:
    """Evaluate every check (no writes)."""
    today = today or utcnow().date()
    return [check(order, today) for check in CHECKS]


def _store_checks(order: SalesOrder, results: list[CheckResult]) -> None:
    existing = {
        check.name: check
        for check in db.session.execute(select(OrderCheck).where(OrderCheck.order_id == order.id))
        .scalars()
        .all()
    }
    now = utcnow()
    for result in results:
        row = existing.get(result.name) or OrderCheck(order_id=order.id, name=result.name)
        row.passed, row.detail, row.checked_at = result.passed, result.detail[:400], now
        db.session.add(row)


def confirm(order: SalesOrder, actor: Actor, today: date | None = None) -> SalesOrder:
    """Validate and confirm a draft (or held) order; failed checks put it on hold instead."""
    orders.orders._require(actor, "can_write")
    if order.status not in (OrderStatus.DRAFT.value, OrderStatus.ON_HOLD.value):
        raise ConflictError(f"order {order.number} is {order.status}; only drafts are confirmed")
    today = today or utcnow().date()
    with unit_of_work():
        results = run_checks(order, today)
        _store_checks(order, results)
        failed = [r for r in results if not r.passed]
        if failed:
            reasons = "; ".join(f"{r.name}: {r.detail}" for r in failed)
            if order.status != OrderStatus.ON_HOLD.value:
                orders.transition(order, OrderStatus.ON_HOLD.value, actor, reasons)
            else:
                order.hold_reasons = reasons
            return order
        _promise(order, today)
        orders.transition(order, OrderStatus.CONFIRMED.value, actor)
        notifications.notify(order, "confirmed", actor)
    return order


def _promise(order: SalesOrder, today: date) -> None:
    if order.promised_date is None:
        lead = max((line.product.lead_time_days for line in order.lines), default=0)
        order.promised_date = max(order.requested_date or today, today + timedelta(days=lead))


def release_hold(order: SalesOrder, actor: Actor, reason: str) -> SalesOrder:
    """A Supervisor confirms a held order despite its failed checks, saying why."""
    if not actor.can("can_release", orders.ORDER_VIEW):
        raise PermissionDenied(f"{actor.name} may not release order holds")
    if order.status != OrderStatus.ON_HOLD.value:
        raise ConflictError(f"order {order.number} is {order.status}, not on hold")
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["say why the hold is released"]})
    with unit_of_work():
        held_for = order.hold_reasons
        _promise(order, utcnow().date())
        orders.transition(order, OrderStatus.CONFIRMED.value, actor, f"hold released: {reason}")
        audit.record(
            actor,
            "sales_order",
            order.id,
            "release_hold",
            detail={"reason": reason.strip(), "held_for": held_for},
        )
        notifications.notify(order, "confirmed", actor)
    return order


def approve_price_override(line: OrderLine, actor: Actor, reason: str) -> OrderLine:
    """A Supervisor accepts a line's price that differs from the price list."""
    if not actor.can("can_override_price", orders.ORDER_VIEW):
        raise PermissionDenied(f"{actor.name} may not approve price overrides")
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["say why the price is accepted"]})
    if line.order.status not in orders.EDITABLE_STATUSES:
        raise ConflictError(f"order {line.order.number} is {line.order.status}")
    with unit_of_work():
        line.price_override_by = actor.name
        line.price_override_reason = reason.strip()
        db.session.flush()
        audit.record(
            actor,
            "order_line",
            line.id,
            "price_override",
            after={"unit_price": line.unit_price, "approved_by": actor.name},
            detail={"reason": reason.strip()},
        )
    return line


def convert_quote(order: SalesOrder, actor: Actor) -> SalesOrder:
    """Turn an accepted quote into a draft order (checks run when it is confirmed)."""
    if order.status != OrderStatus.QUOTE.value:
        raise ConflictError(f"order {order.number} is {order.status}, not a quote")
    return orders.transition(order, OrderStatus.DRAFT.value, actor, "quote accepted")
