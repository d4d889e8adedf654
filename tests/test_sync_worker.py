"""The sync job in real RQ worker processes: one sync per tracker at a time, and kill -9."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from jobs import queue
from jobs.sync import is_running, sync_tracker
from portal.extensions import db
from portal.models import SyncRun, SyncRunStatus
from portal.services import orders
from tests import sync_slow_worker as slow
from tests.factories import SETUP
from tests.sync_helpers import append_row, edit, make_orders, make_tracker, order, sheet

LOCK_SECONDS = "2"


@pytest.fixture(autouse=True)
def _empty_sync_queue(test_env) -> None:
    """Jobs queued by other tests (e.g. a "Sync now" click) must not reach these workers."""
    queue.get_queue("sync").empty()


def _worker(step: str) -> subprocess.Popen:
    """A burst sync worker whose first sync stops after ``step`` until it gets a line."""
    return slow.start(step, "sync", dict(os.environ, ORDERBRIDGE_SYNC_LOCK_SECONDS=LOCK_SECONDS))


def _wait_until_lock_expires(tracker_id: int, timeout: float = 10) -> None:
    """Wait for the expiry of the tracker's lock (a Redis keyspace event), not a clock."""
    conn = queue.connection()
    conn.config_set("notify-keyspace-events", "Ex")
    events = conn.pubsub()
    events.psubscribe("__keyevent@*__:expired")
    try:
        deadline = time.monotonic() + timeout
        while is_running(tracker_id):
            left = deadline - time.monotonic()
            assert left > 0, "the dead worker's lock never expired"
            events.get_message(timeout=left)
    finally:
        events.close()


def _runs(tracker_id: int) -> list[SyncRun]:
    db.session.expire_all()
    runs = db.session.query(SyncRun).filter_by(tracker_id=tracker_id).order_by(SyncRun.id).all()
    db.session.rollback()
    return runs


def test_two_syncs_of_one_tracker_never_run_at_once(clean_db, tmp_path) -> None:
    numbers = [o.number for o in make_orders(2)]
    path = tmp_path / "orders.xlsx"
    tracker = make_tracker(path)
    sync_tracker(tracker.id)
    edit(path, numbers[0], {"Customer PO": "FROM-SHEET"})
    for _ in range(2):
        queue.get_queue("sync").enqueue(sync_tracker, tracker.id)
    holder = _worker("read")  # holds the tracker's lock in its first sync until told to go
    slow.wait_reached(holder)
    assert any(r.status == SyncRunStatus.RUNNING.value for r in _runs(tracker.id))
    second = _worker("none")  # takes the other job while the first one runs
    output, _ = second.communicate(timeout=90)
    assert second.returncode == 0, output
    output, _ = holder.communicate(input="go\n", timeout=90)
    assert holder.returncode == 0, output
    runs = _runs(tracker.id)[1:]
    done = [r for r in runs if r.status == SyncRunStatus.SUCCEEDED.value]
    skipped = [r for r in runs if r.status == SyncRunStatus.SKIPPED.value]
    assert len(skipped) == 1 and "another sync" in skipped[0].error
    # the skipped sync asked the running one to sync again when done: a follow-up run
    assert len(done) == 2 and len(runs) == 3
    first, follow_up = done
    assert skipped[0].started_at < first.finished_at  # it came while the first one ran
    assert follow_up.started_at >= first.finished_at  # never two at once
    assert first.applied == 1 and follow_up.applied == 0
    assert order(numbers[0]).customer_po == "FROM-SHEET"


def test_worker_killed_mid_sync_then_rerun_ends_consistent(clean_db, tmp_path) -> None:
    numbers = [o.number for o in make_orders(2)]
    path = tmp_path / "orders.xlsx"
    tracker = make_tracker(path)
    sync_tracker(tracker.id)
    edit(path, numbers[0], {"Customer PO": "FROM-SHEET"})
    append_row(path, {"Customer": "C1", "Customer PO": "NEW-ROW"})
    orders.orders.update(order(numbers[1]), {"notes": "from the portal"}, SETUP)
    before = path.read_bytes()
    queue.get_queue("sync").enqueue(sync_tracker, tracker.id)
    worker = _worker("apply")  # records applied, then it holds before the sheet write
    slow.wait_reached(worker)
    assert order(numbers[0]).customer_po == "FROM-SHEET" and len(_orders()) == 3
    db.session.rollback()
    slow.kill(worker)  # and its work horse, which RQ runs in a session of its own
    assert path.read_bytes() == before  # killed before the write
    _wait_until_lock_expires(tracker.id)  # the dead worker's lock expires

    outcome = sync_tracker(tracker.id)
    assert outcome["applied"] == 0 and outcome["created"] == 0  # both were done before the kill
    after = sheet(path)
    assert after[numbers[0]]["Customer PO"] == "FROM-SHEET"
    assert after[numbers[1]]["Notes"] == "from the portal"
    new_keys = [k for k in after if k not in numbers]
    assert len(new_keys) == 1 and after[new_keys[0]]["Customer PO"] == "NEW-ROW"
    assert len(_orders()) == 3  # created once
    runs = _runs(tracker.id)
    assert runs[-2].status == SyncRunStatus.INTERRUPTED.value
    assert runs[-1].status == SyncRunStatus.SUCCEEDED.value
    assert sync_tracker(tracker.id)["written"] == 0


def _orders() -> list:
    from portal.models import SalesOrder

    db.session.expire_all()
    found = db.session.query(SalesOrder).all()
    db.session.rollback()
    return found
