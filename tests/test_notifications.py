"""Order notifications: outbox, real SMTP delivery (aiosmtpd), retries, order timeline."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink

from portal.extensions import db
from portal.models import Notification, utcnow
from portal.services import notifications
from tests.factories import SETUP, make_catalog, shipped_order


class Inbox(Sink):
    """An SMTP handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode()))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp(clean_db) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    app = clean_db
    saved = (app.config["MAIL_SERVER"], app.config["MAIL_PORT"], app.config["ORDERS_TEAM_EMAIL"])
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, ORDERS_TEAM_EMAIL="team@ob.test")
    yield inbox, port
    app.config.update(MAIL_SERVER=saved[0], MAIL_PORT=saved[1], ORDERS_TEAM_EMAIL=saved[2])
    controller.stop()


def _shipped_order(data):
    order, _ = shipped_order(
        data, 4, customer_po="PO-77", carrier="DHL Express", tracking_number="JD0146"
    )
    return order


def test_shipment_notification_reaches_a_real_smtp_server(smtp) -> None:
    inbox, _ = smtp
    data = make_catalog()
    order = _shipped_order(data)
    counts = notifications.send_due()
    assert counts == {"sent": 2, "retry": 0, "failed": 0}
    shipped = [body for _, body in inbox.messages if "shipped" in body.split("\n\n")[0]]
    assert len(shipped) == 1
    recipients = next(rcpt for rcpt, body in inbox.messages if body in shipped)
    assert sorted(recipients) == ["ann@acme.example", "team@ob.test"]
    assert f"Subject: Order {order.number} shipped" in shipped[0]
    assert "DHL Express" in shipped[0] and "JD0146" in shipped[0]
    rows = db.session.query(Notification).order_by(Notification.id).all()
    assert [(n.event, n.status) for n in rows] == [("confirmed", "sent"), ("shipped", "sent")]
    assert all(n.sent_at is not None for n in rows)
    assert notifications.send_due() == {"sent": 0, "retry": 0, "failed": 0}


def test_a_failing_smtp_server_leaves_the_message_queued_for_retry(clean_db) -> None:
    app = clean_db
    data = make_catalog()
    order = _shipped_order(data)
    dead_port = _free_port()  # nothing listens there
    saved = (app.config["MAIL_SERVER"], app.config["MAIL_PORT"])
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=dead_port)
    try:
        counts = notifications.send_due()
    finally:
        app.config.update(MAIL_SERVER=saved[0], MAIL_PORT=saved[1])
    assert counts == {"sent": 0, "retry": 2, "failed": 0}
    message = db.session.query(Notification).filter_by(event="shipped").one()
    assert message.status == "queued" and message.attempts == 1
    assert "ConnectionRefusedError" in message.last_error
    assert message.next_attempt_at > utcnow()
    # Not due yet: a second run right away leaves it alone.
    assert notifications.send_due()["retry"] == 0
    # After the back-off, a working server gets it.
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    try:
        counts = notifications.send_due(now=utcnow() + timedelta(hours=2))
    finally:
        app.config.update(MAIL_SERVER=saved[0], MAIL_PORT=saved[1])
        controller.stop()
    assert counts["sent"] == 2
    assert any(order.number in body for _, body in inbox.messages)


def test_a_message_failing_every_attempt_is_marked_failed_and_can_be_requeued(clean_db) -> None:
    app = clean_db
    data = make_catalog()
    _shipped_order(data)
    saved = (app.config["MAIL_SERVER"], app.config["MAIL_PORT"])
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=_free_port())
    try:
        moment = utcnow()
        for _ in range(notifications.MAX_ATTEMPTS):
            moment += timedelta(hours=2)
            notifications.send_due(now=moment)
    finally:
        app.config.update(MAIL_SERVER=saved[0], MAIL_PORT=saved[1])
    failed = db.session.query(Notification).filter_by(status="failed").all()
    assert len(failed) == 2
    notifications.requeue(failed[0], SETUP)
    assert failed[0].status == "queued" and failed[0].attempts == 0
