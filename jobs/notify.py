"""Notification jobs: sending the outbox over SMTP."""

from __future__ import annotations

import logging

from jobs.context import app_job
from portal.services import notifications

log = logging.getLogger(__name__)


@app_job
def send_notifications() -> dict[str, int]:
    """Send every queued message that is due; failures are retried later with backoff."""
    return notifications.send_due()


def enqueue_send() -> None:
    """Queue a send run; if Redis is down the scheduled run picks the messages up."""
    from jobs.queue import enqueue

    try:
        enqueue(send_notifications, queue="notify")
    except Exception as error:  # Redis unreachable: the outbox keeps the message
        log.warning("could not queue notification sending: %s", error)
