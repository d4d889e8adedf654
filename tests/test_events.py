"""After-commit announcements: services announce, jobs' handlers enqueue the work."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from jobs import queue
from jobs.handlers import fill_after_receipt
from portal.extensions import db
from portal.models import Backorder, Notification, utcnow
from portal.services import events, fulfillment, inventory, lifecycle, orders
from portal.services.base import unit_of_work
from tests.conftest import REPO
from tests.factories import SETUP, make_catalog


@pytest.fixture
def heard(ctx):
    """What a test handler heard of ``stock_received`` announcements."""
    calls: list[dict] = []

    def handler(**payload) -> None:
        calls.append(payload)

    events.subscribe(events.STOCK_RECEIVED, handler)
    yield calls
    events.unsubscribe(events.STOCK_RECEIVED, handler)


def test_handlers_run_once_after_commit_and_never_after_rollback(heard) -> None:
    with unit_of_work():
        events.announce(events.STOCK_RECEIVED, product_id=1, open_backorders=False)
        events.announce(events.STOCK_RECEIVED, product_id=1, open_backorders=False)
        events.announce(events.STOCK_RECEIVED, product_id=2, open_backorders=True)
        assert heard == []  # nothing before the commit
    assert heard == [
        {"product_id": 1, "open_backorders": False},
        {"product_id": 2, "open_backorders": True},
    ]
    heard.clear()
    with pytest.raises(RuntimeError), unit_of_work():
        events.announce(events.STOCK_RECEIVED, product_id=3, open_backorders=True)
        raise RuntimeError("the change fails")
    with unit_of_work():
        pass
    assert heard == []


def test_a_failing_handler_does_not_undo_or_fail_the_committed_change(heard) -> None:
    def broken(**payload) -> None:
        raise RuntimeError("handler bug")

    events.subscribe(events.STOCK_RECEIVED, broken)
    try:
        with unit_of_work():
            events.announce(events.STOCK_RECEIVED, product_id=1, open_backorders=False)
    finally:
        events.unsubscribe(events.STOCK_RECEIVED, broken)
    assert heard == [{"product_id": 1, "open_backorders": False}]


def test_unknown_announcements_are_refused(ctx) -> None:
    with pytest.raises(ValueError, match="unknown announcement"):
        events.announce("stock_recieved", product_id=1)
    with pytest.raises(ValueError, match="unknown announcement"):
        events.subscribe("stock_recieved", print)


def test_the_app_subscribes_the_job_handlers(app) -> None:
    assert fill_after_receipt in events._handlers[events.STOCK_RECEIVED]
    assert events._handlers[events.NOTIFICATION_QUEUED]


def _backordered_order(data):
    order = orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "customer_po": "PO-EVENTS",
            "requested_date": utcnow().date() + timedelta(days=14),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [{"product_id": data.products[0].id, "quantity": 10}],
        SETUP,
    )
    lifecycle.confirm(order, SETUP)
    fulfillment.allocate(order, SETUP)
    return order


def test_a_receipt_queues_the_backorder_fill_after_commit_and_a_worker_fills_it(
    clean_db,
) -> None:
    """No scheduler runs here: the receipt's own announcement gets the backorder filled."""
    default = queue.get_queue("default")
    default.empty()
    data = make_catalog(stock=0)
    order = _backordered_order(data)
    assert db.session.query(Backorder).one().status == "open"
    notify = queue.get_queue("notify")
    assert notify.count >= 1  # the "backordered" mail was queued for sending
    notify.empty()
    with unit_of_work():
        inventory.receive(data.products[0].id, data.warehouses[0].id, 10, SETUP)
        assert default.count == 0  # not before the commit
    assert [job.func_name for job in default.jobs] == ["jobs.fulfillment.fill_backorders"]
    done = subprocess.run(
        [sys.executable, "-m", "portal.cli", "worker", "--burst", "--no-scheduler"],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    db.session.expire_all()
    assert db.session.query(Backorder).one().status == "filled"
    assert order.lines[0].qty_allocated == 10
    assert db.session.query(Notification).count() >= 1


def test_a_receipt_without_open_backorders_queues_nothing(clean_db) -> None:
    default = queue.get_queue("default")
    default.empty()
    data = make_catalog(stock=0)
    inventory.receive(data.products[0].id, data.warehouses[0].id, 10, SETUP)
    assert default.count == 0


def test_a_unit_of_work_failing_before_any_statement_leaves_nothing_to_the_next_commit(
    clean_db, heard
) -> None:
    from portal.models import AuditEvent
    from portal.services import audit

    db.session.commit()  # no transaction open: the failing unit of work sends no SQL at all
    with pytest.raises(RuntimeError), unit_of_work():
        audit.record(SETUP, "leak-check", 1, "noted")
        events.announce(events.STOCK_RECEIVED, product_id=999, open_backorders=True)
        raise RuntimeError("refused before any statement")
    make_catalog()  # commits, and announces its own receipts
    assert {"product_id": 999, "open_backorders": True} not in heard
    assert db.session.query(AuditEvent).filter_by(entity="leak-check").count() == 0
