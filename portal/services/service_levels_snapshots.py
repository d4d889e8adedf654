"""Closed weeks' figures as first reported, and the weekly trends (read from kept days).

A week is **frozen** once it ended at least ``FREEZE_DAYS`` ago (late-recorded deliveries,
returns and credits have had time to arrive): ``freeze`` stores every metric's figure for
the frozen weeks not stored yet in ``service_level_snapshot``, audited, never to change — the
record of what was reported. The Monday job freezes before it makes the workbook.
``weekly_values`` — the 12-week trend of the page and the workbook — sums the kept days
(``service_levels_days``), which follow later corrections, and computes only the other days
live. ``backorder_age`` (as of the day asked) is not frozen.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from portal.extensions import db
from portal.models import ServiceLevelSnapshot, utcnow
from portal.services import audit
from portal.services import service_levels as sl
from portal.services.base import Actor, unit_of_work
from portal.services.service_levels_days import weekly

FREEZE_DAYS = 7
LIVE_ONLY = frozenset({"backorder_age"})


def frozen_until(as_of: date) -> date:
    """Weeks that end on or before this day may be frozen."""
    return as_of - timedelta(days=FREEZE_DAYS)


def _frozen(first: date, end: date) -> set[tuple[str, date]]:
    """The (metric, week) pairs stored for the weeks in ``[first, end)``."""
    query = select(ServiceLevelSnapshot.metric, ServiceLevelSnapshot.week).where(
        ServiceLevelSnapshot.week >= first, ServiceLevelSnapshot.week < end
    )
    return {(metric, week) for metric, week in db.session.execute(query)}


def weekly_values(
    key: str, last: sl.Period, weeks: int = 12, as_of: date | None = None
) -> list[tuple[date, sl.Figure]]:
    """The metric for each of ``weeks`` ISO weeks ending with ``last`` (empty weeks included):
    kept days summed, the other days computed live."""
    return weekly([key], last, weeks, as_of)[key]


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.0001"))


def freeze(actor: Actor, weeks: int = 12, as_of: date | None = None) -> int:
    """Store the figures of the last ``weeks`` frozen weeks not stored yet (from the kept
    days); how many were stored."""
    as_of = as_of or utcnow().date()
    latest = sl.week_of(frozen_until(as_of)).start  # the weeks before it end by then
    last = sl.Period(latest - timedelta(days=7), latest)
    first = last.start - timedelta(days=7 * (weeks - 1))
    added = 0
    keys = sorted(sl.METRICS.keys() - LIVE_ONLY)
    found = weekly(keys, last, weeks, as_of)
    frozen = _frozen(first, last.end)
    with unit_of_work() as sess:
        for key in keys:
            for monday, figure in found[key]:
                if (key, monday) in frozen:
                    continue
                sess.add(
                    ServiceLevelSnapshot(
                        metric=key,
                        week=monday,
                        num=figure.num,
                        den=figure.den,
                        count=figure.count,
                        amount=figure.amount,
                        median=_decimal(figure.median),
                        p90=_decimal(figure.p90),
                        computed_at=utcnow(),
                    )
                )
                added += 1
        if added:
            audit.record(
                actor,
                "service_level_snapshot",
                None,
                "freeze",
                after={"weeks": f"{sl.week_label(first)}..{last.label}", "figures": added},
            )
    return added
