"""The detail sheets of the weekly order-health workbook: one Core query per sheet.

Each sheet is a :class:`Sheet` — its columns (header, type, width) and its rows as tuples —
read with one query (joins and aggregates in SQL, no query per order). The late orders are the
orders behind the week's missed OTIF; returns, credits and disputes are those of the week;
open backorders and at-risk orders are as of the day the report is made.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select

from portal.extensions import db
from portal.models import (
    CREDIT_REASONS,
    DELAY_REASONS,
    ROOT_CAUSES,
    Backorder,
    BackorderStatus,
    CreditMemo,
    CreditMemoStatus,
    Customer,
    Dispute,
    DisputeStatus,
    ImprovementAction,
    ImprovementStatus,
    Invoice,
    OrderLine,
    OrderStatus,
    Product,
    ReturnAuthorization,
    ReturnLine,
    ReturnStatus,
    SalesOrder,
    Shipment,
    ShipmentLine,
)
from portal.services import service_levels as sl
from portal.services.service_levels_facts import (
    NOT_ORDERS,
    Window,
    due_date,
    due_within,
    open_quantity,
)
from portal.services.service_levels_sql import days_between, narrow_plans, utc_date

TEXT, INT, DATE, MONEY, NUMBER = "text", "int", "date", "money", "number"
ROW_LIMIT = 50_000  # rows per detail sheet; a sheet cut there says so (``Sheet.cut``)
AT_RISK_DAYS = 2
OPEN_ORDER = (
    OrderStatus.CONFIRMED.value,
    OrderStatus.PARTIALLY_ALLOCATED.value,
    OrderStatus.ALLOCATED.value,
    OrderStatus.PARTIALLY_SHIPPED.value,
    OrderStatus.ON_HOLD.value,
)


@dataclass(frozen=True)
class Column:
    """A sheet column: its header, cell type, width and the labels of the codes it holds."""

    header: str
    kind: str = TEXT
    width: int = 14
    labels: Mapping[str, str] | None = None

    def shown(self, value: Any) -> Any:
        """``value`` as the sheet shows it: a code by its label."""
        if self.labels is not None and isinstance(value, str):
            return self.labels.get(value, value.replace("_", " "))
        return value


def _statuses(*kinds: type[enum.StrEnum]) -> dict[str, str]:
    return {status.value: status.value.replace("_", " ") for kind in kinds for status in kind}


STATUS_LABELS = _statuses(
    OrderStatus, ReturnStatus, DisputeStatus, ImprovementStatus, BackorderStatus
)
METRIC_LABELS = {key: metric.label for key, metric in sl.METRICS.items()}


ORDER = Column("Order")
CUSTOMER = Column("Customer", width=28)
ORDER_DATE = Column("Order date", DATE, 12)
DUE_DATE = Column("Due date", DATE, 12)
# an order's columns on the late and the at-risk orders sheets
ORDER_COLUMNS = [
    ORDER,
    CUSTOMER,
    ORDER_DATE,
    DUE_DATE,
    Column("Status", width=18, labels=STATUS_LABELS),
]


@dataclass
class Sheet:
    """A detail sheet: ``cut`` when more rows matched than the ``ROW_LIMIT`` it holds."""

    title: str
    columns: list[Column]
    rows: list[tuple[Any, ...]]
    cut: bool = False


def _sheet(title: str, columns: list[Column], query: Any) -> Sheet:
    """The sheet of ``query``'s first ``ROW_LIMIT`` rows, ``cut`` when there were more."""
    rows = [tuple(row) for row in db.session.execute(query.limit(ROW_LIMIT + 1))]
    return Sheet(title, columns, rows[:ROW_LIMIT], cut=len(rows) > ROW_LIMIT)


def _sum_by(key: Any, units: Any, within: Any) -> Any:
    """``units`` summed per ``key`` for the keys in ``within`` (a subquery of them)."""
    return (
        select(key, func.sum(units).label("units")).where(key.in_(within)).group_by(key).subquery()
    )


def late_orders(week: sl.Period, as_of: date) -> Sheet:
    """Orders due in the week that were not delivered in full by their due date."""
    columns = [
        *ORDER_COLUMNS,
        Column("Units ordered", INT, 10),
        Column("Units delivered", INT, 10),
        Column("Last delivery", DATE, 12),
        Column("Delay reason", width=18, labels=DELAY_REASONS),
    ]
    with narrow_plans(db.session):
        return _sheet("Late orders", columns, _late_query(week, as_of))


def _late_query(week: sl.Period, as_of: date) -> Any:
    """The late-orders sheet in one set-based query: the orders due in the week (by the due
    date indexes), their lines, the lines' shipment lines and shipments (joined, aggregated
    per line, then per order; no per-line subquery). An order missed OTIF when one of its open
    lines had fewer units delivered by the due date than it asks for (as
    ``service_levels_facts.otif_order``); its last delivery and delay reason are those of
    the shipments of its lines."""
    due = due_date()
    order = [SalesOrder.id, SalesOrder.number, Customer.name, SalesOrder.order_date]
    order += [due.label("due"), SalesOrder.status]
    by_due = case((Shipment.delivered_date <= due, ShipmentLine.quantity), else_=0)
    lines = (
        select(
            *order,
            func.min(open_quantity()).label("open"),
            func.min(OrderLine.qty_delivered).label("delivered"),
            func.coalesce(func.sum(by_due), 0).label("by_due"),
            func.max(Shipment.delivered_date).label("last"),
            func.max(Shipment.delay_reason).label("reason"),
        )
        .join(Customer, Customer.id == SalesOrder.customer_id)
        .join(OrderLine, OrderLine.order_id == SalesOrder.id)
        .outerjoin(ShipmentLine, ShipmentLine.order_line_id == OrderLine.id)
        .outerjoin(Shipment, Shipment.id == ShipmentLine.shipment_id)
        .where(
            SalesOrder.status.not_in(NOT_ORDERS), due_within(Window(week.start, week.end, as_of))
        )
        .group_by(*order, OrderLine.id)
        .subquery()
    )
    c = lines.c
    short = (c.open > 0) & (c.by_due < c.open)
    keys = [c.id, c.number, c.name, c.order_date, c.due, c.status]
    return (
        select(
            c.number,
            c.name,
            c.order_date,
            c.due,
            c.status,
            func.sum(c.open),
            func.sum(c.delivered),
            func.max(c.last),
            func.max(c.reason),
        )
        .group_by(*keys)
        .having(func.max(case((short, 1), else_=0)) == 1)
        .order_by(c.due, c.number)
    )


def open_backorders(as_of: date) -> Sheet:
    """Every open backorder with its age in days since the order date."""
    query = (
        select(
            SalesOrder.number,
            OrderLine.line_no,
            Customer.name,
            Product.sku,
            Product.name,
            Backorder.quantity,
            SalesOrder.order_date,
            Backorder.expected_date,
            days_between(literal(as_of), SalesOrder.order_date),
        )
        .select_from(Backorder)
        .join(OrderLine, OrderLine.id == Backorder.order_line_id)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .join(Customer, Customer.id == SalesOrder.customer_id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(Backorder.status == BackorderStatus.OPEN.value)
        .order_by(SalesOrder.order_date, SalesOrder.number, OrderLine.line_no)
    )
    columns = [
        ORDER,
        Column("Line", INT, 6),
        CUSTOMER,
        Column("SKU"),
        Column("Product", width=28),
        Column("Quantity", INT, 10),
        ORDER_DATE,
        Column("Expected", DATE, 12),
        Column("Age (days)", INT, 10),
    ]
    with narrow_plans(db.session):  # by index from the open backorders (not every line)
        return _sheet("Open backorders", columns, query)


def at_risk_orders(as_of: date) -> Sheet:
    """Open orders due within two days of ``as_of`` (or overdue) and not yet delivered."""
    due = due_date()
    query = (
        select(
            SalesOrder.number,
            Customer.name,
            SalesOrder.order_date,
            due,
            SalesOrder.status,
            case((due < as_of, "Overdue"), else_="Due soon"),
        )
        .join(Customer, Customer.id == SalesOrder.customer_id)
        .where(SalesOrder.status.in_(OPEN_ORDER), due <= as_of + timedelta(days=AT_RISK_DAYS))
        .order_by(due, SalesOrder.number)
    )
    columns = [
        *ORDER_COLUMNS,
        Column("Risk", width=12),
    ]
    return _sheet("At-risk orders", columns, query)


def week_returns(week: sl.Period) -> Sheet:
    """RMAs requested in the week, with their units."""
    day = utc_date(ReturnAuthorization.created_at)
    window = Window(week.start, week.end, week.end)
    rmas = select(ReturnAuthorization.id).where(*window.moments(ReturnAuthorization.created_at))
    units = _sum_by(ReturnLine.rma_id, ReturnLine.quantity, rmas)
    query = (
        select(
            ReturnAuthorization.number,
            SalesOrder.number,
            Customer.name,
            day,
            ReturnAuthorization.status,
            ReturnAuthorization.reason,
            units.c.units,
        )
        .join(SalesOrder, SalesOrder.id == ReturnAuthorization.order_id)
        .join(Customer, Customer.id == SalesOrder.customer_id)
        .join(units, units.c.rma_id == ReturnAuthorization.id)
        .order_by(ReturnAuthorization.number)
    )
    columns = [
        Column("RMA"),
        ORDER,
        CUSTOMER,
        Column("Requested", DATE, 12),
        Column("Status", width=12, labels=STATUS_LABELS),
        Column("Reason", width=32),
        Column("Units", INT, 8),
    ]
    return _sheet("Returns", columns, query)


def week_credits(week: sl.Period) -> Sheet:
    """Credit memos approved in the week."""
    day = utc_date(CreditMemo.decided_at)
    query = (
        select(
            CreditMemo.number,
            Invoice.number,
            SalesOrder.number,
            Customer.name,
            CreditMemo.reason_code,
            CreditMemo.amount,
            day,
        )
        .join(Invoice, Invoice.id == CreditMemo.invoice_id)
        .join(SalesOrder, SalesOrder.id == Invoice.order_id)
        .join(Customer, Customer.id == SalesOrder.customer_id)
        .where(CreditMemo.status == CreditMemoStatus.APPROVED.value)
        .where(*Window(week.start, week.end, week.end).moments(CreditMemo.decided_at))
        .order_by(CreditMemo.number)
    )
    columns = [
        Column("Credit memo"),
        Column("Invoice"),
        ORDER,
        CUSTOMER,
        Column("Reason", width=20, labels=CREDIT_REASONS),
        Column("Amount (USD)", MONEY, 14),
        Column("Approved", DATE, 12),
    ]
    return _sheet("Credits", columns, query)


def week_disputes(week: sl.Period, as_of: date) -> Sheet:
    """Disputes opened in the week, and any still open past their due date."""
    opened = utc_date(Dispute.opened_at)
    still_open = Dispute.status.in_((DisputeStatus.OPEN.value, DisputeStatus.INVESTIGATING.value))
    overdue = still_open & (Dispute.due_date < as_of)
    query = (
        select(
            Dispute.number,
            Invoice.number,
            Customer.name,
            Dispute.dispute_type,
            Dispute.amount,
            Dispute.status,
            opened,
            Dispute.due_date,
            Dispute.root_cause,
            case((overdue, "yes"), else_="no"),
        )
        .join(Invoice, Invoice.id == Dispute.invoice_id)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(((opened >= week.start) & (opened < week.end)) | overdue)
        .order_by(Dispute.number)
    )
    columns = [
        Column("Dispute"),
        Column("Invoice"),
        CUSTOMER,
        Column("Type", width=16, labels={}),
        Column("Amount (USD)", MONEY, 14),
        Column("Status", width=14, labels=STATUS_LABELS),
        Column("Opened", DATE, 12),
        Column("Due", DATE, 12),
        Column("Root cause", width=18, labels=ROOT_CAUSES),
        Column("Overdue", width=9),
    ]
    with narrow_plans(db.session):  # their invoices by key, not a scan of every invoice
        return _sheet("Disputes", columns, query)


def improvement_log() -> Sheet:
    """Every improvement action, the newest first."""
    query = select(
        ImprovementAction.id,
        ImprovementAction.problem,
        ImprovementAction.root_cause,
        ImprovementAction.action,
        ImprovementAction.owner,
        ImprovementAction.due_date,
        ImprovementAction.status,
        ImprovementAction.metric,
        ImprovementAction.value_before,
        ImprovementAction.week_before,
        ImprovementAction.value_after,
        ImprovementAction.week_after,
    ).order_by(ImprovementAction.id.desc())
    columns = [
        Column("Id", INT, 6),
        Column("Problem", width=32),
        Column("Root cause", width=28),
        Column("Action", width=36),
        Column("Owner", width=14),
        Column("Due", DATE, 12),
        Column("Status", width=12, labels=STATUS_LABELS),
        Column("Metric", width=18, labels=METRIC_LABELS),
        Column("Before", NUMBER, 10),
        Column("Week before", width=10),
        Column("After", NUMBER, 10),
        Column("Week after", width=10),
    ]
    return _sheet("Improvement log", columns, query)


def detail_sheets(week: sl.Period, as_of: date) -> list[Sheet]:
    """The workbook's detail sheets, in order."""
    return [
        late_orders(week, as_of),
        open_backorders(as_of),
        at_risk_orders(as_of),
        week_returns(week),
        week_credits(week),
        week_disputes(week, as_of),
        improvement_log(),
    ]
