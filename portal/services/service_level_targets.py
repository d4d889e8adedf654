"""Targets of the service-level metrics and the scorecard that holds each figure against them.

A target is the value a metric should reach; ``amber`` is the limit between amber and red on
the worse side of it. The defaults are in ``service_levels.METRICS``; Supervisors (and Admins)
change them in the portal (``set_target``), stored in ``service_level_target``. The scorecard
gives each metric's figure for a week, the week before, the change, the 12-week trend and its
red/amber/green state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.models import ServiceLevelTarget, utcnow
from portal.security import SERVICE_LEVELS
from portal.services import audit
from portal.services import service_levels as sl
from portal.services.base import Actor, ValidationFailed, check_version, require, unit_of_work
from portal.services.service_levels_causes import Bar, pareto
from portal.services.service_levels_days import Reading, reading, span, weekly

GREEN, AMBER, RED = "green", "amber", "red"
TREND_WEEKS = 12


@dataclass(frozen=True)
class Target:
    metric: str
    target: Decimal
    amber: Decimal
    is_default: bool
    version: int | None = None


def targets() -> dict[str, Target]:
    """Every metric's target: the stored one, else the default."""
    stored = {row.metric: row for row in db.session.execute(select(ServiceLevelTarget)).scalars()}
    found = {}
    for key, m in sl.METRICS.items():
        row = stored.get(key)
        if row is None:
            found[key] = Target(key, m.target, m.amber, True)
        else:
            found[key] = Target(key, row.target, row.amber, False, row.version)
    return found


def _decimal(name: str, value: Any, errors: dict[str, list[str]]) -> Decimal | None:
    try:
        number = Decimal(str(value).strip().rstrip("%"))
    except (InvalidOperation, ValueError):
        errors[name] = [f"{value!r} is not a number"]
        return None
    if not number.is_finite() or number < 0:
        errors[name] = ["must be a number of 0 or more"]
        return None
    if str(value).strip().endswith("%"):
        number = number / 100
    return number


def set_target(
    key: str, target: Any, amber: Any, actor: Actor, expected_version: int | None = None
) -> Target:
    """Store metric ``key``'s target and amber limit (a rate as 0.95 or "95%")."""
    require(actor, "can_write", SERVICE_LEVELS, "set service-level targets")
    m = sl.metric(key)
    errors: dict[str, list[str]] = {}
    goal = _decimal("target", target, errors)
    limit = _decimal("amber", amber, errors)
    if goal is not None and limit is not None:
        if m.kind == sl.RATE and max(goal, limit) > 1:
            errors["target"] = ["a rate is at most 100%"]
        elif m.higher_is_better and limit > goal:
            errors["amber"] = [f"must be at or below the target ({m.label}: higher is better)"]
        elif not m.higher_is_better and limit < goal:
            errors["amber"] = [f"must be at or above the target ({m.label}: lower is better)"]
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work() as sess:
        row = sess.execute(
            select(ServiceLevelTarget).where(ServiceLevelTarget.metric == key)
        ).scalar_one_or_none()
        before = None if row is None else {"target": row.target, "amber": row.amber}
        if row is None:
            row = ServiceLevelTarget(metric=key, target=goal, amber=limit)
            sess.add(row)
        else:
            check_version(row, expected_version)
            row.target, row.amber = goal, limit
        row.updated_by, row.updated_at = actor.name, utcnow()
        sess.flush()
        audit.record(
            actor,
            "service_level_target",
            row.id,
            "update" if before else "create",
            before=before,
            after={"metric": key, "target": goal, "amber": limit},
        )
    return targets()[key]


def rag(m: sl.Metric, value: Any, goal: Target) -> str | None:
    """Green at or better than the target, amber up to the amber limit, red beyond it."""
    if value is None:
        return None
    number = Decimal(str(value))
    if m.higher_is_better:
        return GREEN if number >= goal.target else AMBER if number >= goal.amber else RED
    return GREEN if number <= goal.target else AMBER if number <= goal.amber else RED


@dataclass
class Row:
    """One metric on the scorecard of a week."""

    metric: sl.Metric
    target: Target
    figure: sl.Figure
    previous: sl.Figure
    trend: list[tuple[date, sl.Figure]] = field(default_factory=list)

    @property
    def value(self) -> Any:
        return self.figure.value

    @property
    def change(self) -> Decimal | None:
        """This week's value less last week's (None when either is missing)."""
        now, before = self.figure.value, self.previous.value
        if now is None or before is None:
            return None
        return Decimal(str(now)) - Decimal(str(before))

    @property
    def improved(self) -> bool | None:
        change = self.change
        if change is None or change == 0:
            return None
        return (change > 0) == self.metric.higher_is_better

    @property
    def state(self) -> str | None:
        return rag(self.metric, self.value, self.target)


def scorecard(
    week: sl.Period,
    as_of: date | None = None,
    weeks: int = TREND_WEEKS,
    read: Reading | None = None,
) -> list[Row]:
    """Every metric for ``week``: its value, the week before, the trend, the target and state
    (kept and live days as ``read`` says; default an exact reading)."""
    goals = targets()
    rows = []
    previous = sl.Period(week.start - timedelta(days=7), week.start)
    trends = weekly(list(sl.METRICS), week, weeks, as_of, read)
    for key, m in sl.METRICS.items():
        trend = trends[key]
        figure = trend[-1][1]
        before = trend[-2][1] if weeks > 1 else sl.compute(key, previous, as_of=as_of)[None]
        rows.append(Row(m, goals[key], figure, before, trend))
    return rows


@dataclass
class Page:
    """What the Service levels page shows of a week: the scorecard, the Pareto, and where
    their days were read from (``read``: today's kept time, the days being refreshed)."""

    rows: list[Row]
    bars: list[Bar]
    read: Reading


def page(week: sl.Period) -> Page:
    """The page's figures of ``week``, read provisionally: today's kept sums while fresh, and
    closed days that changed from their last kept sums (``service_levels_days.reading``)."""
    trend = span(week, TREND_WEEKS)
    read = reading(trend.start, trend.end, provisional=True)
    return Page(scorecard(week, read=read), pareto(week, read=read), read)
