"""The notification outbox: order events become messages, sent over SMTP by an RQ job.

Messages are rendered from plain Jinja files in ``portal/templates/notifications/<event>.txt``
(first line ``Subject: …``) and stored as ``queued``. :func:`send_due` delivers them, retrying
failures with exponential backoff; a message is never dropped, only marked ``failed`` after
``MAX_ATTEMPTS`` (an admin can requeue it).
"""

from __future__ import annotations

import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from flask import current_app, render_template
from sqlalchemy import or_, select

from portal.extensions import db
from portal.models import Notification, NotificationStatus, SalesOrder, utcnow
from portal.services import audit, events
from portal.services.base import Actor, ConflictError, unit_of_work

EVENTS = (
    "confirmed",
    "backordered",
    "shipped",
    "delayed",
    "delivered",
    "cancelled",
    "credit_approved",
    "dispute_resolved",
)
MAX_ATTEMPTS = 8


def recipients_for(order: SalesOrder) -> list[str]:
    """The customer's notification contacts and the internal team address."""
    addresses = [
        contact.email for contact in order.customer.contacts if contact.receives_notifications
    ]
    if not addresses and order.customer.email:
        addresses.append(order.customer.email)
    team = current_app.config.get("ORDERS_TEAM_EMAIL")
    if team:
        addresses.append(team)
    return list(dict.fromkeys(addresses))


def notify(order: SalesOrder, event: str, actor: Actor, **context: Any) -> Notification | None:
    """Queue the message for ``event`` on ``order`` in the caller's transaction."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    recipients = recipients_for(order)
    if not recipients:
        return None
    text = render_template(f"notifications/{event}.txt", order=order, **context)
    first, _, body = text.partition("\n")
    subject = first.removeprefix("Subject:").strip()
    message = Notification(
        order_id=order.id,
        event=event,
        recipients=", ".join(recipients),
        subject=subject[:200],
        body=body.lstrip("\n"),
        status=NotificationStatus.QUEUED.value,
        next_attempt_at=utcnow(),
    )
    db.session.add(message)
    audit.record(actor, "notification", message, "queue", detail={"event": event})
    events.announce(events.NOTIFICATION_QUEUED)
    return message


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


def _send(message: Notification) -> None:
    send_mail(message.recipients, message.subject, message.body)


def send_mail(recipients: str, subject: str, body: str) -> None:
    """Send one plain-text message over the configured SMTP server (the MAIL_* settings)."""
    config = current_app.config
    email = EmailMessage()
    email["From"] = config["MAIL_DEFAULT_SENDER"]
    email["To"] = recipients
    email["Subject"] = subject
    email.set_content(body)
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=20) as smtp:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls()
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        smtp.send_message(email)


def send_due(now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Send queued messages whose next attempt is due; returns counts sent / retried / failed."""
    now = now or utcnow()
    due = (
        db.session.execute(
            select(Notification)
            .where(
                Notification.status == NotificationStatus.QUEUED.value,
                or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now),
            )
            .order_by(Notification.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for message in due:
        with unit_of_work():  # each message's outcome is saved as soon as it is known
            message.attempts += 1
            try:
                _send(message)
            except (OSError, smtplib.SMTPException) as error:
                message.last_error = f"{type(error).__name__}: {error}"[:500]
                if message.attempts >= MAX_ATTEMPTS:
                    message.status = NotificationStatus.FAILED.value
                    counts["failed"] += 1
                else:
                    message.next_attempt_at = now + _backoff(message.attempts)
                    counts["retry"] += 1
            else:
                message.status = NotificationStatus.SENT.value
                message.sent_at = utcnow()
                message.last_error = None
                counts["sent"] += 1
    return counts


def requeue(message: Notification, actor: Actor) -> Notification:
    """Put a failed message back in the outbox."""
    if message.status != NotificationStatus.FAILED.value:
        raise ConflictError(f"notification {message.id} is {message.status}, not failed")
    with unit_of_work():
        message.status = NotificationStatus.QUEUED.value
        message.attempts = 0
        message.next_attempt_at = utcnow()
        audit.record(actor, "notification", message.id, "requeue")
    return message
