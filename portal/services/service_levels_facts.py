"""The facts behind each service-level metric, as SQL (one Core ``SELECT`` per metric).

Every fact query has the same columns, so one aggregation groups any of them by period or
dimension (``service_levels.compute``): ``day`` (the date the fact belongs to), ``order_id``,
``customer_id``, ``product_id``, ``warehouse_id``, ``carrier`` (null where the metric does not
record that dimension), ``num`` and ``den`` (a rate is ``sum(num) / sum(den)``; a count is
``sum(num)``), ``value`` (days, for the duration metrics) and ``amount`` (money). The
definitions are in ``docs/service-levels.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
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

COLUMNS = ("day", "order_id", "customer_id", "product_id", "warehouse_id", "carrier")
# Orders that are not (yet) commitments to a customer: never measured.
NOT_ORDERS = (OrderStatus.QUOTE.value, OrderStatus.DRAFT.value, OrderStatus.CANCELLED.value)
DELIVERED = (OrderStatus.DELIVERED.value, OrderStatus.INVOICED.value, OrderStatus.CLOSED.value)
ZERO = literal(0)


def due_date() -> ColumnElement[Any]:
    """When an order is due: the promised date, else the requested date."""
    return func.coalesce(SalesOrder.promised_date, SalesOrder.requested_date)


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


def _delivered_by_due() -> ColumnElement[int]:
    """Units of the current order line delivered on or before the order's due date."""
    return (
        select(func.coalesce(func.sum(ShipmentLine.quantity), 0))
        .join(Shipment, Shipment.id == ShipmentLine.shipment_id)
        .where(
            ShipmentLine.order_line_id == OrderLine.id,
            Shipment.delivered_date.is_not(None),
            Shipment.delivered_date <= due_date(),
        )
        .scalar_subquery()
    )


def _measured_lines(as_of: date) -> Select:
    """Open lines of real orders whose due date has come (by ``as_of``)."""
    return (
        select(OrderLine)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(
            SalesOrder.status.not_in(NOT_ORDERS),
            due_date().is_not(None),
            due_date() <= as_of,
            open_quantity() > 0,
        )
    )


def otif_line(as_of: date) -> Select:
    """Per line: delivered in full (every open unit) on or before the due date."""
    on_time_in_full = case((_delivered_by_due() >= open_quantity(), 1), else_=0)
    return _measured_lines(as_of).with_only_columns(
        *fact(
            due_date(),
            SalesOrder.id,
            SalesOrder.customer_id,
            product_id=OrderLine.product_id,
            num=on_time_in_full,
            den=literal(1),
        )
    )


def _order_otif(as_of: date) -> Any:
    """Per order (due by ``as_of``): 1 when every open line is on time in full."""
    lines = otif_line(as_of).subquery()
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


def otif_order(as_of: date) -> Select:
    """Per order: every open line delivered in full on or before the due date."""
    orders = _order_otif(as_of)
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


def perfect_order(as_of: date) -> Select:
    """Per order: on time in full, and no return, no dispute, no approved credit."""
    orders = _order_otif(as_of)
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


def on_time_shipment(as_of: date) -> Select:
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
        .where(arrival.is_not(None), due_date().is_not(None), Shipment.ship_date <= as_of)
    )


def _first_backorder_quantity() -> ColumnElement[int]:
    return (
        select(Backorder.quantity)
        .where(Backorder.order_line_id == OrderLine.id)
        .order_by(Backorder.id)
        .limit(1)
        .scalar_subquery()
    )


def _allocated_lines(as_of: date) -> Select:
    """Open lines of orders (placed by ``as_of``) that went through allocation."""
    backordered = exists().where(Backorder.order_line_id == OrderLine.id)
    reached = SalesOrder.status.not_in(
        (*NOT_ORDERS, OrderStatus.ON_HOLD.value, OrderStatus.CONFIRMED.value)
    )
    return (
        select(OrderLine)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(
            SalesOrder.status != OrderStatus.CANCELLED.value,
            SalesOrder.order_date <= as_of,
            open_quantity() > 0,
            or_(reached, backordered),
        )
    )


def line_fill(as_of: date) -> Select:
    """Per line (by order date): allocated in full at its first allocation (no backorder)."""
    short = exists().where(Backorder.order_line_id == OrderLine.id)
    return _allocated_lines(as_of).with_only_columns(
        *fact(
            SalesOrder.order_date,
            SalesOrder.id,
            SalesOrder.customer_id,
            product_id=OrderLine.product_id,
            num=case((short, 0), else_=1),
            den=literal(1),
        )
    )


def unit_fill(as_of: date) -> Select:
    """Per line: units allocated at the first allocation out of the units ordered."""
    short = func.coalesce(_first_backorder_quantity(), 0)
    filled = case((short >= open_quantity(), 0), else_=open_quantity() - short)
    return _allocated_lines(as_of).with_only_columns(
        *fact(
            SalesOrder.order_date,
            SalesOrder.id,
            SalesOrder.customer_id,
            product_id=OrderLine.product_id,
            num=filled,
            den=open_quantity(),
        )
    )


def backorder_rate(as_of: date) -> Select:
    """Per order (by order date): 1 when any of its lines was backordered."""
    lines = line_fill(as_of).subquery()
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


def backorder_age(as_of: date) -> Select:
    """Per open backorder (by order date): days from the order date to ``as_of``."""
    return (
        select(
            *fact(
                SalesOrder.order_date,
                SalesOrder.id,
                SalesOrder.customer_id,
                product_id=OrderLine.product_id,
                value=days_between(literal(as_of), SalesOrder.order_date),
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
            SalesOrder.order_date <= as_of,
        )
    )


def _days_from_order_date(day: Any, table: Any, joined: Any, as_of: date, *where: Any) -> Select:
    """Per order: days from its order date to ``day`` (an aggregate over ``table``)."""
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
        .join(table, joined)
        .where(*where)
        .group_by(SalesOrder.id, SalesOrder.customer_id, SalesOrder.order_date)
        .having(day <= as_of)
    )


def cycle_time(as_of: date) -> Select:
    """Per delivered order (by the day its last shipment arrived): days since the order date."""
    return _days_from_order_date(
        func.max(Shipment.delivered_date),
        Shipment,
        Shipment.order_id == SalesOrder.id,
        as_of,
        SalesOrder.status.in_(DELIVERED),
    )


def order_to_invoice(as_of: date) -> Select:
    """Per invoiced order (by its first invoice's issue date): days since the order date."""
    return _days_from_order_date(
        func.min(Invoice.issue_date),
        Invoice,
        Invoice.order_id == SalesOrder.id,
        as_of,
        Invoice.issue_date.is_not(None),
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


def quote_conversion(as_of: date) -> Select:
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
        SalesOrder.order_date <= as_of,
        or_(SalesOrder.status == OrderStatus.QUOTE.value, _was_quote(False)),
    )


def return_rate(as_of: date) -> Select:
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
        .join(ReturnAuthorization, ReturnAuthorization.id == ReturnLine.rma_id)
        .join(OrderLine, OrderLine.id == ReturnLine.order_line_id)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(ReturnAuthorization.status != ReturnStatus.REJECTED.value)
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
        .join(Shipment, Shipment.id == ShipmentLine.shipment_id)
        .join(OrderLine, OrderLine.id == ShipmentLine.order_line_id)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(Shipment.delivered_date.is_not(None))
    )
    both = union_all(returned, delivered).subquery()
    return select(*both.c).where(both.c.day <= as_of)


def credits(as_of: date) -> Select:
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
        .where(utc_date(CreditMemo.decided_at) <= as_of)
    )


def _dispute_fact(day: Any, **columns: Any) -> Select:
    return (
        select(*fact(day, SalesOrder.id, SalesOrder.customer_id, **columns))
        .join(Invoice, Invoice.id == Dispute.invoice_id)
        .join(SalesOrder, SalesOrder.id == Invoice.order_id)
    )


def disputes_opened(as_of: date) -> Select:
    """Disputes opened (by opening day): count and disputed amount."""
    opened = utc_date(Dispute.opened_at)
    return _dispute_fact(opened, num=literal(1), amount=Dispute.amount).where(opened <= as_of)


def dispute_resolution(as_of: date) -> Select:
    """Closed disputes (by closing day): days from opening to closing."""
    closed = utc_date(Dispute.closed_at)
    return _dispute_fact(
        closed,
        value=days_between(closed, utc_date(Dispute.opened_at)),
        num=literal(1),
        den=literal(1),
    ).where(Dispute.closed_at.is_not(None), closed <= as_of)


def disputes_overdue(as_of: date) -> Select:
    """Disputes due (by due date): overdue when not closed by the due date."""
    closed = utc_date(Dispute.closed_at)
    late = or_(Dispute.closed_at.is_(None), closed > Dispute.due_date)
    return _dispute_fact(
        Dispute.due_date,
        num=case((late, 1), else_=0),
        den=literal(1),
    ).where(Dispute.due_date < as_of)


FACTS: dict[str, Callable[[date], Select]] = {
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
