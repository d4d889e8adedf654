"""Making the weekly order-health workbook: compute, write, keep, audit, mail.

``make`` builds the workbook of an ISO week (default: the last complete week) from the
scorecard, the root-cause Pareto and the detail sheets, keeps it in
``service_level_report`` for download and audits it (``report`` on ``service_level_report``),
whoever asked: the CLI, the page's download button, the API or the Monday job, which also
mails it (``SERVICE_LEVEL_REPORT_MAIL_TO``).
"""

from __future__ import annotations

import hashlib
import io
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import defer

from portal.extensions import db
from portal.models import ServiceLevelReport, utcnow
from portal.security import WEEKLY_REPORT
from portal.services import audit, email_addresses, notifications, weekly_workbook
from portal.services import service_levels as sl
from portal.services.base import Actor, NotFound, ValidationFailed, require, unit_of_work
from portal.services.service_level_targets import scorecard
from portal.services.service_levels_causes import pareto
from portal.services.weekly_report_data import detail_sheets

CHANNELS = ("cli", "web", "api", "schedule")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def file_name(week: sl.Period) -> str:
    return f"order-health_{week.label}.xlsx"


def workbook_bytes(week: sl.Period, as_of: date | None = None) -> bytes:
    """The workbook of ``week`` as of ``as_of`` (default today), not kept nor audited."""
    as_of = as_of or utcnow().date()
    return weekly_workbook.build(
        week, scorecard(week, as_of), pareto(week, as_of), detail_sheets(week, as_of)
    )


def make(
    actor: Actor,
    channel: str,
    week: sl.Period | None = None,
) -> ServiceLevelReport:
    """Make, keep and audit the workbook of ``week`` (default the last complete week)."""
    require(actor, *WEEKLY_REPORT, "make the weekly order-health report")
    if channel not in CHANNELS:
        raise ValidationFailed({"channel": [f"one of {', '.join(CHANNELS)}"]})
    week = week or sl.last_complete_week()
    if week.start > utcnow().date():
        raise ValidationFailed({"week": [f"{week.label} has not started yet"]})
    content = workbook_bytes(week)
    with unit_of_work() as sess:
        report = ServiceLevelReport(
            week=week.label,
            made_at=utcnow(),
            made_by=actor.name,
            channel=channel,
            filename=file_name(week),
            size=len(content),
            content=content,
        )
        sess.add(report)
        sess.flush()
        audit.record(
            actor,
            "service_level_report",
            report.id,
            "report",
            after={
                "week": week.label,
                "channel": channel,
                "filename": report.filename,
                "size": report.size,
                "sha256": hashlib.sha256(content).hexdigest(),
            },
        )
    return report


def io_of(report: ServiceLevelReport) -> io.BytesIO:
    """The kept workbook as a file object (for a download)."""
    return io.BytesIO(report.content)


def mail(report: ServiceLevelReport, recipients: str) -> None:
    """Send the kept workbook to ``recipients`` (a comma-separated list) as an attachment."""
    problem = email_addresses.list_problem(recipients)
    if problem is not None:
        raise ValidationFailed({"recipients": [problem]})
    notifications.send_mail(
        recipients,
        f"Order health {report.week}",
        f"The weekly order-health workbook of {report.week} is attached.\n",
        attachments=[(report.filename, report.content, XLSX_TYPE)],
    )


def scheduled(week: sl.Period) -> ServiceLevelReport | None:
    """The report the schedule made of ``week``, if it did."""
    query = select(ServiceLevelReport).where(
        ServiceLevelReport.week == week.label, ServiceLevelReport.channel == "schedule"
    )
    return db.session.execute(query.order_by(ServiceLevelReport.id).limit(1)).scalar_one_or_none()


def record_mailed(report: ServiceLevelReport, recipients: str, actor: Actor) -> None:
    """Note (and audit) that the kept report was mailed to ``recipients``."""
    with unit_of_work():
        report.mailed_to = recipients
        audit.record(
            actor, "service_level_report", report.id, "mail", after={"mailed_to": recipients}
        )


def latest(actor: Actor, limit: int = 20) -> list[ServiceLevelReport]:
    """The reports kept, newest first (without loading their files)."""
    require(actor, *WEEKLY_REPORT, "see the weekly order-health reports")
    query = (
        select(ServiceLevelReport)
        .options(defer(ServiceLevelReport.content))
        .order_by(ServiceLevelReport.id.desc())
        .limit(limit)
    )
    return list(db.session.execute(query).scalars())


def kept(report_id: int, actor: Actor) -> ServiceLevelReport:
    """One kept report, for download."""
    require(actor, *WEEKLY_REPORT, "download the weekly order-health report")
    report = db.session.get(ServiceLevelReport, report_id)
    if report is None:
        raise NotFound(f"report {report_id} does not exist")
    return report
