"""Service levels on a schedule: closed days kept, and the weekly workbook made and mailed.

:func:`keep_service_levels` (a periodic job of ``jobs.schedule``, every minute on the
``reports`` queue) keeps the closed days' figures (``service_levels_keep.keep``: days never
kept, and days whose records changed), then — closed days first — today's partial figures
when today changed (``service_levels_keep.keep_today``), under a Redis lock, so two workers
never do it at once.

``SERVICE_LEVEL_REPORT_AT`` (default ``mon 07:00``, UTC; ``off`` disables it) is when; from
then the scheduler's loop (:func:`enqueue_weekly_report`, called by ``jobs.schedule``) queues
:func:`make_weekly_report` for the last complete ISO week, once per week across all scheduler
processes (a Redis ``SET NX`` claim). The job first keeps the closed days
(:func:`keep_service_levels`) and stores the figures of the weeks now closed
(``service_levels_snapshots.freeze``), then keeps the workbook (``weekly_report.make``,
audited) and mails it to ``SERVICE_LEVEL_REPORT_MAIL_TO``; run again — a retry after an SMTP
failure — it neither makes a second workbook nor mails twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import current_app
from rq import Retry

from jobs.context import app_job
from portal.models import utcnow
from portal.services import (
    service_levels,
    service_levels_keep,
    service_levels_snapshots,
    weekly_report,
)
from portal.services.base import Actor

JOB_ACTOR = "job:weekly_report"
KEEP_ACTOR = "job:keep_service_levels"
KEEP_LOCK = "orderbridge:service-levels:keep"
KEEP_LOCK_SECONDS = 1800  # a dead worker's lock frees the job again after this
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLAIM_SECONDS = 7 * 86_400
RETRY = Retry(max=3, interval=[60, 300, 900])


def slot(setting: str, now: datetime) -> datetime | None:
    """When this week's report is due by ``setting`` (``mon 07:00``); None when it is off."""
    if not setting:
        return None
    day, clock = setting.split()
    hour, minute = (int(part) for part in clock.split(":"))
    monday = now.date() - timedelta(days=now.weekday())
    on = monday + timedelta(days=WEEKDAYS.index(day))
    return datetime.combine(on, time(hour, minute), UTC)


def due_week(now: datetime) -> service_levels.Period | None:
    """The week whose report is due at ``now`` and not made yet by the schedule."""
    when = slot(current_app.config["SERVICE_LEVEL_REPORT_AT"], now)
    if when is None or now < when:
        return None
    week = service_levels.last_complete_week(now.date())
    if weekly_report.scheduled(week) is not None:
        return None
    return week


@app_job
def enqueue_weekly_report(now: datetime | None = None) -> str | None:
    """Queue the due week's report once (across schedulers); the week label queued."""
    from jobs.queue import connection, get_queue

    week = due_week(now or utcnow())
    if week is None:
        return None
    if not connection().set(
        f"orderbridge:weekly-report:{week.label}", "1", nx=True, ex=CLAIM_SECONDS
    ):
        return None
    get_queue("reports").enqueue(make_weekly_report, week.label, retry=RETRY)
    return week.label


@app_job
def keep_service_levels() -> int | None:
    """Keep the closed days that need it, then today if it changed, unless another worker
    holds the lock (None); the number of days kept (today included)."""
    from jobs.queue import connection

    lock = connection().lock(KEEP_LOCK, timeout=KEEP_LOCK_SECONDS, thread_local=False)
    if not lock.acquire(blocking=False):
        return None
    try:
        actor = Actor.system(KEEP_ACTOR)
        kept = service_levels_keep.keep(actor)
        return kept + service_levels_keep.keep_today(actor)
    finally:
        lock.release()


@app_job
def make_weekly_report(week_label: str) -> int:
    """Make (once) and mail (once) the workbook of ``week_label``; the kept report's id."""
    actor = Actor.system(JOB_ACTOR)
    week = service_levels.parse_week(week_label)
    keep_service_levels()
    service_levels_snapshots.freeze(actor)
    report = weekly_report.scheduled(week) or weekly_report.make(actor, "schedule", week)
    recipients = current_app.config.get("SERVICE_LEVEL_REPORT_MAIL_TO", "")
    if recipients and report.mailed_to is None:
        weekly_report.mail(report, recipients)
        weekly_report.record_mailed(report, recipients, actor)
    return report.id
