"""Crash safety: a sync raising at each step, then retried, ends where an uninterrupted run ends.

Each case runs the same scenario twice on a freshly wiped database (order numbers restart, so
both runs are identical copies): once straight through, once with the sync raising at one step
and then run again. DB records, the sheet and the stored base must come out the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import jobs.sync as sync_job
from jobs.sync import sync_tracker
from portal.extensions import db
from portal.models import (
    AuditEvent,
    SalesOrder,
    SyncConflict,
    SyncRun,
    Tracker,
)
from portal.services import orders, trackers
from portal.sync import adapters
from sheets.backends.xlsx import XlsxBackend
from tests.conftest import wipe_business_tables
from tests.factories import SETUP
from tests.sync_helpers import TAB, append_row, edit, make_orders, make_tracker, order, sheet


class Crash(RuntimeError):
    """The simulated crash."""


def _scenario(path: Path) -> int:
    """Orders, a tracker, a first sync; then edits on both sides waiting for the next sync."""
    numbers = [o.number for o in make_orders(3)]
    tracker = make_tracker(path)
    sync_tracker(tracker.id)
    edit(path, numbers[0], {"Customer PO": "SHEET-PO", "Notes": "sheet note"})
    edit(path, numbers[1], {"Incoterm": "BAD"})  # fails validation: stays, explained
    edit(path, numbers[2], {"Requested": "2031-01-15"})
    append_row(path, {"Customer": "C1", "Customer PO": "NEW-1", "Notes": "typed"})
    orders.orders.update(order(numbers[1]), {"notes": "portal note"}, SETUP)
    return tracker.id


def _state(path: Path, tracker_id: int) -> dict[str, Any]:
    db.session.expire_all()
    records = [
        (o.number, o.customer_po, o.notes, o.incoterm, o.requested_date, o.version)
        for o in db.session.query(SalesOrder).order_by(SalesOrder.number)
    ]
    events = sorted(
        (e.entity, e.action, e.actor, e.changes)
        for e in db.session.query(AuditEvent).filter(AuditEvent.actor.like("sheet:%"))
    )
    tracker = db.session.get(Tracker, tracker_id)
    return {
        "records": records,
        "events": events,
        "sheet": XlsxBackend(path, TAB).read().rows,
        "base": trackers.load_base(tracker_id, tracker.spec())[0],
        "conflicts": db.session.query(SyncConflict).count(),
    }


def _fresh() -> None:
    db.session.rollback()
    wipe_business_tables()


def _after(original):
    def wrapper(*args, **kwargs):
        original(*args, **kwargs)
        raise Crash("after")

    return wrapper


def _mid_apply(original):
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash("between two batches")
        return original(*args, **kwargs)

    return wrapper


def _before(original):
    def wrapper(*args, **kwargs):
        raise Crash("before")

    return wrapper


STEPS = {
    "after_read": (sync_job, "_read", _after),
    "mid_apply": (adapters, "apply_chunk", _mid_apply),  # between two batches of edits
    "after_db_apply": (sync_job, "_apply", _after),
    "after_sheet_write": (sync_job, "_write", _after),
    "before_commit": (sync_job, "_commit", _before),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_crash_at_each_step_then_retry_ends_like_an_uninterrupted_run(
    clean_db, tmp_path, monkeypatch, step
) -> None:
    straight = tmp_path / "straight.xlsx"
    tracker_id = _scenario(straight)
    outcome = sync_tracker(tracker_id)
    assert outcome["applied"] == 2 and outcome["created"] == 1 and outcome["errors"] == 1
    expected = _state(straight, tracker_id)
    assert sync_tracker(tracker_id)["written"] == 0

    _fresh()
    crashed = tmp_path / "crashed.xlsx"
    tracker_id = _scenario(crashed)
    module, name, wrap = STEPS[step]
    with monkeypatch.context() as patch:
        patch.setattr(adapters, "BATCH_ROWS", 1)  # one edit per batch: a crash between two
        patch.setattr(module, name, wrap(getattr(module, name)))
        with pytest.raises(Crash):
            sync_tracker(tracker_id)
    db.session.expire_all()
    failed = db.session.query(SyncRun).filter_by(tracker_id=tracker_id).all()[-1]
    assert failed.status == "failed" and "Crash" in failed.error
    sync_tracker(tracker_id)  # the retry
    assert _state(crashed, tracker_id) == expected
    again = sync_tracker(tracker_id)
    assert (again["applied"], again["created"], again["written"]) == (0, 0, 0)


def test_workbook_saved_by_someone_else_between_read_and_write_keeps_their_edit(
    clean_db, tmp_path, monkeypatch
) -> None:
    path = tmp_path / "orders.xlsx"
    numbers = [o.number for o in make_orders(2)]
    tracker = make_tracker(path)
    sync_tracker(tracker.id)
    orders.orders.update(order(numbers[0]), {"notes": "from the portal"}, SETUP)
    original = sync_job._read
    saves = {"n": 0}

    def read_then_someone_saves(backend):
        snapshot = original(backend)
        if saves["n"] == 0:
            saves["n"] += 1
            edit(path, numbers[1], {"Customer PO": "THEIR-EDIT"})  # Excel saves meanwhile
        return snapshot

    monkeypatch.setattr(sync_job, "_read", read_then_someone_saves)
    outcome = sync_tracker(tracker.id)
    assert outcome["attempts"] == 2 and outcome["applied"] == 1
    after = sheet(path)
    assert after[numbers[1]]["Customer PO"] == "THEIR-EDIT"
    assert after[numbers[0]]["Notes"] == "from the portal"
    assert order(numbers[1]).customer_po == "THEIR-EDIT"
