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

``keep_today`` stores today's partial sums the same way, for the page's provisional reading
(``service_levels_days.reading``), when today was never kept or changed since (its ``stale``
flag, set by ``service_level_marks``) and its last keep is at least
``SERVICE_LEVELS_TODAY_EVERY`` seconds old. It claims today in a short transaction of its
own, then computes in another and stamps ``computed_at`` with the time the computation
started, so order writes never wait for the computation and a change committed meanwhile
leaves today stale for the next run. A day kept before it closed is kept again once closed
(``pending``). Only a day's first keep of today is audited (``keep_today`` on
``service_level_day``): it runs every minute while today changes, and writes only figures
derived from audited records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import delete, insert, select, update

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
from portal.services.service_levels_days import AGED_BY_AS_OF, closed_at, runs
from portal.services.service_levels_sql import narrow_plans

KEEP_WEEKS = 14  # the 12-week trends of this week and the last, with a margin
CHUNK_DAYS = 7  # days per transaction: a change to one of them waits at most that long
TABLES = (ServiceLevelDayFigure, ServiceLevelDayValue, ServiceLevelDayCause)
TODAY_EVERY = 60  # seconds: SERVICE_LEVELS_TODAY_EVERY's default


def pending(today: date | None = None, weeks: int = KEEP_WEEKS) -> list[date]:
    """The closed days to (re)compute: stale ones, those kept before they closed, and those
    of the last ``weeks`` weeks never kept."""
    today = today or utcnow().date()
    first = sl.week_of(today).start - timedelta(days=7 * weeks)
    rows = session().execute(
        select(ServiceLevelDay.day, ServiceLevelDay.stale, ServiceLevelDay.computed_at).where(
            ServiceLevelDay.day < today
        )
    )
    kept, stale = set(), set()
    for day, is_stale, computed_at in rows:
        if is_stale or (computed_at is not None and computed_at < closed_at(day)):
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


def _claim(days: list[date], computed_at: datetime | None) -> None:
    """Upsert the days' rows as not stale (locking them until the transaction ends)."""
    table = ServiceLevelDay.__table__
    claim = upsert(table)
    session().execute(
        claim.on_conflict_do_update(
            index_elements=[table.c.day], set_={"stale": False, "computed_at": computed_at}
        ),
        [{"day": day, "stale": False, "computed_at": computed_at} for day in days],
    )


def _keep_period(period: sl.Period, today: date) -> None:
    """Claim the period's days, then replace their kept sums (in the caller's transaction)."""
    days = [period.start + timedelta(days=n) for n in range((period.end - period.start).days)]
    _claim(days, utcnow())
    _store(period, today)


def _store(period: sl.Period, today: date) -> None:
    """Replace the period's kept sums by their figures computed now, as of ``today``."""
    sess = session()
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


def keep_today(actor: Actor, now: datetime | None = None) -> bool:
    """Keep today's partial sums when today was never kept, or changed since its last keep
    and that keep is ``SERVICE_LEVELS_TODAY_EVERY`` seconds old; whether it did."""
    now = now or utcnow()
    today = now.date()
    table = ServiceLevelDay.__table__
    row = (
        session()
        .execute(select(table.c.stale, table.c.computed_at).where(table.c.day == today))
        .one_or_none()
    )
    kept_at = None if row is None else row.computed_at
    if kept_at is not None:
        every = int(current_app.config.get("SERVICE_LEVELS_TODAY_EVERY", TODAY_EVERY))
        if not row.stale or kept_at > now - timedelta(seconds=every):
            return False
    with unit_of_work():  # short: a change from now on marks today stale again
        _claim([today], kept_at)
    try:
        with unit_of_work() as sess:
            started = utcnow()
            _store(sl.Period(today, today + timedelta(days=1)), today)
            sess.execute(update(table).where(table.c.day == today).values(computed_at=started))
            if kept_at is None:
                audit.record(actor, "service_level_day", None, "keep_today", after={"day": today})
    except Exception:
        with unit_of_work() as sess:  # not kept after all: the next run tries again
            sess.execute(update(table).where(table.c.day == today).values(stale=True))
        raise
    return True
