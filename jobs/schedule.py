"""The scheduler: tracker syncs on their intervals, plus the periodic maintenance jobs.

:func:`tick` is one pass; ``orderbridge scheduler`` (or ``orderbridge sheets schedule --loop``)
ticks every ``--every`` seconds (default 15), each time after :func:`jobs.recovery.sweep`,
which puts the jobs of dead workers back on their queues, and queues the weekly order-health
workbook when it is due (:mod:`jobs.service_levels`). A tracker is due when
``interval_seconds`` > 0 and its last sync run (of any outcome) started at least that long
ago; a tracker whose sync is queued or running is never enqueued again. Each periodic job
(:data:`PERIODIC`) is enqueued at most once per its interval across all scheduler processes:
a Redis ``SET NX EX`` key claims the slot.
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from jobs.context import app_job
from jobs.live import FileWatcher
from jobs.recovery import sweep
from jobs.service_levels import enqueue_weekly_report
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


# name → (seconds between runs, queue, "module:function")
PERIODIC: dict[str, tuple[int, str, str]] = {
    "send_notifications": (60, "notify", "jobs.notify:send_notifications"),
    "fill_backorders": (600, "default", "jobs.fulfillment:fill_all_backorders"),
    "verify_audit_chain": (86_400, "default", "jobs.maintenance:verify_audit_chain"),
    "checkpoint_audit_chain": (86_400, "default", "jobs.maintenance:checkpoint_audit_chain"),
    "purge_idempotency_keys": (3600, "default", "jobs.maintenance:purge_idempotency_keys"),
    "keep_service_levels": (60, "reports", "jobs.service_levels:keep_service_levels"),
}


def run_periodic() -> list[str]:
    """Enqueue each periodic job whose slot is free; the names enqueued."""
    from importlib import import_module

    from jobs.queue import connection, get_queue

    enqueued = []
    for name, (interval, queue, target) in PERIODIC.items():
        if connection().set(f"orderbridge:periodic:{name}", "1", nx=True, ex=interval):
            module, function = target.split(":")
            get_queue(queue).enqueue(getattr(import_module(module), function))
            enqueued.append(name)
    return enqueued


EVERY = 15.0  # seconds between ticks: a dead worker's job runs again within this of its lock
WATCH_EVERY = 1.0  # seconds between two polls of the .xlsx trackers' files


def run_forever(
    every: float = EVERY, stop: threading.Event | None = None, watch_every: float = WATCH_EVERY
) -> None:
    """Sweep for abandoned jobs and tick every ``every`` seconds until ``stop`` is set (setting
    it ends the wait at once); in between, poll the ``.xlsx`` trackers' files every
    ``watch_every`` seconds (:class:`jobs.live.FileWatcher`: a saved file syncs soon)."""
    stop = stop or threading.Event()
    watcher = FileWatcher()
    next_tick = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_tick:
            sweep()
            tick()
            run_periodic()
            enqueue_weekly_report()
            app_job(watcher.refresh)()
            next_tick = time.monotonic() + every
        app_job(watcher.poll)()
        stop.wait(max(0.0, min(watch_every, next_tick - time.monotonic())))


def stop_on_signals() -> threading.Event:
    """An event that SIGTERM or SIGINT sets: the loop then stops before its next tick.

    Call it in the main thread (signal handlers live there); the handler only sets the event,
    so a tick in progress finishes and the process exits within a tick, never a full interval.
    """
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop
