"""Closed weeks' figures, kept: the weekly trends read them instead of recomputing history.

A week is **frozen** once it ended at least ``FREEZE_DAYS`` ago (late-recorded deliveries,
returns and credits have had time to arrive): ``freeze`` computes every metric's figure for
the frozen weeks not kept yet (one grouped query per metric) and stores them in
``service_level_snapshot``, audited, never to change. The Monday job freezes before it makes
the workbook. ``weekly_values`` — the 12-week trend of the page and the workbook — takes the
kept weeks from there and computes only the others live, in one query from the oldest
missing week. ``backorder_age`` (as of the day asked) is always computed live.
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

FREEZE_DAYS = 7
LIVE_ONLY = frozenset({"backorder_age"})


def frozen_until(as_of: date) -> date:
    """Weeks that end on or before this day may be frozen."""
    return as_of - timedelta(days=FREEZE_DAYS)


def _kept(key: str, first: date, end: date) -> dict[date, sl.Figure]:
    rows = db.session.execute(
        select(ServiceLevelSnapshot).where(
            ServiceLevelSnapshot.metric == key,
            ServiceLevelSnapshot.week >= first,
            ServiceLevelSnapshot.week < end,
        )
    ).scalars()
    kind = sl.METRICS[key].kind
    return {
        row.week: sl.Figure(
            int(row.num),
            int(row.den),
            int(row.count),
            row.amount,
            None if row.median is None else float(row.median),
            None if row.p90 is None else float(row.p90),
            kind,
        )
        for row in rows
    }


def weekly_values(
    key: str, last: sl.Period, weeks: int = 12, as_of: date | None = None
) -> list[tuple[date, sl.Figure]]:
    """The metric for each of ``weeks`` ISO weeks ending with ``last`` (empty weeks included):
    kept figures where there are, the rest computed live."""
    first = last.start - timedelta(days=7 * (weeks - 1))
    mondays = [first + timedelta(days=7 * n) for n in range(weeks)]
    kept = {} if key in LIVE_ONLY else _kept(key, first, last.end)
    missing = [monday for monday in mondays if monday not in kept]
    live = (
        sl.compute(key, sl.Period(missing[0], last.end), by="week", as_of=as_of) if missing else {}
    )
    empty = sl.Figure(kind=sl.METRICS[key].kind)
    return [(monday, kept.get(monday) or live.get(monday, empty)) for monday in mondays]


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.0001"))


def freeze(actor: Actor, weeks: int = 12, as_of: date | None = None) -> int:
    """Keep the figures of the last ``weeks`` frozen weeks not kept yet; how many were kept."""
    as_of = as_of or utcnow().date()
    latest = sl.week_of(frozen_until(as_of)).start  # the weeks before it end by then
    last = sl.Period(latest - timedelta(days=7), latest)
    first = last.start - timedelta(days=7 * (weeks - 1))
    added = 0
    with unit_of_work() as sess:
        for key in sl.METRICS.keys() - LIVE_ONLY:
            kept = _kept(key, first, last.end)
            missing = [
                first + timedelta(days=7 * n)
                for n in range(weeks)
                if first + timedelta(days=7 * n) not in kept
            ]
            if not missing:
                continue
            found = sl.compute(key, sl.Period(missing[0], last.end), by="week", as_of=as_of)
            for monday in missing:
                figure = found.get(monday, sl.Figure(kind=sl.METRICS[key].kind))
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
