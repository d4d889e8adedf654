"""Service levels: the metrics of ``docs/service-levels.md``, computed in SQL.

Each metric is a fact query (``service_levels_facts``) aggregated here with ``GROUP BY`` by
ISO week, month, customer, product, warehouse or carrier — never a loop over orders. Rates are
``sum(num) / sum(den)``; durations give the median and 90th percentile from a histogram of
whole days counted in SQL; counts and values are sums. ``orders_behind`` lists the orders
behind any figure (the page's drill-down).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload
from sqlalchemy.sql import ColumnElement, Select

from portal.extensions import db
from portal.models import Customer, Product, SalesOrder, Warehouse, utcnow
from portal.services.base import ValidationFailed
from portal.services.service_levels_facts import FACTS, Window
from portal.services.service_levels_sql import month_start, narrow_plans, week_start

RATE, DAYS, COUNT, MONEY = "rate", "days", "count", "money"
DIMENSIONS = ("customer", "product", "warehouse", "carrier")


@dataclass(frozen=True)
class Metric:
    """One service-level metric: how it reads, which way is better, its default target."""

    key: str
    label: str
    kind: str
    higher_is_better: bool
    target: Decimal
    amber: Decimal  # the limit between amber and red (amber lies between it and the target)
    dimensions: tuple[str, ...] = ("customer",)

    @property
    def unit(self) -> str:
        return {RATE: "%", DAYS: "days", COUNT: "", MONEY: "USD"}[self.kind]


def _m(key: str, label: str, kind: str, better: str, target: str, amber: str, *dims: str) -> Metric:
    return Metric(
        key, label, kind, better == "higher", Decimal(target), Decimal(amber), ("customer", *dims)
    )


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        _m("otif_order", "OTIF (orders)", RATE, "higher", "0.95", "0.90"),
        _m("otif_line", "OTIF (lines)", RATE, "higher", "0.97", "0.92", "product"),
        _m(
            "on_time_shipment",
            "On-time shipment",
            RATE,
            "higher",
            "0.95",
            "0.90",
            "warehouse",
            "carrier",
        ),
        _m("line_fill_rate", "Line fill rate", RATE, "higher", "0.95", "0.90", "product"),
        _m("unit_fill_rate", "Unit fill rate", RATE, "higher", "0.97", "0.93", "product"),
        _m("backorder_rate", "Backorder rate", RATE, "lower", "0.05", "0.10"),
        _m("backorder_age", "Backorder age", DAYS, "lower", "7", "14", "product"),
        _m("cycle_time", "Order cycle time", DAYS, "lower", "10", "14"),
        _m("quote_conversion", "Quote-to-order conversion", RATE, "higher", "0.30", "0.20"),
        _m("order_to_invoice", "Order-to-invoice time", DAYS, "lower", "14", "21"),
        _m("return_rate", "Return rate", RATE, "lower", "0.02", "0.05", "product", "warehouse"),
        _m("credits", "Credits", MONEY, "lower", "1000", "2500"),
        _m("disputes", "Disputes opened", COUNT, "lower", "3", "6"),
        _m("dispute_resolution", "Dispute resolution time", DAYS, "lower", "10", "15"),
        _m("disputes_overdue", "Overdue disputes", COUNT, "lower", "0", "2"),
        _m("perfect_order", "Perfect-order rate", RATE, "higher", "0.90", "0.80"),
    )
}


@dataclass
class Figure:
    """One metric's figure over one group: the headline ``value`` and what it is made of."""

    num: int = 0
    den: int = 0
    count: int = 0
    amount: Decimal = Decimal("0.00")
    median: float | None = None
    p90: float | None = None
    kind: str = RATE

    @property
    def value(self) -> Decimal | float | int | None:
        """The number a tile shows: a rate (0..1), the median days, a count or a value."""
        if self.kind == RATE:
            return Decimal(self.num) / Decimal(self.den) if self.den else None
        if self.kind == DAYS:
            return self.median
        if self.kind == MONEY:
            return self.amount
        return self.num


@dataclass
class Tally:
    """The sums of a metric's facts over some days, and the histogram of their durations:
    what adds up exactly from day to day (``add``) and gives a :class:`Figure`."""

    num: int = 0
    den: int = 0
    count: int = 0
    amount: Decimal = Decimal("0.00")
    histogram: Counter[int] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.num += other.num
        self.den += other.den
        self.count += other.count
        self.amount += other.amount
        self.histogram.update(other.histogram)

    def figure(self, kind: str) -> Figure:
        """The figure these sums give, as ``compute`` would give it."""
        pairs = sorted(self.histogram.items())
        return Figure(
            self.num,
            self.den,
            self.count,
            Decimal(self.amount).quantize(Decimal("0.01")),
            percentile(pairs, 0.5) if pairs else None,
            percentile(pairs, 0.9) if pairs else None,
            kind,
        )


@dataclass(frozen=True)
class Period:
    """A half-open range of days ``[start, end)`` (an ISO week, a month, or any range)."""

    start: date
    end: date

    @property
    def label(self) -> str:
        if self.end - self.start == timedelta(days=7) and self.start.isoweekday() == 1:
            return week_label(self.start)
        return f"{self.start.isoformat()} – {(self.end - timedelta(days=1)).isoformat()}"


WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_week(text: str) -> Period:
    """The ISO week ``YYYY-Www`` (e.g. ``2026-W47``) as a period; 422 if it is not one."""
    match = WEEK_RE.match((text or "").strip())
    if match is None:
        raise ValidationFailed({"week": [f"{text!r} is not an ISO week such as 2026-W47"]})
    try:
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise ValidationFailed({"week": [f"{text} is not a week of {match[1]}"]}) from None
    return week_of(monday)


def week_of(day: date) -> Period:
    """The ISO week that contains ``day``."""
    monday = day - timedelta(days=day.weekday())
    return Period(monday, monday + timedelta(days=7))


def week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def last_complete_week(today: date | None = None) -> Period:
    """The ISO week before the one ``today`` is in (what a Monday report covers)."""
    return week_of((today or utcnow().date()) - timedelta(days=7))


def metric(key: str) -> Metric:
    """The metric named ``key``; 422 for an unknown name."""
    if key not in METRICS:
        raise ValidationFailed({"metric": [f"unknown metric {key!r}; one of {', '.join(METRICS)}"]})
    return METRICS[key]


def _group_column(facts: Any, by: str | None, m: Metric) -> ColumnElement[Any] | None:
    if by is None:
        return None
    if by == "week":
        return week_start(facts.c.day)
    if by == "month":
        return month_start(facts.c.day)
    if by not in DIMENSIONS:
        raise ValidationFailed({"by": [f"one of week, month, {', '.join(DIMENSIONS)}"]})
    if by not in m.dimensions:
        raise ValidationFailed(
            {"by": [f"{m.label} is not recorded by {by} (it is by {', '.join(m.dimensions)})"]}
        )
    return facts.c.carrier if by == "carrier" else facts.c[f"{by}_id"]


def _facts(m: Metric, period: Period, as_of: date | None) -> Any:
    window = Window(period.start, period.end, as_of or utcnow().date())
    facts = FACTS[m.key](window).subquery("facts")
    return facts, [facts.c.day >= period.start, facts.c.day < period.end]


def compute(
    key: str, period: Period, by: str | None = None, as_of: date | None = None
) -> dict[Any, Figure]:
    """The figure of metric ``key`` over ``period``, per group of ``by`` (None: one total).

    Groups are the Monday of each week, the first of each month, the customer, product or
    warehouse id, or the carrier's name. Figures are as of ``as_of`` (default today).
    """
    m = metric(key)
    facts, within = _facts(m, period, as_of)
    group = _group_column(facts, by, m)
    keys = [group.label("grp")] if group is not None else []
    sums = (
        func.coalesce(func.sum(facts.c.num), 0),
        func.coalesce(func.sum(facts.c.den), 0),
        func.count(),
        func.coalesce(func.sum(facts.c.amount), 0),
    )
    query = select(*keys, *sums).where(*within)
    if keys:
        query = query.group_by(group)
    figures: dict[Any, Figure] = {}
    for row in db.session.execute(query):
        grp = row[0] if keys else None
        num, den, count, amount = row[-4:]
        figures[grp] = Figure(
            int(num), int(den), int(count), Decimal(amount).quantize(Decimal("0.01")), kind=m.kind
        )
    if m.kind == DAYS:
        _add_percentiles(figures, facts, within, group)
    if by is None and None not in figures:
        figures[None] = Figure(kind=m.kind)
    return figures


def daily(key: str, period: Period, as_of: date | None = None) -> dict[date, Tally]:
    """The sums of metric ``key``'s facts per day of ``period`` (days without facts left out),
    with each day's histogram of durations: two grouped queries at most."""
    m = metric(key)
    facts, within = _facts(m, period, as_of)
    sums = select(
        facts.c.day,
        func.coalesce(func.sum(facts.c.num), 0),
        func.coalesce(func.sum(facts.c.den), 0),
        func.count(),
        func.coalesce(func.sum(facts.c.amount), 0),
    )
    histogram = (
        select(facts.c.day, facts.c.value, func.count())
        .where(*within, facts.c.value.is_not(None))
        .group_by(facts.c.day, facts.c.value)
    )
    tallies: dict[date, Tally] = {}
    with narrow_plans(db.session):
        for day, num, den, count, amount in db.session.execute(
            sums.where(*within).group_by(facts.c.day)
        ):
            tallies[_date(day)] = Tally(int(num), int(den), int(count), Decimal(str(amount)))
        for day, value, count in db.session.execute(histogram) if m.kind == DAYS else ():
            tallies.setdefault(_date(day), Tally()).histogram[int(value)] += int(count)
    return tallies


def _date(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _add_percentiles(figures: dict[Any, Figure], facts: Any, within: list[Any], group: Any) -> None:
    """Median and p90 of each group from the histogram of whole days (SQL ``GROUP BY``)."""
    keys = [group.label("grp")] if group is not None else []
    query = (
        select(*keys, facts.c.value, func.count())
        .where(*within, facts.c.value.is_not(None))
        .group_by(*([group] if group is not None else []), facts.c.value)
        .order_by(facts.c.value)
    )
    histograms: dict[Any, list[tuple[int, int]]] = {}
    for row in db.session.execute(query):
        grp = row[0] if keys else None
        histograms.setdefault(grp, []).append((int(row[-2]), int(row[-1])))
    for grp, histogram in histograms.items():
        figure = figures.setdefault(grp, Figure(kind=DAYS))
        figure.median = percentile(histogram, 0.5)
        figure.p90 = percentile(histogram, 0.9)


def percentile(histogram: Iterable[tuple[int, int]], fraction: float) -> float | None:
    """The ``fraction`` percentile of values given as sorted (value, count) pairs.

    Linear interpolation between the two nearest ranks, as PostgreSQL's ``percentile_cont``.
    """
    pairs = list(histogram)
    total = sum(count for _, count in pairs)
    if not total:
        return None
    position = fraction * (total - 1)
    low_rank, high_rank = int(position), min(int(position) + 1, total - 1)
    low = high = None
    seen = 0
    for value, count in pairs:
        if low is None and low_rank < seen + count:
            low = value
        if high_rank < seen + count:
            high = value
            break
        seen += count
    return float(low + (high - low) * (position - int(position)))


def orders_behind(
    key: str,
    period: Period,
    *,
    missed: bool = False,
    by: str | None = None,
    group: Any = None,
    as_of: date | None = None,
    limit: int = 500,
) -> list[SalesOrder]:
    """The orders behind a figure (those that missed it, with ``missed``), by number."""
    m = metric(key)
    facts, within = _facts(m, period, as_of)
    conditions = list(within)
    column = _group_column(facts, by, m)
    if column is not None and group is not None:
        conditions.append(column == group)
    if missed:
        conditions.append(_missed(m, facts))
    ids = select(facts.c.order_id).where(*conditions).distinct()
    query: Select = (
        select(SalesOrder)
        .options(joinedload(SalesOrder.customer))
        .where(SalesOrder.id.in_(ids))
        .order_by(SalesOrder.number)
        .limit(limit)
    )
    return list(db.session.execute(query).scalars())


def _missed(m: Metric, facts: Any) -> ColumnElement[bool]:
    """The facts that count against a metric."""
    if m.kind == RATE and m.higher_is_better:
        return facts.c.num < facts.c.den
    if m.kind == RATE:
        return facts.c.num > 0
    if m.kind == DAYS:
        return facts.c.value > m.target
    return facts.c.num > 0


def breakdown(key: str, period: Period, by: str | None) -> list[dict[str, Any]]:
    """The metric over ``period`` per group of ``by`` (or in total), named and ordered, as
    plain values (the REST API's answer)."""
    figures = compute(key, period, by=by)
    names = group_names(by, figures)
    rows = []
    for group in sorted(figures, key=lambda g: (g is None, names.get(g, str(g)))):
        figure = figures[group]
        value = figure.value
        rows.append(
            {
                "group": group.isoformat() if isinstance(group, date) else group,
                "name": names.get(group, "all"),
                "value": None if value is None else float(value),
                "num": figure.num,
                "den": figure.den,
                "count": figure.count,
                "amount": str(figure.amount),
                "median": figure.median,
                "p90": figure.p90,
            }
        )
    return rows


def group_names(by: str | None, keys: Iterable[Any]) -> dict[Any, str]:
    """Readable names of group keys: customers, products and warehouses by code and name."""
    keys = [key for key in keys if key is not None]
    models = {"customer": Customer, "product": Product, "warehouse": Warehouse}
    if by in ("week", "month"):
        return {key: week_label(key) if by == "week" else key.strftime("%Y-%m") for key in keys}
    if by not in models or not keys:
        return {key: str(key) for key in keys}
    model = models[by]
    return {
        row.id: str(row)
        for row in db.session.execute(select(model).where(model.id.in_(keys))).scalars()
    }
