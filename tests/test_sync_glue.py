"""The sync glue refuses what a sheet may not do: stale edits and fields the kind forbids."""

from __future__ import annotations

import pytest

from jobs.sync import sync_tracker
from portal.extensions import db
from portal.services import trackers
from portal.services.base import ValidationFailed
from portal.sync.adapters import apply_update
from portal.sync.base import sheet_actor
from portal.sync.kinds import get_kind
from sheets.engine import RecordUpdate
from tests.sync_helpers import make_orders, make_tracker, order


@pytest.fixture
def tracked(clean_db, tmp_path):
    number = make_orders(1)[0].number
    return make_tracker(tmp_path / "orders.xlsx"), number


def test_a_sheet_edit_of_a_field_changed_in_the_portal_since_the_merge_is_refused(
    tracked,
) -> None:
    tracker, number = tracked
    spec = tracker.spec()
    stale = RecordUpdate(number, 2, {"customer_po": "FROM-SHEET"}, {"customer_po": "PO-OLD"})
    result = apply_update(spec, None, stale)
    assert result.error and "customer_po changed in the portal during this sync" in result.error
    assert order(number).customer_po == "PO-1"

    fresh = RecordUpdate(number, 2, {"customer_po": "FROM-SHEET"}, {"customer_po": "PO-1"})
    assert apply_update(spec, None, fresh).error is None
    assert order(number).customer_po == "FROM-SHEET"


def test_a_field_the_kind_does_not_let_a_sheet_edit_is_refused(tracked) -> None:
    tracker, number = tracked
    with pytest.raises(ValidationFailed) as refused:
        get_kind("orders").update(
            number, {"status": "cancelled"}, sheet_actor(tracker.name), tracker.name
        )
    assert refused.value.field_errors == {"status": ["is not editable from a tracker"]}
    assert order(number).status == "draft"


def test_loading_the_base_leaves_the_callers_session_alone(tracked) -> None:
    tracker, number = tracked
    assert sync_tracker(tracker.id)["status"] == "succeeded"  # stores the base
    record = order(number)
    record.notes = "not saved yet"
    base, _ = trackers.load_base(tracker.id, tracker.spec())
    assert base[number]["Notes"] == "note 1"
    assert record.notes == "not saved yet"  # a rollback would have reloaded "note 1"
    db.session.rollback()
    assert order(number).notes == "note 1"  # it was the caller's to keep or drop
