"""Service levels read from kept days: each closed day's sums, plus the rest computed live.

``service_levels_keep.keep`` stores, for each closed UTC day, every metric's sums over the
facts of that day (``service_level_day_figure``), the histogram of the duration metrics' days
(``service_level_day_value``) and the Pareto's problems by cause (``service_level_day_cause``).
Sums and histograms add up exactly from days to weeks, so a week's rate, count, value, median
and p90 read from kept days are the figures ``service_levels.compute`` gives for it.

Which day is read from where is a :class:`Reading` (:func:`reading`). An **exact** reading
(the default: the workbook, the frozen weeks) reads a day from there when it was kept after it
closed, is not stale (a record behind it changed since: ``service_level_marks``) and lies before
both today and the day asked as of; every other day is computed live, one run of consecutive
days at a time. A **provisional** reading (the Service levels page) also reads today's kept
sums, whatever their age, saying as of when (``today_at``) and whether they are late
(``today_late``: changed since and more than ``SERVICE_LEVELS_TODAY_MAX_AGE`` seconds old),
and a closed day that changed since it was kept (stale, or kept before it closed) from its
last kept sums, saying which and as of when (``behind``) — so it computes today live only
before today's first keep, and never a changed day. ``backorder_age`` is kept as the open
backorders of each order date: their age is the days from that date to the day asked as of.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    ServiceLevelDay,
    ServiceLevelDayFigure,
    ServiceLevelDayValue,
    utcnow,
)
from portal.services import service_levels as sl

AGED_BY_AS_OF = frozenset({"backorder_age"})  # a fact's days: from its own day to as-of
TODAY_MAX_AGE = 300  # seconds: SERVICE_LEVELS_TODAY_MAX_AGE's default


def runs(days: Iterable[date]) -> list[sl.Period]:
    """Consecutive days as periods ``[first, last + 1)``, in order."""
    found: list[sl.Period] = []
    for day in sorted(set(days)):
        if found and found[-1].end == day:
            found[-1] = sl.Period(found[-1].start, day + timedelta(days=1))
        else:
            found.append(sl.Period(day, day + timedelta(days=1)))
    return found


def closed_at(day: date) -> datetime:
    """When ``day`` (UTC) ends: sums kept before then are a partial day's."""
    return datetime.combine(day + timedelta(days=1), time(), UTC)


@dataclass(frozen=True)
class Reading:
    """Where the days of a span are read from: ``kept`` sums, or ``live`` runs computed from
    the records. ``today_at``: when today's kept sums (read) were computed; ``today_late``:
    today changed since and they are older than the page accepts; ``behind``: the closed
    days read from sums kept before their records last changed, with when."""

    kept: frozenset[date]
    live: tuple[sl.Period, ...]
    today_at: datetime | None = None
    behind: tuple[tuple[date, datetime], ...] = ()
    today_late: bool = False

    def within(self, period: sl.Period) -> tuple[set[date], list[sl.Period]]:
        """The kept days and the live runs that fall in ``period``."""
        kept = {day for day in self.kept if period.start <= day < period.end}
        live = [
            sl.Period(max(run.start, period.start), min(run.end, period.end))
            for run in self.live
            if run.start < period.end and run.end > period.start
        ]
        return kept, live


def today_max_age() -> timedelta:
    """How old today's kept sums may be, when today changed since, before the page says
    they are late."""
    return timedelta(
        seconds=int(current_app.config.get("SERVICE_LEVELS_TODAY_MAX_AGE", TODAY_MAX_AGE))
    )


def reading(
    first: date, end: date, as_of: date | None = None, provisional: bool = False
) -> Reading:
    """Where each day of ``[first, end)`` that exists as of ``as_of`` is read from."""
    now = utcnow()
    today = now.date()
    as_of = as_of or today
    stop = min(end, as_of + timedelta(days=1))
    query = select(ServiceLevelDay.day, ServiceLevelDay.stale, ServiceLevelDay.computed_at).where(
        ServiceLevelDay.day >= first,
        ServiceLevelDay.day < stop,
        ServiceLevelDay.computed_at.is_not(None),
    )
    kept: set[date] = set()
    behind: dict[date, datetime] = {}
    today_at, today_late = None, False
    for day, stale, at in db.session.execute(query):
        if day < min(as_of, today):
            if not stale and at >= closed_at(day):
                kept.add(day)
            elif provisional:
                kept.add(day)
                behind[day] = at
        elif provisional and day == today == as_of:
            kept.add(day)
            today_at, today_late = at, stale and at < now - today_max_age()
    days = (first + timedelta(days=n) for n in range(max((stop - first).days, 0)))
    live = runs(day for day in days if day not in kept)
    return Reading(
        frozenset(kept), tuple(live), today_at, tuple(sorted(behind.items())), today_late
    )


def _kept_tallies(
    keys: Sequence[str], kept: set[date], first: date, end: date, as_of: date
) -> dict[str, dict[date, sl.Tally]]:
    tallies: dict[str, dict[date, sl.Tally]] = {key: {} for key in keys}
    if not kept:
        return tallies
    figures = select(ServiceLevelDayFigure).where(
        ServiceLevelDayFigure.metric.in_(keys),
        ServiceLevelDayFigure.day >= first,
        ServiceLevelDayFigure.day < end,
    )
    for row in db.session.execute(figures).scalars():
        if row.day in kept:
            tally = sl.Tally(int(row.num), int(row.den), int(row.count), row.amount)
            if row.metric in AGED_BY_AS_OF:
                tally.histogram[(as_of - row.day).days] = int(row.count)
            tallies[row.metric][row.day] = tally
    durations = [key for key in keys if sl.METRICS[key].kind == sl.DAYS]
    values = select(ServiceLevelDayValue).where(
        ServiceLevelDayValue.metric.in_(durations),
        ServiceLevelDayValue.day >= first,
        ServiceLevelDayValue.day < end,
    )
    for row in db.session.execute(values).scalars() if durations else ():
        if row.day in kept:
            tally = tallies[row.metric].setdefault(row.day, sl.Tally())
            tally.histogram[row.value] += int(row.count)
    return tallies


def span(last: sl.Period, weeks: int) -> sl.Period:
    """The ``weeks`` ISO weeks ending with ``last``."""
    return sl.Period(last.start - timedelta(days=7 * (weeks - 1)), last.end)


def weekly(
    keys: Sequence[str],
    last: sl.Period,
    weeks: int = 12,
    as_of: date | None = None,
    read: Reading | None = None,
) -> dict[str, list[tuple[date, sl.Figure]]]:
    """Each metric of ``keys`` for each of ``weeks`` ISO weeks ending with ``last`` (empty
    weeks included): kept days summed, the other days computed live, as ``read`` says
    (default: an exact reading)."""
    as_of = as_of or utcnow().date()
    first = span(last, weeks).start
    mondays = [first + timedelta(days=7 * n) for n in range(weeks)]
    kept, live = (read or reading(first, last.end, as_of)).within(span(last, weeks))
    tallies = _kept_tallies(keys, kept, first, last.end, as_of)
    for period in live:
        for key in keys:
            tallies[key].update(sl.daily(key, period, as_of))
    found: dict[str, list[tuple[date, sl.Figure]]] = {}
    for key in keys:
        by_week: dict[date, sl.Tally] = {monday: sl.Tally() for monday in mondays}
        for day, tally in tallies[key].items():
            by_week[sl.week_of(day).start].add(tally)
        kind = sl.METRICS[key].kind
        found[key] = [(monday, by_week[monday].figure(kind)) for monday in mondays]
    return found
