"""Service levels read from kept days: each closed day's sums, plus the rest computed live.

``service_levels_keep.keep`` stores, for each closed UTC day, every metric's sums over the
facts of that day (``service_level_day_figure``), the histogram of the duration metrics' days
(``service_level_day_value``) and the Pareto's problems by cause (``service_level_day_cause``).
Sums and histograms add up exactly from days to weeks, so a week's rate, count, value, median
and p90 read from kept days are the figures ``service_levels.compute`` gives for it.

A day is read from there when it was kept, is not stale (a record behind it changed since:
``service_level_marks``) and lies before both today and the day asked as of; every other day
(today, a stale or a missing day) is computed live, one run of consecutive days at a time.
``backorder_age`` is kept as the open backorders of each order date: their age is the days
from that date to the day asked as of.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

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


def runs(days: Iterable[date]) -> list[sl.Period]:
    """Consecutive days as periods ``[first, last + 1)``, in order."""
    found: list[sl.Period] = []
    for day in sorted(set(days)):
        if found and found[-1].end == day:
            found[-1] = sl.Period(found[-1].start, day + timedelta(days=1))
        else:
            found.append(sl.Period(day, day + timedelta(days=1)))
    return found


def kept_days(first: date, end: date) -> set[date]:
    """The days in ``[first, end)`` kept and not stale."""
    query = select(ServiceLevelDay.day).where(
        ServiceLevelDay.day >= first,
        ServiceLevelDay.day < end,
        ServiceLevelDay.stale.is_(False),
        ServiceLevelDay.computed_at.is_not(None),
    )
    return set(db.session.execute(query).scalars())


def split(first: date, end: date, as_of: date) -> tuple[set[date], list[sl.Period]]:
    """The days of ``[first, end)`` that exist as of ``as_of``: those read from kept sums,
    and the runs of the others, computed live."""
    stop = min(end, as_of + timedelta(days=1))
    kept = kept_days(first, min(stop, as_of, utcnow().date()))
    days = (first + timedelta(days=n) for n in range(max((stop - first).days, 0)))
    return kept, runs(day for day in days if day not in kept)


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


def weekly(
    keys: Sequence[str], last: sl.Period, weeks: int = 12, as_of: date | None = None
) -> dict[str, list[tuple[date, sl.Figure]]]:
    """Each metric of ``keys`` for each of ``weeks`` ISO weeks ending with ``last`` (empty
    weeks included): kept days summed, the other days computed live."""
    as_of = as_of or utcnow().date()
    first = last.start - timedelta(days=7 * (weeks - 1))
    mondays = [first + timedelta(days=7 * n) for n in range(weeks)]
    kept, live = split(first, last.end, as_of)
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
