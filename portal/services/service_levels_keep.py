"""Keeping the service levels of closed days: computed set-based in SQL, once per day.

``keep`` computes, for each closed UTC day that needs it — never kept within the last
``KEEP_WEEKS`` weeks, or marked stale because a record behind it changed
(``service_level_marks``) — every metric's sums and duration histogram
(``service_levels.daily``, grouped queries over a run of days) and the Pareto's problems by
cause (one ``INSERT … SELECT``), and stores them for ``service_levels_days`` to read. Days are
done in runs of at most ``CHUNK_DAYS``, one transaction each: the run's day rows are claimed
first (``stale`` cleared, which locks them), so a change committed meanwhile is either seen
by the computation or marks its day stale again once this transaction ends — never lost.
The periodic job (``jobs.service_levels.keep_service_levels``) calls it; so does the Monday
workbook job before it makes the workbook.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import delete, insert, select

from portal.models import (
    ServiceLevelDay,
    ServiceLevelDayCause,
    ServiceLevelDayFigure,
    ServiceLevelDayValue,
    utcnow,
)
from portal.services import audit
from portal.services import service_levels as sl
from portal.services.base import Actor, session, unit_of_work, upsert
from portal.services.service_levels_causes import day_causes
from portal.services.service_levels_days import AGED_BY_AS_OF, runs
from portal.services.service_levels_sql import narrow_plans

KEEP_WEEKS = 14  # the 12-week trends of this week and the last, with a margin
CHUNK_DAYS = 7  # days per transaction: a change to one of them waits at most that long
TABLES = (ServiceLevelDayFigure, ServiceLevelDayValue, ServiceLevelDayCause)


def pending(today: date | None = None, weeks: int = KEEP_WEEKS) -> list[date]:
    """The closed days to (re)compute: stale ones, and those of the last ``weeks`` weeks
    never kept."""
    today = today or utcnow().date()
    first = sl.week_of(today).start - timedelta(days=7 * weeks)
    rows = session().execute(
        select(ServiceLevelDay.day, ServiceLevelDay.stale, ServiceLevelDay.computed_at).where(
            ServiceLevelDay.day < today
        )
    )
    kept, stale = set(), set()
    for day, is_stale, computed_at in rows:
        if is_stale:
            stale.add(day)
        elif computed_at is not None:
            kept.add(day)
    recent = {first + timedelta(days=n) for n in range((today - first).days)}
    return sorted((recent - kept) | stale)


def _chunks(days: list[date]) -> list[sl.Period]:
    pieces = []
    for run in runs(days):
        start = run.start
        while start < run.end:
            end = min(start + timedelta(days=CHUNK_DAYS), run.end)
            pieces.append(sl.Period(start, end))
            start = end
    return pieces


def _keep_period(period: sl.Period, today: date) -> None:
    """Claim the period's days, then replace their kept sums (in the caller's transaction)."""
    sess = session()
    now = utcnow()
    days = [period.start + timedelta(days=n) for n in range((period.end - period.start).days)]
    table = ServiceLevelDay.__table__
    claim = upsert(table)
    sess.execute(
        claim.on_conflict_do_update(
            index_elements=[table.c.day], set_={"stale": False, "computed_at": now}
        ),
        [{"day": day, "stale": False, "computed_at": now} for day in days],
    )
    for model in TABLES:
        sess.execute(delete(model).where(model.day >= period.start, model.day < period.end))
    figures, values = [], []
    for key, m in sl.METRICS.items():
        for day, tally in sl.daily(key, period, today).items():
            amount = Decimal(tally.amount).quantize(Decimal("0.01"))
            figures.append(
                {"metric": key, "day": day, "num": tally.num, "den": tally.den}
                | {"count": tally.count, "amount": amount}
            )
            if m.kind == sl.DAYS and key not in AGED_BY_AS_OF:
                values += [
                    {"metric": key, "day": day, "value": value, "count": count}
                    for value, count in tally.histogram.items()
                ]
    if figures:
        sess.execute(insert(ServiceLevelDayFigure), figures)
    if values:
        sess.execute(insert(ServiceLevelDayValue), values)
    with narrow_plans(sess):
        sess.execute(
            insert(ServiceLevelDayCause).from_select(
                ["day", "source", "cause", "since", "count"], day_causes(period, today)
            )
        )


def keep(actor: Actor, today: date | None = None, days: Iterable[date] | None = None) -> int:
    """(Re)compute and store the closed days that need it (or ``days``, those before
    ``today``); how many days were kept. Audited once per call that kept any."""
    today = today or utcnow().date()
    todo = pending(today) if days is None else sorted({day for day in days if day < today})
    for period in _chunks(todo):
        with unit_of_work():
            _keep_period(period, today)
    if todo:
        with unit_of_work():
            audit.record(
                actor,
                "service_level_day",
                None,
                "keep",
                after={"days": len(todo), "first": todo[0], "last": todo[-1]},
            )
    return len(todo)
