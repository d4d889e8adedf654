"""The facts behind each service-level metric, as SQL (one Core ``SELECT`` per metric).

Every fact query has the same columns, so one aggregation groups any of them by period or
dimension (``service_levels.compute``): ``day`` (the date the fact belongs to), ``order_id``,
``customer_id``, ``product_id``, ``warehouse_id``, ``carrier`` (null where the metric does not
record that dimension), ``num`` and ``den`` (a rate is ``sum(num) / sum(den)``; a count is
``sum(num)``), ``value`` (days, for the duration metrics) and ``amount`` (money). Each
query is given the :class:`Window` it is asked about and filters on it inside, where the
indexes are, so the cost follows the period asked for, not the length of the history. The
definitions are in ``docs/service-levels.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    Numeric,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.sql import ColumnElement, Select

from portal.models import (
    AuditEvent,
    Backorder,
    CreditMemo,
    CreditMemoStatus,
    Dispute,
    Invoice,
    InvoiceStatus,
    OrderLine,
    OrderStatus,
    ReturnAuthorization,
    ReturnLine,
    ReturnStatus,
    SalesOrder,
    Shipment,
    ShipmentLine,
)
from portal.services.service_levels_sql import days_between, utc_date

# Orders that are not (yet) commitments to a customer: never measured.
NOT_ORDERS = (OrderStatus.QUOTE.value, OrderStatus.DRAFT.value, OrderStatus.CANCELLED.value)
DELIVERED = (OrderStatus.DELIVERED.value, OrderStatus.INVOICED.value, OrderStatus.CLOSED.value)
ZERO = literal(0)


@dataclass(frozen=True)
class Window:
    """The days a question is about, ``[start, end)``, and the day it is asked (``as_of``):
    facts dated after ``as_of`` do not exist yet."""

    start: date
    end: date
    as_of: date

    @property
    def last(self) -> date:
        """The last day a fact may have: the day before ``end``, or ``as_of``."""
        return min(self.end - timedelta(days=1), self.as_of)

    def days(self, column: Any) -> list[ColumnElement[bool]]:
        """``column`` (a date) within the window."""
        return [column >= self.start, column <= self.last]

    def moments(self, column: Any) -> list[ColumnElement[bool]]:
        """``column`` (a UTC timestamp) on a day within the window."""
        start = datetime.combine(self.start, time(), UTC)
        end = datetime.combine(self.last + timedelta(days=1), time(), UTC)
        return [column >= start, column < end]


def due_date() -> ColumnElement[Any]:
    """When an order is due: the promised date, else the requested date."""
    return func.coalesce(SalesOrder.promised_date, SalesOrder.requested_date)


def due_within(w: Window) -> ColumnElement[bool]:
    """The order is due within the window: ``due_date()`` between its days, written so
    that the indexes on the promised and the requested date serve it."""
    promised, requested = SalesOrder.promised_date, SalesOrder.requested_date
    return or_(
        and_(*w.days(promised)),
        and_(promised.is_(None), *w.days(requested)),
    )


def open_quantity() -> ColumnElement[int]:
    """What a line still asks for: its quantity less what was cancelled."""
    return OrderLine.quantity - OrderLine.qty_cancelled


def fact(
    day: Any,
    order_id: Any,
    customer_id: Any,
    *,
    product_id: Any = None,
    warehouse_id: Any = None,
    carrier: Any = None,
    num: Any = ZERO,
    den: Any = ZERO,
    value: Any = None,
    amount: Any = None,
) -> list[ColumnElement[Any]]:
    """The columns of one fact query, labelled and typed alike (so facts can be unioned)."""

    def typed(column: Any, type_: Any) -> ColumnElement[Any]:
        return cast(null(), type_) if column is None else column

    return [
        day.label("day"),
        order_id.label("order_id"),
        customer_id.label("customer_id"),
        typed(product_id, Integer).label("product_id"),
        typed(warehouse_id, Integer).label("warehouse_id"),
        typed(carrier, String).label("carrier"),
        num.label("num"),
        den.label("den"),
        typed(value, Integer).label("value"),
        typed(amount, Numeric(14, 2)).label("amount"),
    ]


def _delivered_by_due() -> ColumnElement[Any]:
    """Per order line (correlated, through the line's shipment lines): units delivered on
    or before its order's due date."""
    return (
        select(func.coalesce(func.sum(ShipmentLine.quantity), 0))
        .join(Shipment, Shipment.id == ShipmentLine.shipment_id)
        .where(ShipmentLine.order_line_id == OrderLine.id, Shipment.delivered_date <= due_date())
        .scalar_subquery()
    )


def otif_line(w: Window) -> Select:
    """Per open line of a real order due in the window: delivered in full by the due date."""
    on_time_in_full = case((_delivered_by_due() >= open_quantity(), 1), else_=0)
    return (
        select(
            *fact(
                due_date(),
                SalesOrder.id,
                SalesOrder.customer_id,
                product_id=OrderLine.product_id,
                num=on_time_in_full,
                den=literal(1),
            )
        )
        .select_from(OrderLine)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(SalesOrder.status.not_in(NOT_ORDERS), open_quantity() > 0, due_within(w))
    )


def _order_otif(w: Window) -> Any:
    """Per order due in the window: 1 when every open line is on time in full."""
    lines = otif_line(w).subquery()
    return (
        select(
            lines.c.order_id,
            func.min(lines.c.day).label("day"),
            func.min(lines.c.customer_id).label("customer_id"),
            func.min(lines.c.num).label("otif"),
        )
        .group_by(lines.c.order_id)
        .subquery()
    )


def otif_order(w: Window) -> Select:
    """Per order: every open line delivered in full on or before the due date."""
    orders = _order_otif(w)
    return select(
        *fact(
            orders.c.day, orders.c.order_id, orders.c.customer_id, num=orders.c.otif, den=literal(1)
        )
    )


def _has_return(order_id: Any) -> ColumnElement[bool]:
    return exists().where(
        ReturnAuthorization.order_id == order_id,
        ReturnAuthorization.status != ReturnStatus.REJECTED.value,
    )


def _has_dispute(order_id: Any) -> ColumnElement[bool]:
    return exists().where(Dispute.invoice_id == Invoice.id, Invoice.order_id == order_id)


def _has_credit(order_id: Any) -> ColumnElement[bool]:
    return exists().where(
        CreditMemo.invoice_id == Invoice.id,
        Invoice.order_id == order_id,
        CreditMemo.status == CreditMemoStatus.APPROVED.value,
    )


def perfect_order(w: Window) -> Select:
    """Per order: on time in full, and no return, no dispute, no approved credit."""
    orders = _order_otif(w)
    perfect = case(
        (
            and_(
                orders.c.otif == 1,
                ~_has_return(orders.c.order_id),
                ~_has_dispute(orders.c.order_id),
                ~_has_credit(orders.c.order_id),
            ),
            1,
        ),
        else_=0,
    )
    return select(
        *fact(orders.c.day, orders.c.order_id, orders.c.customer_id, num=perfect, den=literal(1))
    )


def on_time_shipment(w: Window) -> Select:
    """Per shipment (by ship date): it arrives (delivered, else ETA) by the order's due date."""
    arrival = func.coalesce(Shipment.delivered_date, Shipment.eta)
    return (
        select(
            *fact(
                Shipment.ship_date,
                SalesOrder.id,
                SalesOrder.customer_id,
                warehouse_id=Shipment.warehouse_id,
                carrier=Shipment.carrier,
                num=case((arrival <= due_date(), 1), else_=0),
                den=literal(1),
            )
        )
        .join(SalesOrder, SalesOrder.id == Shipment.order_id)
        .where(arrival.is_not(None), due_date().is_not(None), *w.days(Shipment.ship_date))
    )


def _first_short() -> ColumnElement[Any]:
    """Per order line (correlated, one index probe): the initial quantity of its first
    backorder — what its first allocation lacked — or null when it never had one."""
    return (
        select(Backorder.initial_quantity)
        .where(Backorder.order_line_id == OrderLine.id)
        .order_by(Backorder.id)
        .limit(1)
        .scalar_subquery()
    )


def _allocated_lines(w: Window, columns: Callable[[Any], list[Any]]) -> Select:
    """Open lines of orders placed in the window that went through allocation, with the
    ``columns`` made from the quantity of the line's first backorder (null when none)."""
    short = _first_short()
    reached = SalesOrder.status.not_in(
        (*NOT_ORDERS, OrderStatus.ON_HOLD.value, OrderStatus.CONFIRMED.value)
    )
    return (
        select(*columns(short))
        .select_from(OrderLine)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(
            SalesOrder.status != OrderStatus.CANCELLED.value,
            open_quantity() > 0,
            or_(reached, short.is_not(None)),
            *w.days(SalesOrder.order_date),
        )
    )


def _fill_fact(num: Any, den: Any) -> list[Any]:
    return fact(
        SalesOrder.order_date,
        SalesOrder.id,
        SalesOrder.customer_id,
        product_id=OrderLine.product_id,
        num=num,
        den=den,
    )


def line_fill(w: Window) -> Select:
    """Per line (by order date): allocated in full at its first allocation (no backorder)."""
    return _allocated_lines(
        w, lambda short: _fill_fact(case((short.is_(None), 1), else_=0), literal(1))
    )


def unit_fill(w: Window) -> Select:
    """Per line: units allocated at the first allocation out of the units ordered."""

    def columns(short: Any) -> list[Any]:
        lacking = func.coalesce(short, 0)
        filled = case((lacking >= open_quantity(), 0), else_=open_quantity() - lacking)
        return _fill_fact(filled, open_quantity())

    return _allocated_lines(w, columns)


def backorder_rate(w: Window) -> Select:
    """Per order (by order date): 1 when any of its lines was backordered."""
    lines = line_fill(w).subquery()
    return (
        select(
            *fact(
                func.min(lines.c.day),
                lines.c.order_id,
                func.min(lines.c.customer_id),
                num=1 - func.min(lines.c.num),
                den=literal(1),
            )
        )
    ).group_by(lines.c.order_id)


def backorder_age(w: Window) -> Select:
    """Per open backorder (by order date): days from the order date to ``as_of``."""
    return (
        select(
            *fact(
                SalesOrder.order_date,
                SalesOrder.id,
                SalesOrder.customer_id,
                product_id=OrderLine.product_id,
                value=days_between(literal(w.as_of), SalesOrder.order_date),
                num=Backorder.quantity,
                den=literal(1),
            )
        )
        .select_from(Backorder)
        .join(OrderLine, OrderLine.id == Backorder.order_line_id)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(
            Backorder.status == "open",
            SalesOrder.status != OrderStatus.CANCELLED.value,
            *w.days(SalesOrder.order_date),
        )
    )


def _days_from_order_date(w: Window, column: Any, pick: Any, order_id: Any, *where: Any) -> Select:
    """Per order whose ``pick(column)`` (the first or last of its dates) is in the window: the
    days from its order date to that day. Only orders with a date in the window are read."""
    day = pick(column)
    in_window = select(order_id).where(*w.days(column))
    return (
        select(
            *fact(
                day,
                SalesOrder.id,
                SalesOrder.customer_id,
                value=days_between(day, SalesOrder.order_date),
                num=literal(1),
                den=literal(1),
            )
        )
        .join(column.table, order_id == SalesOrder.id)
        .where(SalesOrder.id.in_(in_window), *where)
        .group_by(SalesOrder.id, SalesOrder.customer_id, SalesOrder.order_date)
        .having(and_(*w.days(day)))
    )


def cycle_time(w: Window) -> Select:
    """Per delivered order (by the day its last shipment arrived): days since the order date."""
    return _days_from_order_date(
        w, Shipment.delivered_date, func.max, Shipment.order_id, SalesOrder.status.in_(DELIVERED)
    )


def order_to_invoice(w: Window) -> Select:
    """Per invoiced order (by its first invoice's issue date): days since the order date."""
    return _days_from_order_date(
        w,
        Invoice.issue_date,
        func.min,
        Invoice.order_id,
        Invoice.status != InvoiceStatus.VOID.value,
    )


def _was_quote(converted_only: bool) -> ColumnElement[bool]:
    """An audit event of the order moving out of ``quote`` (to ``draft`` when converted)."""
    conditions = [
        AuditEvent.entity == "sales_order",
        AuditEvent.entity_id == cast(SalesOrder.id, String),
        AuditEvent.changes.like('%"before":{"status":"quote"}%'),
    ]
    if converted_only:
        conditions.append(AuditEvent.changes.like('%"after":{"status":"draft"}%'))
    return exists().where(*conditions)


def quote_conversion(w: Window) -> Select:
    """Per quote (by order date): 1 when it was converted into an order."""
    return select(
        *fact(
            SalesOrder.order_date,
            SalesOrder.id,
            SalesOrder.customer_id,
            num=case((_was_quote(True), 1), else_=0),
            den=literal(1),
        )
    ).where(
        *w.days(SalesOrder.order_date),
        or_(SalesOrder.status == OrderStatus.QUOTE.value, _was_quote(False)),
    )


def return_rate(w: Window) -> Select:
    """Units returned (RMAs not rejected, by request day) over units delivered (by day)."""
    returned = (
        select(
            *fact(
                utc_date(ReturnAuthorization.created_at),
                SalesOrder.id,
                SalesOrder.customer_id,
                product_id=OrderLine.product_id,
                warehouse_id=ReturnAuthorization.warehouse_id,
                num=ReturnLine.quantity,
            )
        )
        .select_from(ReturnLine)
        .join(ReturnAuthorization, ReturnAuthorization.id == ReturnLine.rma_id)
        .join(OrderLine, OrderLine.id == ReturnLine.order_line_id)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(
            ReturnAuthorization.status != ReturnStatus.REJECTED.value,
            *w.moments(ReturnAuthorization.created_at),
        )
    )
    delivered = (
        select(
            *fact(
                Shipment.delivered_date,
                SalesOrder.id,
                SalesOrder.customer_id,
                product_id=OrderLine.product_id,
                warehouse_id=Shipment.warehouse_id,
                carrier=Shipment.carrier,
                den=ShipmentLine.quantity,
            )
        )
        .select_from(ShipmentLine)
        .join(Shipment, Shipment.id == ShipmentLine.shipment_id)
        .join(OrderLine, OrderLine.id == ShipmentLine.order_line_id)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(*w.days(Shipment.delivered_date))
    )
    both = union_all(returned, delivered).subquery()
    return select(*both.c)


def credits(w: Window) -> Select:
    """Approved credit memos (by decision day): count and value."""
    return (
        select(
            *fact(
                utc_date(CreditMemo.decided_at),
                SalesOrder.id,
                SalesOrder.customer_id,
                num=literal(1),
                amount=CreditMemo.amount,
            )
        )
        .join(Invoice, Invoice.id == CreditMemo.invoice_id)
        .join(SalesOrder, SalesOrder.id == Invoice.order_id)
        .where(CreditMemo.status == CreditMemoStatus.APPROVED.value)
        .where(*w.moments(CreditMemo.decided_at))
    )


def _dispute_fact(day: Any, **columns: Any) -> Select:
    return (
        select(*fact(day, SalesOrder.id, SalesOrder.customer_id, **columns))
        .join(Invoice, Invoice.id == Dispute.invoice_id)
        .join(SalesOrder, SalesOrder.id == Invoice.order_id)
    )


def disputes_opened(w: Window) -> Select:
    """Disputes opened (by opening day): count and disputed amount."""
    return _dispute_fact(utc_date(Dispute.opened_at), num=literal(1), amount=Dispute.amount).where(
        *w.moments(Dispute.opened_at)
    )


def dispute_resolution(w: Window) -> Select:
    """Closed disputes (by closing day): days from opening to closing."""
    closed = utc_date(Dispute.closed_at)
    return _dispute_fact(
        closed,
        value=days_between(closed, utc_date(Dispute.opened_at)),
        num=literal(1),
        den=literal(1),
    ).where(*w.moments(Dispute.closed_at))


def disputes_overdue(w: Window) -> Select:
    """Disputes due (by due date, before ``as_of``): overdue when not closed by the due date."""
    closed = utc_date(Dispute.closed_at)
    late = or_(Dispute.closed_at.is_(None), closed > Dispute.due_date)
    return _dispute_fact(
        Dispute.due_date,
        num=case((late, 1), else_=0),
        den=literal(1),
    ).where(*w.days(Dispute.due_date), Dispute.due_date < w.as_of)


FACTS: dict[str, Callable[[Window], Select]] = {
    "otif_order": otif_order,
    "otif_line": otif_line,
    "on_time_shipment": on_time_shipment,
    "line_fill_rate": line_fill,
    "unit_fill_rate": unit_fill,
    "backorder_rate": backorder_rate,
    "backorder_age": backorder_age,
    "cycle_time": cycle_time,
    "quote_conversion": quote_conversion,
    "order_to_invoice": order_to_invoice,
    "return_rate": return_rate,
    "credits": credits,
    "disputes": disputes_opened,
    "dispute_resolution": dispute_resolution,
    "disputes_overdue": disputes_overdue,
    "perfect_order": perfect_order,
}
