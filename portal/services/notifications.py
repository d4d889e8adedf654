"""The notification outbox: order events become messages, sent over SMTP by an RQ job.

Messages are rendered from plain Jinja files in ``portal/templates/notifications/<event>.txt``
(first line ``Subject: …``) and stored as ``queued``. :func:`send_due` delivers them one unit
of work each, so no message can stop the others: a permanent failure (a bad address, a 5xx
refusal) is marked ``failed`` at once, a temporary one is retried with exponential backoff up
to ``NOTIFY_MAX_ATTEMPTS`` attempts. A message is never dropped: an Admin fixes the recipient
of a failed one and requeues it (:func:`requeue`).
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from flask import current_app, render_template
from sqlalchemy import or_, select

from portal.extensions import db
from portal.models import Notification, NotificationStatus, SalesOrder, utcnow
from portal.services import audit, email_addresses, events, states, units
from portal.services.base import (
    Actor,
    ConflictError,
    PermissionDenied,
    ValidationFailed,
    unit_of_work,
)

EVENTS = (
    "confirmed",
    "backordered",
    "shipped",
    "delayed",
    "delivered",
    "cancelled",
    "amended",
    "credit_approved",
    "dispute_resolved",
)
MAX_ATTEMPTS = 8  # the default of NOTIFY_MAX_ATTEMPTS
RECIPIENTS_LENGTH = Notification.__table__.c.recipients.type.length
SENDER = Actor.system("job:send_notifications")
log = logging.getLogger(__name__)


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
    text = render_template(
        f"notifications/{event}.txt",
        order=order,
        qty=units.quantity_text,
        price=units.price_text,
        **context,
    )
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


class UndeliverableAddress(ValueError):
    """A stored recipient breaks the address rule (entered before the rule, or behind the
    services' back): the message cannot be sent as it is."""


def _send(message: Notification) -> dict[str, tuple[int, bytes]]:
    problem = email_addresses.list_problem(message.recipients)
    if problem is not None:
        raise UndeliverableAddress(f"recipient {problem}")
    return send_mail(message.recipients, message.subject, message.body)


def send_mail(
    recipients: str,
    subject: str,
    body: str,
    attachments: Sequence[tuple[str, bytes, str]] = (),
) -> dict[str, tuple[int, bytes]]:
    """Send one plain-text message over the configured SMTP server (the MAIL_* settings),
    with ``attachments`` given as (file name, content, MIME type).

    Returns the recipients the server refused when it took the message for the others.
    """
    config = current_app.config
    email = EmailMessage()
    email["From"] = config["MAIL_DEFAULT_SENDER"]
    email["To"] = recipients
    email["Subject"] = subject
    email.set_content(body)
    for filename, content, mime_type in attachments:
        maintype, _, subtype = mime_type.partition("/")
        email.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=20) as smtp:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls()
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        return smtp.send_message(email)


def is_permanent(error: BaseException) -> bool:
    """Whether sending the message again cannot help (its own fault, not the server's state).

    Permanent: a recipient that breaks the address rule or a message that cannot be built
    (``ValueError``: e.g. a line break in a header), every recipient refused with a 5xx, the
    data refused with a 5xx, a feature the message needs and the server lacks (SMTPUTF8).
    Anything else (connection refused or dropped, timeouts, 4xx replies, the sender or the
    login refused: the server's or the settings' state) is temporary and retried.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500
    return isinstance(error, ValueError | smtplib.SMTPNotSupportedError)


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(
            f"{address}: {code} {reply.decode(errors='replace')}"
            for address, (code, reply) in error.recipients.items()
        )
        return f"SMTPRecipientsRefused: {refused}"[:500]
    return f"{type(error).__name__}: {error}"[:500]


def max_attempts() -> int:
    return int(current_app.config.get("NOTIFY_MAX_ATTEMPTS", MAX_ATTEMPTS))


def send_due(
    now: datetime | None = None, limit: int = 100, actor: Actor = SENDER
) -> dict[str, int]:
    """Send queued messages whose next attempt is due; returns counts sent / retried / failed.

    Each message is sent and its outcome saved in a unit of work of its own, and whatever
    happens to one message the run goes on with the next: a permanent failure
    (:func:`is_permanent`) is marked ``failed`` at once with the reason (audited), a
    temporary one is retried after an exponential backoff until ``NOTIFY_MAX_ATTEMPTS``
    attempts, then marked failed. A failed message waits for an Admin (:func:`requeue`).
    """
    now = now or utcnow()
    due = db.session.execute(
        select(Notification.id)
        .where(Notification.status == NotificationStatus.QUEUED.value, _due(now))
        .order_by(Notification.id)
        .limit(limit)
    )
    ids = list(due.scalars())
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for message_id in ids:
        try:
            outcome = _attempt(message_id, now, actor)
        except Exception:  # the outcome could not be saved: log it, go on with the next one
            log.exception("notification %s: could not save the outcome of sending", message_id)
            continue
        if outcome is not None:
            counts[outcome] += 1
    return counts


def _due(now: datetime) -> Any:
    return or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now)


def _attempt(message_id: int, now: datetime, actor: Actor) -> str | None:
    """Send one message in its own unit of work; ``sent``, ``retry``, ``failed`` or ``None``
    (another run has it: PostgreSQL skips a row a concurrent run holds)."""
    with unit_of_work() as sess:
        message = sess.execute(
            select(Notification)
            .where(
                Notification.id == message_id,
                Notification.status == NotificationStatus.QUEUED.value,
                _due(now),
            )
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if message is None:
            return None
        message.attempts += 1
        try:
            refused = _send(message)
        except Exception as error:  # whatever it is, no message may stop the others
            return _failed(message, error, now, actor)
        message.status = NotificationStatus.SENT.value
        message.sent_at = utcnow()
        message.last_error = _describe(smtplib.SMTPRecipientsRefused(refused)) if refused else None
        return "sent"


def _failed(message: Notification, error: Exception, now: datetime, actor: Actor) -> str:
    reason = _describe(error)
    permanent = is_permanent(error)
    if not permanent and not isinstance(error, OSError | smtplib.SMTPException):
        log.error("notification %s: unexpected error while sending", message.id, exc_info=error)
    if permanent or message.attempts >= max_attempts():
        log.warning(
            "notification %s failed after %s attempt(s): %s", message.id, message.attempts, reason
        )
        states.transition(
            message,
            NotificationStatus.FAILED.value,
            actor,
            reason="permanent failure" if permanent else "no attempts left",
            fields={"last_error": reason},
            detail={"attempts": message.attempts},
        )
        return "failed"
    message.last_error = reason
    message.next_attempt_at = now + _backoff(message.attempts)
    return "retry"


def requeue(message: Notification, actor: Actor, recipient: str | None = None) -> Notification:
    """Put a failed message back in the outbox, to ``recipient`` (a corrected address or
    comma-separated addresses) if given; audited with the old and new recipients.

    Only for an actor holding ``can_requeue`` on notifications (403), only for a failed
    message (409); the recipients must pass the address rule (422 on ``recipient``), so a
    message that failed for a bad stored address is requeued only with a fixed one.
    """
    if not actor.can(*states.REQUEUE):
        raise PermissionDenied(f"{actor.name} may not requeue notifications")
    if message.status != NotificationStatus.FAILED.value:
        raise ConflictError(
            f"notification {message.id} is {message.status}; only a failed message is requeued"
        )
    recipients = message.recipients if recipient is None else recipient.strip()
    problem = email_addresses.list_problem(recipients)
    if problem is not None:
        stored = "" if recipient is not None else "the stored recipient: "
        raise ValidationFailed({"recipient": [f"{stored}{problem}"]})
    recipients = ", ".join(email_addresses.split_list(recipients))
    if len(recipients) > RECIPIENTS_LENGTH:
        raise ValidationFailed({"recipient": [f"is longer than {RECIPIENTS_LENGTH} characters"]})
    fields: dict[str, Any] = {"attempts": 0, "next_attempt_at": utcnow()}
    if recipients != message.recipients:
        fields["recipients"] = recipients
    with unit_of_work():
        states.transition(message, NotificationStatus.QUEUED.value, actor, fields=fields)
        events.announce(events.NOTIFICATION_QUEUED)
    return message
