"""The weekly workbook on a schedule: due from SERVICE_LEVEL_REPORT_AT, queued once on real
Redis, made and kept once, and mailed once to a real SMTP server (aiosmtpd) as an attachment."""

from __future__ import annotations

import email
import io
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
from aiosmtpd.controller import Controller
from openpyxl import load_workbook
from sqlalchemy import func, select

from config import ConfigError, build_settings
from jobs import service_levels as job
from portal.models import AuditEvent, ServiceLevelReport, utcnow
from portal.services import service_levels as sl
from tests.test_notifications import Inbox, _free_port


@pytest.fixture
def mail_to(clean_db) -> Iterator[Inbox]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    app = clean_db
    keys = ("MAIL_SERVER", "MAIL_PORT", "SERVICE_LEVEL_REPORT_MAIL_TO", "SERVICE_LEVEL_REPORT_AT")
    saved = {key: app.config[key] for key in keys}
    app.config.update(
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=port,
        SERVICE_LEVEL_REPORT_MAIL_TO="ops@ob.test, lead@ob.test",
        SERVICE_LEVEL_REPORT_AT="mon 07:00",
    )
    yield inbox
    app.config.update(saved)
    controller.stop()


def _monday(weeks_ago: int, hour: int, minute: int) -> datetime:
    today = utcnow().date()
    monday = today - timedelta(days=today.weekday() + 7 * weeks_ago)
    return datetime.combine(monday, time(hour, minute), UTC)


def _reports() -> int:
    from portal.extensions import db

    return db.session.execute(select(func.count()).select_from(ServiceLevelReport)).scalar_one()


def test_due_from_the_setting_made_kept_and_mailed_once(mail_to) -> None:
    from portal.extensions import db

    assert job.due_week(_monday(1, 6, 59)) is None
    week = job.due_week(_monday(1, 7, 0))
    assert week == sl.week_of(_monday(2, 7, 0).date())
    report_id = job.make_weekly_report(week.label)
    assert job.make_weekly_report(week.label) == report_id  # a retry: nothing twice
    assert _reports() == 1 and job.due_week(_monday(1, 9, 0)) is None
    assert len(mail_to.messages) == 1
    recipients, raw = mail_to.messages[0]
    assert sorted(recipients) == ["lead@ob.test", "ops@ob.test"]
    message = email.message_from_string(raw)
    assert message["Subject"] == f"Order health {week.label}"
    (attachment,) = [part for part in message.walk() if part.get_filename()]
    assert attachment.get_filename() == f"order-health_{week.label}.xlsx"
    book = load_workbook(io.BytesIO(attachment.get_payload(decode=True)))
    assert book.sheetnames[0] == "Summary"
    kept = db.session.get(ServiceLevelReport, report_id)
    assert (kept.channel, kept.made_by, kept.mailed_to) == (
        "schedule",
        "job:weekly_report",
        "ops@ob.test, lead@ob.test",
    )
    actions = db.session.execute(
        select(AuditEvent.action).where(AuditEvent.entity == "service_level_report")
    ).scalars()
    assert sorted(actions) == ["mail", "report"]


def test_queued_once_across_schedulers_on_redis(mail_to, clean_db) -> None:
    from jobs.queue import connection, get_queue

    now = _monday(3, 7, 30)
    label = sl.last_complete_week(now.date()).label
    queue = get_queue("reports")
    try:
        assert job.enqueue_weekly_report(now) == label
        assert job.enqueue_weekly_report(now) is None  # the week's slot is claimed
        queued = [queue.fetch_job(job_id) for job_id in queue.job_ids]
        assert [(j.func_name, j.args) for j in queued] == [
            ("jobs.service_levels.make_weekly_report", (label,))
        ]
    finally:
        queue.empty()
        connection().delete(f"orderbridge:weekly-report:{label}")
    clean_db.config["SERVICE_LEVEL_REPORT_AT"] = ""
    assert job.due_week(now) is None  # off


def test_the_schedule_setting_is_checked(monkeypatch) -> None:
    monkeypatch.setenv("ORDERBRIDGE_MODE", "test")
    monkeypatch.setenv("SERVICE_LEVEL_REPORT_AT", "Fri 16:30")
    assert build_settings()["SERVICE_LEVEL_REPORT_AT"] == "fri 16:30"
    monkeypatch.setenv("SERVICE_LEVEL_REPORT_AT", "off")
    assert build_settings()["SERVICE_LEVEL_REPORT_AT"] == ""
    monkeypatch.setenv("SERVICE_LEVEL_REPORT_AT", "monday 7am")
    with pytest.raises(ConfigError, match="SERVICE_LEVEL_REPORT_AT must be a weekday"):
        build_settings()
    monkeypatch.setenv("SERVICE_LEVEL_REPORT_AT", "mon 07:00")
    monkeypatch.setenv("SERVICE_LEVEL_REPORT_MAIL_TO", "ops@ob.test\nBcc: x@evil.test")
    with pytest.raises(ConfigError, match="SERVICE_LEVEL_REPORT_MAIL_TO"):
        build_settings()
