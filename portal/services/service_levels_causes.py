"""The root-cause Pareto across late deliveries, backorders, returns, credits and disputes.

One ``UNION ALL`` of what each kind of problem records as its cause (a late shipment's delay
reason, a credit's reason code, a dispute's root cause, an RMA's reason; a backorder records
none and counts as a stock shortage), grouped and counted in SQL, largest first, with each
bar's share and the running total (``docs/service-levels.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, String, case, cast, func, literal, null, or_, select, union_all
from sqlalchemy.orm import joinedload
from sqlalchemy.sql import Select

from portal.extensions import db
from portal.models import (
    CREDIT_REASONS,
    DELAY_REASONS,
    ROOT_CAUSES,
    Backorder,
    CreditMemo,
    CreditMemoStatus,
    Dispute,
    Invoice,
    OrderLine,
    OrderStatus,
    ReturnAuthorization,
    ReturnStatus,
    SalesOrder,
    ServiceLevelDayCause,
    Shipment,
    utcnow,
)
from portal.services.service_levels import Period
from portal.services.service_levels_days import Reading, reading
from portal.services.service_levels_facts import Window, due_date
from portal.services.service_levels_sql import narrow_plans, utc_date

SOURCES = {
    "late_delivery": "Late delivery",
    "backorder": "Backorder",
    "return": "Return",
    "credit": "Credit",
    "dispute": "Dispute",
}
NOT_RECORDED = "not_recorded"
LAST_DAY = date(9999, 12, 31)  # kept late deliveries: whenever they shipped
LABELS = {
    "late_delivery": DELAY_REASONS,
    "backorder": DELAY_REASONS,
    "credit": CREDIT_REASONS,
    "dispute": ROOT_CAUSES,
}


@dataclass(frozen=True)
class Bar:
    """One bar of the Pareto: a cause of one kind of problem, how often, its share."""

    source: str
    cause: str
    count: int
    share: Decimal
    cumulative: Decimal

    @property
    def label(self) -> str:
        return cause_label(self.source, self.cause)


def cause_label(source: str, cause: str) -> str:
    """A bar's name in words: "Late delivery: Carrier delay", "Return: Damaged in transit"."""
    if cause == NOT_RECORDED:
        name = "Cause not recorded"
    else:
        name = LABELS.get(source, {}).get(cause, cause)  # else the text typed (an RMA reason)
    kind = SOURCES.get(source, source.replace("_", " ").capitalize())
    return f"{kind}: {name[:1].upper()}{name[1:]}"


def _cause(source: str, cause: Any, day: Any, order_id: Any, since: Any = None) -> list[Any]:
    return [
        literal(source, String).label("source"),
        cast(func.coalesce(cause, NOT_RECORDED), String).label("cause"),
        day.label("day"),
        order_id.label("order_id"),
        (cast(null(), Date) if since is None else since).label("since"),
    ]


def cause_facts(period: Period, as_of: date | None = None, shipped_by: date | None = None) -> Any:
    """Every problem recorded in ``period`` with its cause, day and order, as one subquery.

    A late delivery counts once it has shipped: by ``shipped_by`` (default the period's last
    day, or ``as_of``). ``since`` is the ship date of one that arrived before it shipped.
    """
    w = Window(period.start, period.end, as_of or utcnow().date())
    arrival = func.coalesce(Shipment.delivered_date, Shipment.eta)
    shipped_late = case((Shipment.ship_date > arrival, Shipment.ship_date))
    late = (
        select(
            *_cause("late_delivery", Shipment.delay_reason, arrival, SalesOrder.id, shipped_late)
        )
        .join(SalesOrder, SalesOrder.id == Shipment.order_id)
        .where(
            arrival > due_date(),
            Shipment.ship_date <= (shipped_by or w.last),
            *w.days(arrival),
        )
    )
    short = (
        select(
            *_cause("backorder", literal("stock_shortage"), SalesOrder.order_date, SalesOrder.id)
        )
        .select_from(Backorder)
        .join(OrderLine, OrderLine.id == Backorder.order_line_id)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(SalesOrder.status != OrderStatus.CANCELLED.value, *w.days(SalesOrder.order_date))
    )
    returned = select(
        *_cause(
            "return",
            ReturnAuthorization.reason,
            utc_date(ReturnAuthorization.created_at),
            ReturnAuthorization.order_id,
        )
    ).where(
        ReturnAuthorization.status != ReturnStatus.REJECTED.value,
        *w.moments(ReturnAuthorization.created_at),
    )
    credited = (
        select(
            *_cause(
                "credit", CreditMemo.reason_code, utc_date(CreditMemo.decided_at), Invoice.order_id
            )
        )
        .join(Invoice, Invoice.id == CreditMemo.invoice_id)
        .where(
            CreditMemo.status == CreditMemoStatus.APPROVED.value, *w.moments(CreditMemo.decided_at)
        )
    )
    disputed = (
        select(
            *_cause("dispute", Dispute.root_cause, utc_date(Dispute.opened_at), Invoice.order_id)
        )
        .join(Invoice, Invoice.id == Dispute.invoice_id)
        .where(*w.moments(Dispute.opened_at))
    )
    return union_all(late, short, returned, credited, disputed).subquery("causes")


def day_causes(period: Period, as_of: date) -> Select:
    """The problems of each day of ``period`` counted by source, cause and ``since`` (what
    ``service_levels_keep`` keeps): late deliveries whatever day they shipped."""
    facts = cause_facts(period, as_of, shipped_by=LAST_DAY)
    columns = (facts.c.day, facts.c.source, facts.c.cause, facts.c.since)
    return select(*columns, func.count().label("n")).group_by(*columns)


def _counted(period: Period, as_of: date, read: Reading | None) -> Any:
    """The period's problems as (source, cause, n) rows: kept days' counts, the other days'
    problems one by one (as ``read`` says; default an exact reading)."""
    last = min(period.end - timedelta(days=1), as_of)
    kept, live = (read or reading(period.start, period.end, as_of)).within(period)
    parts = []
    if kept:
        parts.append(
            select(
                ServiceLevelDayCause.source,
                ServiceLevelDayCause.cause,
                ServiceLevelDayCause.count.label("n"),
            ).where(
                ServiceLevelDayCause.day.in_(sorted(kept)),
                or_(ServiceLevelDayCause.since.is_(None), ServiceLevelDayCause.since <= last),
            )
        )
    for days in live:
        facts = cause_facts(days, as_of, shipped_by=last)
        parts.append(select(facts.c.source, facts.c.cause, literal(1).label("n")))
    return union_all(*parts).subquery("counted") if parts else None


def pareto(period: Period, as_of: date | None = None, read: Reading | None = None) -> list[Bar]:
    """The causes of the period's problems, most frequent first, with running shares (kept
    and live days as ``read`` says)."""
    counted = _counted(period, as_of or utcnow().date(), read)
    if counted is None:
        return []
    count = func.sum(counted.c.n).label("n")
    with narrow_plans(db.session):
        rows = db.session.execute(
            select(counted.c.source, counted.c.cause, count)
            .group_by(counted.c.source, counted.c.cause)
            .order_by(count.desc(), counted.c.source, counted.c.cause)
        ).all()
    total = sum(int(row.n) for row in rows)
    bars, running = [], 0
    for row in rows:
        running += int(row.n)
        bars.append(
            Bar(
                row.source,
                row.cause,
                int(row.n),
                (Decimal(int(row.n)) / total).quantize(Decimal("0.0001")),
                (Decimal(running) / total).quantize(Decimal("0.0001")),
            )
        )
    return bars


def orders_for_cause(
    period: Period, source: str, cause: str, as_of: date | None = None, limit: int = 500
) -> list[SalesOrder]:
    """The orders behind one Pareto bar, by number."""
    facts = cause_facts(period, as_of)
    ids = select(facts.c.order_id).where(
        facts.c.source == source,
        facts.c.cause == cause,
    )
    query = (
        select(SalesOrder)
        .options(joinedload(SalesOrder.customer))
        .where(SalesOrder.id.in_(ids))
        .order_by(SalesOrder.number)
    )
    return list(db.session.execute(query.limit(limit)).scalars())
