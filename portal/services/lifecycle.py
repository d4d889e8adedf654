"""Order validation and confirmation: the named checklist, holds, overrides, quotes.

``confirm`` runs every check of DESIGN.md section 3, stores each result on the order and
either confirms it (setting the promised date) or puts it on hold with the failed checks as
reasons. Supervisors release holds and approve price overrides, with who and why recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, Select, func, select, tuple_
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.models import (
    Customer,
    Notification,
    OrderCheck,
    OrderLine,
    OrderStatus,
    SalesOrder,
    utcnow,
)
from portal.services import audit, invoices, money, notifications, orders, pricing, states
from portal.services.base import (
    Actor,
    ConflictError,
    PermissionDenied,
    ValidationFailed,
    assign_ids,
    unit_of_work,
    upsert,
)
from portal.services.order_totals import lines_total

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


@dataclass(frozen=True)
class OrderFacts:
    """What the checks need beyond the order itself."""

    today: date
    open_invoice_balance: Decimal
    open_order_value: Decimal
    duplicate_po_orders: tuple[str, ...]


def _open_exposure_query(customer_id: int | ColumnElement[int]) -> Select:
    """Value of a customer's confirmed orders not yet shipped (one value).

    Shipped units are invoiced, so they count through the open invoice balance instead.
    """
    open_units = OrderLine.quantity - OrderLine.qty_cancelled - OrderLine.qty_shipped
    return (
        select(func.coalesce(func.sum(open_units * OrderLine.unit_price), 0))
        .join(SalesOrder, OrderLine.order_id == SalesOrder.id)
        .where(
            SalesOrder.customer_id == customer_id,
            SalesOrder.status.in_(OPEN_EXPOSURE_STATUSES),
        )
    )


def open_order_value(customer_id: int) -> Decimal:
    """What a customer's confirmed orders not yet shipped are worth (one query)."""
    return Decimal(db.session.execute(_open_exposure_query(customer_id)).scalar_one())


def _open_value(order: SalesOrder) -> Decimal:
    """What a confirmed ``order`` adds to its customer's open order value."""
    open_units = (line.quantity - line.qty_cancelled - line.qty_shipped for line in order.lines)
    return sum(
        (units * line.unit_price for units, line in zip(open_units, order.lines, strict=True)),
        Decimal("0"),
    )


class CustomerFacts:
    """The open invoices, open orders and POs of a batch's customers, read with two queries.

    An order confirmed earlier in the batch adds to its customer's open order value, so a
    batch decides exactly as confirming its orders one at a time would.
    """

    def __init__(self, batch: Sequence[SalesOrder], today: date):
        self.today = today
        sums = db.session.execute(
            select(
                Customer,
                invoices.open_balance_query(Customer.id).scalar_subquery(),
                _open_exposure_query(Customer.id).scalar_subquery(),
            )
            .where(Customer.id.in_({order.customer_id for order in batch}))
            .options(selectinload(Customer.contacts))  # the confirmations' recipients
        ).all()
        self.customers = [row[0] for row in sums]  # held, so each loads once per batch
        self.balance = {row[0].id: money.money(Decimal(row[1])) for row in sums}
        self.open_value = {row[0].id: Decimal(row[2]) for row in sums}
        pairs = {(order.customer_id, order.customer_po) for order in batch if order.customer_po}
        self.same_po: dict[tuple[int, str], list[tuple[int, str]]] = {}
        if pairs:
            rows = db.session.execute(
                select(
                    SalesOrder.customer_id,
                    SalesOrder.customer_po,
                    SalesOrder.id,
                    SalesOrder.number,
                ).where(
                    tuple_(SalesOrder.customer_id, SalesOrder.customer_po).in_(sorted(pairs)),
                    SalesOrder.status.not_in(
                        (
                            OrderStatus.CANCELLED.value,
                            OrderStatus.CLOSED.value,
                            OrderStatus.QUOTE.value,
                        )
                    ),
                )
            )
            for customer_id, po, order_id, number in rows:
                self.same_po.setdefault((customer_id, po), []).append((order_id, number))

    def facts(self, order: SalesOrder) -> OrderFacts:
        others = self.same_po.get((order.customer_id, order.customer_po), [])
        return OrderFacts(
            today=self.today,
            open_invoice_balance=self.balance.get(order.customer_id, Decimal("0.00")),
            open_order_value=self.open_value.get(order.customer_id, Decimal("0")).quantize(
                Decimal("0.01")
            ),
            duplicate_po_orders=tuple(sorted(n for i, n in others if i != order.id)),
        )

    def confirmed(self, order: SalesOrder) -> None:
        """Count a just-confirmed order in its customer's open order value."""
        self.open_value[order.customer_id] = self.open_value.get(
            order.customer_id, Decimal("0")
        ) + _open_value(order)


def _customer_active(order: SalesOrder, facts: OrderFacts) -> CheckResult:
    customer = order.customer
    if not customer.active:
        return CheckResult("customer_active", False, f"customer {customer.code} is inactive")
    if customer.credit_hold:
        return CheckResult("customer_active", False, f"customer {customer.code} is on credit hold")
    return CheckResult("customer_active", True, "active, no credit hold")


def _credit_exposure(order: SalesOrder, facts: OrderFacts) -> CheckResult:
    limit = order.customer.credit_limit
    exposure = facts.open_invoice_balance + facts.open_order_value + lines_total(order.lines)
    shown, allowed = f"{order.currency} {exposure:,.2f}", f"{order.currency} {limit:,.2f}"
    if exposure > limit:
        return CheckResult(
            "credit_exposure", False, f"exposure {shown} exceeds credit limit {allowed}"
        )
    return CheckResult("credit_exposure", True, f"exposure {shown} within limit {allowed}")


def _duplicate_po(order: SalesOrder, facts: OrderFacts) -> CheckResult:
    if not order.customer_po:
        return CheckResult("duplicate_po", True, "no customer PO given")
    if facts.duplicate_po_orders:
        return CheckResult(
            "duplicate_po",
            False,
            f"PO {order.customer_po} is also on {', '.join(facts.duplicate_po_orders)}",
        )
    return CheckResult("duplicate_po", True, f"PO {order.customer_po} is unique")


def _products_active(order: SalesOrder, facts: OrderFacts) -> CheckResult:
    inactive = [line.product.sku for line in order.lines if not line.product.active]
    if not order.lines:
        return CheckResult("products_active", False, "the order has no lines")
    if inactive:
        return CheckResult("products_active", False, f"inactive: {', '.join(inactive)}")
    return CheckResult("products_active", True, "all products active")


def _pack_sizes(order: SalesOrder, facts: OrderFacts) -> CheckResult:
    bad = [
        f"line {line.line_no}: {line.quantity} is not a multiple of {line.product.pack_size}"
        for line in order.lines
        if line.quantity <= 0 or line.quantity % line.product.pack_size
    ]
    if bad:
        return CheckResult("pack_size", False, "; ".join(bad))
    return CheckResult("pack_size", True, "quantities are whole packs")


def _prices(order: SalesOrder, facts: OrderFacts) -> CheckResult:
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


def _requested_date(order: SalesOrder, facts: OrderFacts) -> CheckResult:
    if order.requested_date is None:
        return CheckResult("requested_date", False, "no requested date")
    lead = max((line.product.lead_time_days for line in order.lines), default=0)
    earliest = facts.today + timedelta(days=lead)
    if order.requested_date < earliest:
        return CheckResult(
            "requested_date",
            False,
            f"requested {order.requested_date} is before today + lead time ({earliest})",
        )
    return CheckResult("requested_date", True, f"on or after {earliest}")


def _ship_to(order: SalesOrder, facts: OrderFacts) -> CheckResult:
    if order.ship_to is None:
        return CheckResult("ship_to", False, "no ship-to address")
    if not order.ship_to.is_complete:
        return CheckResult("ship_to", False, "ship-to address is incomplete")
    return CheckResult("ship_to", True, "complete")


def _terms(order: SalesOrder, facts: OrderFacts) -> CheckResult:
    if order.payment_term_id is None:
        return CheckResult("terms", False, "no payment terms")
    return CheckResult("terms", True, order.payment_term.name)


CHECKS: tuple[Callable[[SalesOrder, OrderFacts], CheckResult], ...] = (
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


# Checks a Supervisor can't release an order past: nothing can ship without an address.
RELEASE_BLOCKERS = ("ship_to",)


def _store_checks(results: Sequence[tuple[SalesOrder, list[CheckResult]]]) -> None:
    """Replace the orders' stored check results: one upsert on (order, check name)."""
    table = OrderCheck.__table__
    insert_rows = upsert(table)
    now = utcnow()
    db.session.execute(
        insert_rows.on_conflict_do_update(
            index_elements=[table.c.order_id, table.c.name],
            set_={
                "passed": insert_rows.excluded.passed,
                "detail": insert_rows.excluded.detail,
                "checked_at": insert_rows.excluded.checked_at,
            },
        ),
        [
            {
                "order_id": order.id,
                "name": result.name,
                "passed": result.passed,
                "detail": result.detail[:400],
                "checked_at": now,
            }
            for order, order_results in results
            for result in order_results
        ],
    )


def confirm(order: SalesOrder, actor: Actor, today: date | None = None) -> SalesOrder:
    """Validate and confirm a draft (or held) order; failed checks put it on hold instead."""
    return confirm_many([order], actor, today)[0]


def confirm_many(
    batch: Sequence[SalesOrder], actor: Actor, today: date | None = None
) -> list[SalesOrder]:
    """Validate and confirm drafts (or held orders) in one transaction, in the order given.

    Each order passes every check and is confirmed (promised date set, confirmation
    queued), or goes on hold with the failed checks as reasons. The batch's facts are read
    with two queries and its check results and statuses written with one statement each.
    """
    orders.orders._require(actor, "can_write")
    for order in batch:
        if order.status not in states.ORDERS.sources("confirm"):
            raise ConflictError(
                f"order {order.number} is {order.status}; only drafts are confirmed"
            )
    today = today or utcnow().date()
    with unit_of_work():
        customers = CustomerFacts(batch, today)
        results = []
        queued: list[Notification] = []
        for order in batch:
            facts = customers.facts(order)
            order_results = [check(order, facts) for check in CHECKS]
            results.append((order, order_results))
            failed = [r for r in order_results if not r.passed]
            if failed:
                reasons = "; ".join(f"{r.name}: {r.detail}" for r in failed)
                if order.status != OrderStatus.ON_HOLD.value:
                    states.transition(order, OrderStatus.ON_HOLD.value, actor, reasons)
                else:
                    order.hold_reasons = reasons
                continue
            _promise(order, today)
            states.transition(order, OrderStatus.CONFIRMED.value, actor)
            if message := notifications.notify(order, "confirmed", actor):
                queued.append(message)
            customers.confirmed(order)
        assign_ids(db.session, queued)
        orders.save_statuses(batch)  # before the next statement would flush them one by one
        _store_checks(results)
    return list(batch)


def _promise(order: SalesOrder, today: date) -> None:
    if order.promised_date is None:
        lead = max((line.product.lead_time_days for line in order.lines), default=0)
        order.promised_date = max(order.requested_date or today, today + timedelta(days=lead))


def release_hold(order: SalesOrder, actor: Actor, reason: str) -> SalesOrder:
    """A Supervisor confirms a held order despite its failed checks, saying why.

    The checks run again first (and are stored): a failed :data:`RELEASE_BLOCKERS` check
    (no complete ship-to address) refuses the release until the order is fixed.
    """
    if not actor.can("can_release", orders.ORDER_VIEW):
        raise PermissionDenied(f"{actor.name} may not release order holds")
    if order.status not in states.ORDERS.sources("release"):
        raise ConflictError(f"order {order.number} is {order.status}, not on hold")
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["say why the hold is released"]})
    today = utcnow().date()
    results = [check(order, CustomerFacts([order], today).facts(order)) for check in CHECKS]
    blocking = [r for r in results if not r.passed and r.name in RELEASE_BLOCKERS]
    if blocking:
        raise ValidationFailed(
            {r.name: [f"{r.detail}: fix it before the hold is released"] for r in blocking},
            f"order {order.number} can't be released: " + "; ".join(r.detail for r in blocking),
        )
    with unit_of_work():
        _store_checks([(order, results)])
        held_for = order.hold_reasons
        _promise(order, today)
        states.transition(order, OrderStatus.CONFIRMED.value, actor, f"hold released: {reason}")
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
    if order.status not in states.ORDERS.sources("convert"):
        raise ConflictError(f"order {order.number} is {order.status}, not a quote")
    return states.transition(order, OrderStatus.DRAFT.value, actor, "quote accepted")
