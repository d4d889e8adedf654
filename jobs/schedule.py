"""The sync scheduler: enqueue each enabled tracker whose interval has elapsed.

:func:`tick` is one pass; ``orderbridge sheets schedule`` runs one tick, or ``--loop`` ticks
every ``--every`` seconds (run one such process per deployment, e.g. beside the workers). A
tracker is due when ``interval_seconds`` > 0 and its last sync run (of any outcome) started at
least that long ago. A tracker whose sync is queued or running is never enqueued again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from jobs.context import app_job
from jobs.sync import enqueue_sync, is_running
from portal.extensions import db
from portal.models import SyncRun, Tracker, utcnow


def due_trackers(now: datetime) -> list[int]:
    """Ids of enabled, scheduled trackers whose interval has elapsed at ``now``."""
    last = (
        select(SyncRun.tracker_id, func.max(SyncRun.started_at).label("last"))
        .group_by(SyncRun.tracker_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Tracker.id, Tracker.interval_seconds, last.c.last)
        .outerjoin(last, last.c.tracker_id == Tracker.id)
        .where(Tracker.enabled.is_(True), Tracker.interval_seconds > 0)
        .order_by(Tracker.id)
    ).all()
    due = []
    for tracker_id, interval, started in rows:
        if isinstance(started, str):  # some drivers return aggregates as text
            started = datetime.fromisoformat(started)
        if started is not None and started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        if started is None or now - started >= timedelta(seconds=interval):
            due.append(tracker_id)
    return due


@app_job
def tick(now: datetime | None = None) -> list[int]:
    """Enqueue every due tracker not already queued or running; the ids enqueued."""
    enqueued = []
    for tracker_id in due_trackers(now or utcnow()):
        if not is_running(tracker_id) and enqueue_sync(tracker_id) is not None:
            enqueued.append(tracker_id)
    db.session.rollback()
    return enqueued


def run_forever(every: float = 30.0) -> None:
    """Tick every ``every`` seconds until interrupted."""
    while True:
        tick()
        time.sleep(every)
