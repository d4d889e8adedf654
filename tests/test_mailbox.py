"""The demo's mailbox: a real SMTP sink fed by the real worker, read on the Mailbox page.

The page exists in demo mode only. The suite's app runs in test mode (one AppBuilder per
process), so the demo-mode page is read by a child process that builds the app in demo mode
on the same database and signs in with Flask's test client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from config import build_settings
from portal import mailbox
from portal.extensions import db
from portal.models import Notification, utcnow
from portal.services import fulfillment, lifecycle, orders
from tests.conftest import REPO, TEST_PASSWORD, login
from tests.factories import SETUP, make_catalog

HOSTILE_PO = "<script>alert('po')</script>"

PAGE_SCRIPT = textwrap.dedent(
    """
    import json, re, sys
    from portal import create_app

    app = create_app({"WTF_CSRF_ENABLED": False, "MAILBOX_DIR": sys.argv[1]})
    out = {}
    for user in ("specialist", "auditor"):
        client = app.test_client()
        signed_in = client.post("/login/", data={"username": user, "password": sys.argv[2]})
        listing = client.get("/mailbox/")
        html = listing.get_data(as_text=True)
        links = re.findall(r'href="(/mailbox/[^"]+\\.eml)"', html)
        shown = client.get(links[0]) if links else None
        out[user] = {
            "login": signed_in.status_code,
            "list": listing.status_code,
            "list_html": html,
            "links": links,
            "show": shown.status_code if shown else None,
            "show_html": shown.get_data(as_text=True) if shown else "",
            "traversal": client.get("/mailbox/..%2Fsink.port").status_code,
        }
    print(json.dumps(out))
    """
)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The demo's sink process (``python -m portal.mailbox``), storing into a folder."""
    folder = tmp_path / "mailbox"
    child, port = mailbox.start_sink(folder)
    yield folder, port
    child.terminate()
    child.wait(timeout=10)


def _confirmed_order():
    data = make_catalog()
    order = orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "customer_po": HOSTILE_PO,
            "requested_date": utcnow().date() + timedelta(days=14),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [{"product_id": data.products[0].id, "quantity": 4}],
        SETUP,
    )
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, SETUP)
    return order


def _run_worker(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "portal.cli", "worker", "--burst", "--queue", "notify"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_confirmed_orders_mail_reaches_the_sink_and_the_mailbox_page_shows_it_escaped(
    clean_db, test_env, sink
) -> None:
    folder, port = sink
    order = _confirmed_order()  # queues the "confirmed" message and its send job
    env = dict(os.environ, **test_env, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(port))
    _run_worker(env)  # the real send path: RQ job → notifications.send_due → SMTP

    db.session.expire_all()
    (message,) = db.session.query(Notification).filter_by(order_id=order.id).all()
    assert (message.event, message.status, message.last_error) == ("confirmed", "sent", None)
    (stored,) = mailbox.messages(folder)
    assert stored.subject == f"Order {order.number} confirmed"
    assert stored.to == "ann@acme.example"
    assert HOSTILE_PO in stored.body  # the mail itself is plain text, as sent

    page_env = dict(env, ORDERBRIDGE_MODE="demo", SECRET_KEY=build_settings()["SECRET_KEY"])
    done = subprocess.run(
        [sys.executable, "-c", PAGE_SCRIPT, str(folder), TEST_PASSWORD],
        cwd=REPO,
        env=page_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pages = json.loads(done.stdout.strip().splitlines()[-1])
    for user, page in pages.items():  # every role reads the mailbox
        assert (page["login"], page["list"], page["show"]) == (302, 200, 200), user
        assert f"Order {order.number} confirmed" in page["list_html"]
        assert "ann@acme.example" in page["list_html"]
        assert page["links"] == [f"/mailbox/{stored.name}"]
        body = page["show_html"]
        assert f"Order {order.number} confirmed" in body
        assert "we have confirmed your order" in body
        assert HOSTILE_PO not in body  # escaped, never markup
        assert "&lt;script&gt;alert(&#39;po&#39;)&lt;/script&gt;" in body
        assert page["traversal"] == 404


def test_the_mailbox_page_does_not_exist_outside_demo_mode(app) -> None:
    assert app.config["ORDERBRIDGE_MODE"] == "test"
    assert not app.config["MAILBOX_ENABLED"]
    assert not any(rule.rule.startswith("/mailbox") for rule in app.url_map.iter_rules())
    client = login(app, "admin")
    assert client.get("/mailbox/").status_code == 404
    assert "Mailbox" not in client.get("/").get_data(as_text=True)


def test_only_demo_mode_enables_the_mailbox(monkeypatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    monkeypatch.setenv("AUDIT_HMAC_KEYS", "k1:" + "ab" * 16)
    enabled = {
        mode: build_settings({"ORDERBRIDGE_MODE": mode})["MAILBOX_ENABLED"]
        for mode in ("production", "demo", "test")
    }
    assert enabled == {"production": False, "demo": True, "test": False}


def test_the_mailbox_reads_only_its_own_message_files(tmp_path: Path) -> None:
    handler = mailbox.MailboxHandler(tmp_path)
    stored = handler.store(
        ["a@example.test"],
        b"From: x@example.test\r\nTo: a@example.test\r\nSubject: hi\r\n\r\nbody\r\n",
    )
    (tmp_path / "secret.txt").write_text("not mail")
    assert mailbox.message(tmp_path, stored.name).subject == "hi"
    assert mailbox.message(tmp_path, "../secret.txt") is None
    assert mailbox.message(tmp_path, "secret.txt") is None
    assert mailbox.message(tmp_path, "missing.eml") is None
    assert [m.name for m in mailbox.messages(tmp_path)] == [stored.name]
