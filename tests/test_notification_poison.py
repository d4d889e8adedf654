"""Issue 11, poison messages: one bad message never stops the outbox.

Real SMTP (aiosmtpd): a stored recipient with a line break is failed at once with the reason
and the next message goes out in the same run; a server that is down is retried with backoff
then given up on; addresses are checked where they are entered; an Admin fixes the recipient
and requeues (API and page), a Specialist cannot.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from flask import current_app
from sqlalchemy import select, text

import config
from portal.extensions import db
from portal.models import AuditEvent, CustomerContact, Notification, utcnow
from portal.security import ADMIN_ACTIONS, ROLE_PERMISSIONS
from portal.services import notifications
from portal.services.base import PermissionDenied
from tests.conftest import actor, api_headers, login
from tests.factories import make_catalog, shipped_order

POISON = "a@example.com\nBcc: x@evil.example"


class Inbox(Sink):
    """Keeps what it receives; refuses recipients and messages as told."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []
        self.rcpt_replies: dict[str, str] = {}  # address → reply (e.g. "550 no such user")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode()))
        return "250 OK"

    def recipients(self) -> list[str]:
        return sorted(address for rcpt, _ in self.messages for address in rcpt)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp(clean_db, monkeypatch) -> Iterator[Inbox]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    app = clean_db
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", port)
    monkeypatch.setitem(app.config, "ORDERS_TEAM_EMAIL", "")
    yield inbox
    controller.stop()


def _two_messages() -> tuple[Notification, Notification]:
    """A shipped order's two messages (confirmed, shipped), to its contact only."""
    order, _ = shipped_order(make_catalog(), 4)
    first, second = db.session.scalars(
        select(Notification).where(Notification.order_id == order.id).order_by(Notification.id)
    ).all()
    return first, second


def _store_recipients(message: Notification, recipients: str) -> None:
    """Legacy data: written straight to the table, behind the services' back."""
    db.session.execute(
        text("UPDATE notification SET recipients = :r WHERE id = :id"),
        {"r": recipients, "id": message.id},
    )
    db.session.commit()


def _events(message_id: int, action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.entity == "notification",
                AuditEvent.entity_id == str(message_id),
                AuditEvent.action == action,
            )
            .order_by(AuditEvent.id)
        )
    )


def _reload(message: Notification) -> Notification:
    db.session.expire_all()
    return db.session.get(Notification, message.id)


def test_a_line_break_in_a_stored_recipient_fails_that_message_and_the_next_is_sent(
    smtp: Inbox,
) -> None:
    first, second = _two_messages()
    _store_recipients(first, POISON)
    assert notifications.send_due() == {"sent": 1, "retry": 0, "failed": 1}
    first, second = _reload(first), _reload(second)
    assert first.status == "failed" and first.attempts == 1 and first.sent_at is None
    assert "control characters" in first.last_error
    assert second.status == "sent"
    assert smtp.recipients() == ["ann@acme.example"]
    assert not any("evil" in body for _, body in smtp.messages)
    (event,) = _events(first.id, "fail")
    assert event.actor == "job:send_notifications" and "control characters" in event.changes
    # The next run has nothing left to do: the failed message is out of the way for good.
    assert notifications.send_due(now=utcnow() + timedelta(days=1)) == {
        "sent": 0,
        "retry": 0,
        "failed": 0,
    }


def test_a_message_the_mail_library_refuses_to_build_fails_without_stopping_the_run(
    smtp: Inbox, monkeypatch
) -> None:
    """The header-injection check of ``email`` (a ValueError) is a permanent failure too."""
    first, _ = _two_messages()
    monkeypatch.setattr(notifications.email_addresses, "list_problem", lambda value: None)
    _store_recipients(first, POISON)
    assert notifications.send_due() == {"sent": 1, "retry": 0, "failed": 1}
    assert "ValueError" in _reload(first).last_error
    assert smtp.recipients() == ["ann@acme.example"]


def test_smtp_refusals_5xx_fail_at_once_4xx_are_retried(smtp: Inbox) -> None:
    first, second = _two_messages()
    _store_recipients(first, "gone@acme.example")
    smtp.rcpt_replies["gone@acme.example"] = "550 5.1.1 no such user"
    assert notifications.send_due() == {"sent": 1, "retry": 0, "failed": 1}
    assert "550" in _reload(first).last_error and _reload(first).status == "failed"

    _store_recipients(second, "busy@acme.example")
    db.session.execute(
        text("UPDATE notification SET status = 'queued' WHERE id = :id"), {"id": second.id}
    )
    db.session.commit()
    smtp.rcpt_replies["busy@acme.example"] = "450 4.2.1 mailbox busy"
    assert notifications.send_due() == {"sent": 0, "retry": 1, "failed": 0}
    second = _reload(second)
    assert second.status == "queued" and "450" in second.last_error


def test_a_server_that_is_down_is_retried_with_backoff_then_failed(clean_db, monkeypatch) -> None:
    app = clean_db
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", _free_port())  # nothing listens: refused
    monkeypatch.setitem(app.config, "NOTIFY_MAX_ATTEMPTS", 3)
    first, _ = _two_messages()
    start = utcnow()
    assert notifications.send_due(now=start) == {"sent": 0, "retry": 2, "failed": 0}
    first = _reload(first)
    assert first.attempts == 1 and "ConnectionRefusedError" in first.last_error
    assert first.next_attempt_at == start + timedelta(seconds=30)
    # Not due yet: nothing is tried.
    assert notifications.send_due(now=start + timedelta(seconds=29))["retry"] == 0
    second_try = start + timedelta(seconds=30)
    assert notifications.send_due(now=second_try) == {"sent": 0, "retry": 2, "failed": 0}
    first = _reload(first)
    assert first.attempts == 2 and first.next_attempt_at == second_try + timedelta(seconds=60)
    assert notifications.send_due(now=second_try + timedelta(seconds=60)) == {
        "sent": 0,
        "retry": 0,
        "failed": 2,
    }
    first = _reload(first)
    assert first.status == "failed" and first.attempts == 3
    assert "no attempts left" in _events(first.id, "fail")[0].changes


def test_an_address_with_a_line_break_is_refused_where_it_is_entered(clean_db) -> None:
    app = clean_db
    data = make_catalog(stock=0)
    headers = api_headers(app, "supervisor")
    client = app.test_client()
    response = client.post(
        "/api/v1/customer_contact/",
        json={
            "customer_id": data.customer.id,
            "name": "Eve",
            "email": POISON.replace("\n", "\r\n"),
        },
        headers=headers,
    )
    assert response.status_code == 422, response.json
    assert list(response.json["errors"]) == ["email"]
    assert "control characters" in response.json["errors"]["email"][0]
    response = client.put(
        f"/api/v1/customer/{data.customer.id}", json={"email": "orders@acme"}, headers=headers
    )
    assert response.status_code == 422 and list(response.json["errors"]) == ["email"]
    good = client.post(
        "/api/v1/customer_contact/",
        json={"customer_id": data.customer.id, "name": "Bob", "email": "bob@acme.example"},
        headers=headers,
    )
    assert good.status_code == 201, good.json
    # The page: the form is refused with the field's message, nothing is stored.
    browser = login(app, "supervisor")
    page = browser.post(
        "/customercontactview/add",
        data={
            "customer": str(data.customer.id),
            "name": "Eve",
            "email": POISON,
            "receives_notifications": "y",
        },
        follow_redirects=True,
    )
    assert "Email: must not contain control characters" in page.get_data(as_text=True)
    names = db.session.scalars(select(CustomerContact.name)).all()
    assert sorted(names) == ["Ann Buyer", "Bob"]


def test_a_line_break_in_a_mail_setting_stops_startup_with_one_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("ORDERBRIDGE_MODE", "test")
    monkeypatch.setenv("ORDERS_TEAM_EMAIL", "team@ob.test\r\nBcc: x@evil.example")
    monkeypatch.setenv("AUDIT_CHECKPOINT_MAIL_TO", "auditors")
    with pytest.raises(config.ConfigError) as error:
        config.build_settings()
    assert "ORDERS_TEAM_EMAIL" in str(error.value) and "AUDIT_CHECKPOINT_MAIL_TO" in str(
        error.value
    )
    monkeypatch.setenv("ORDERS_TEAM_EMAIL", "team@ob.test, ops@ob.test")
    monkeypatch.setenv("AUDIT_CHECKPOINT_MAIL_TO", "auditors@ob.test")
    assert config.build_settings()["NOTIFY_MAX_ATTEMPTS"] == 8


def test_admin_fixes_the_recipient_and_requeues_through_the_api(smtp: Inbox) -> None:
    app = current_app._get_current_object()
    first, second = _two_messages()
    _store_recipients(first, POISON)
    notifications.send_due()
    headers = api_headers(app, "admin")
    client = app.test_client()
    url = f"/api/v1/notification/{first.id}/requeue"
    # As stored, the address cannot be requeued; a bad correction neither.
    response = client.post(url, json={}, headers=headers)
    assert response.status_code == 422 and list(response.json["errors"]) == ["recipient"]
    response = client.post(url, json={"recipient": "fixed@acme.example\nBcc: x"}, headers=headers)
    assert response.status_code == 422 and list(response.json["errors"]) == ["recipient"]
    assert client.post(url, json={"to": "x"}, headers=headers).status_code == 422
    # A sent message is not requeued (its state is refused before any input is looked at).
    response = client.post(
        f"/api/v1/notification/{second.id}/requeue", json={"recipient": "bad"}, headers=headers
    )
    assert response.status_code == 409 and "only a failed message" in response.json["message"]
    response = client.post(url, json={"recipient": "fixed@acme.example"}, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["result"]["status"] == "queued"
    assert response.json["result"]["recipients"] == "fixed@acme.example"
    (event,) = _events(first.id, "requeue")
    assert event.actor == "admin" and POISON.split("\n")[0] in event.changes
    assert "fixed@acme.example" in event.changes
    assert notifications.send_due() == {"sent": 1, "retry": 0, "failed": 0}
    assert _reload(first).status == "sent"
    assert "fixed@acme.example" in smtp.recipients()


def test_specialist_may_not_requeue_and_the_refusal_is_audited(smtp: Inbox) -> None:
    app = current_app._get_current_object()
    first, _ = _two_messages()
    _store_recipients(first, POISON)
    notifications.send_due()
    response = app.test_client().post(
        f"/api/v1/notification/{first.id}/requeue",
        json={"recipient": "fixed@acme.example"},
        headers=api_headers(app, "specialist"),
    )
    assert response.status_code == 403
    (refusal,) = _events(first.id, "requeue_refused")
    assert refusal.actor == "specialist"
    assert _reload(first).status == "failed" and _reload(first).recipients == POISON
    # The page's form and the list's row action refuse too, and audit it.
    browser = login(app, "specialist")
    browser.post(f"/notificationview/requeue/{first.id}", data={"recipient": "x@acme.example"})
    browser.post(
        "/notificationview/action_post", data={"action": "requeue", "rowid": [str(first.id)]}
    )
    assert len(_events(first.id, "requeue_refused")) == 2
    assert _reload(first).status == "failed"
    # The service itself refuses too (a job or a future route cannot bypass it), before it
    # looks at the input.
    with pytest.raises(PermissionDenied):
        notifications.requeue(_reload(first), actor("specialist"), "still bad")


def test_admin_requeues_from_the_page_and_the_row_action_rechecks_each_row(smtp: Inbox) -> None:
    app = current_app._get_current_object()
    first, second = _two_messages()
    _store_recipients(first, POISON)
    notifications.send_due()
    browser = login(app, "admin")
    page = browser.get(f"/notificationview/show/{first.id}").get_data(as_text=True)
    assert 'id="action-requeue"' in page
    sent_page = browser.get(f"/notificationview/show/{second.id}").get_data(as_text=True)
    assert 'id="action-requeue"' not in sent_page
    # The row action runs each row through the service: the sent one is refused, the failed
    # one (stored address still bad) too, with the reason.
    response = browser.post(
        "/notificationview/action_post",
        data={"action": "requeue", "rowid": [str(first.id), str(second.id)]},
        follow_redirects=True,
    )
    body = response.get_data(as_text=True)
    assert f"Notification {second.id} not requeued" in body
    assert f"Notification {first.id} not requeued" in body
    assert _reload(first).status == "failed"
    response = browser.post(
        f"/notificationview/requeue/{first.id}",
        data={"recipient": "fixed@acme.example"},
        follow_redirects=True,
    )
    assert f"Notification {first.id} requeued" in response.get_data(as_text=True)
    assert _reload(first).status == "queued"
    assert notifications.send_due()["sent"] == 1
    assert "fixed@acme.example" in smtp.recipients()


def test_only_admin_holds_the_requeue_permission() -> None:
    assert ("can_requeue", "Notification") in ADMIN_ACTIONS
    for role, permissions in ROLE_PERMISSIONS.items():
        assert not permissions & ADMIN_ACTIONS, role
