"""A row deleted from a tracker: recorded, never appended again, and the tracker's policy
(ignore, cancel, ask a Supervisor) decides what becomes of its record."""

from __future__ import annotations

import pytest

from jobs.sync import sync_tracker
from portal.extensions import db
from portal.models import DeletedRowStatus, SyncDeletedRow
from portal.services import sync_review, sync_runs, trackers
from portal.services.base import PermissionDenied, ValidationFailed
from tests.conftest import actor, login
from tests.sync_helpers import (
    ADMIN,
    append_row,
    delete_row,
    last_run,
    make_orders,
    make_tracker,
    order,
    sheet,
)


def _deleted_tracker(tmp_path, policy: str):
    numbers = [o.number for o in make_orders(3)]
    path = tmp_path / "orders.xlsx"
    tracker = make_tracker(path)
    trackers.trackers.update(tracker, {"deleted_row_policy": policy}, ADMIN)
    sync_tracker(tracker.id)
    delete_row(path, numbers[1])
    sync_tracker(tracker.id)
    return tracker, path, numbers


def _deleted_outcome(tracker_id: int):
    rows = sync_runs.run_rows(last_run(tracker_id).id, "deleted")
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize(
    ("policy", "status", "order_status", "said"),
    [
        ("ignore", "ignored", "draft", "record kept"),
        ("cancel", "cancelled", "cancelled", "record cancelled"),
        ("ask", "review", "draft", "waiting for a supervisor"),
    ],
)
def test_deleted_row_follows_the_trackers_policy_and_stays_deleted(
    clean_db, tmp_path, policy, status, order_status, said
) -> None:
    tracker, path, numbers = _deleted_tracker(tmp_path, policy)
    outcome = _deleted_outcome(tracker.id)
    assert outcome.key == numbers[1] and outcome.message.endswith(said)
    row = db.session.query(SyncDeletedRow).filter_by(tracker_id=tracker.id).one()
    assert row.status == status
    assert order(numbers[1]).status == order_status
    sync_tracker(tracker.id)  # the next sync neither appends it again nor reports it again
    assert numbers[1] not in sheet(path)
    assert sync_runs.run_rows(last_run(tracker.id).id, "deleted") == []
    assert db.session.query(SyncDeletedRow).count() == 1


def test_supervisor_decides_a_deleted_row_and_putting_it_back_appends_it(
    clean_db, tmp_path
) -> None:
    tracker, path, numbers = _deleted_tracker(tmp_path, "ask")
    row = db.session.query(SyncDeletedRow).one()
    with pytest.raises(PermissionDenied):
        sync_review.decide(row, "restore", actor("specialist"))
    with pytest.raises(ValidationFailed):
        sync_review.decide(row, "nonsense", actor("supervisor"))
    sync_review.decide(row, "restore", actor("supervisor"))
    assert row.status == DeletedRowStatus.RESTORED.value
    sync_tracker(tracker.id)
    assert sheet(path)[numbers[1]]["Customer PO"] == "PO-2"


def test_supervisor_cancels_a_deleted_rows_record_from_the_review_page(clean_db, tmp_path) -> None:
    _, _, numbers = _deleted_tracker(tmp_path, "ask")
    row_id = db.session.query(SyncDeletedRow).one().id
    page = login(clean_db, "supervisor").get(f"/syncdeletedrowview/show/{row_id}")
    assert b"Cancel the record" in page.data
    specialist = login(clean_db, "specialist")
    assert b"Cancel the record" not in specialist.get(f"/syncdeletedrowview/show/{row_id}").data
    denied = specialist.post(f"/syncdeletedrowview/decide/{row_id}", data={"choice": "cancel"})
    assert denied.status_code in (302, 403) and order(numbers[1]).status == "draft"
    done = login(clean_db, "supervisor").post(
        f"/syncdeletedrowview/decide/{row_id}", data={"choice": "cancel"}
    )
    assert done.status_code == 302
    assert order(numbers[1]).status == "cancelled"
    db.session.expire_all()
    assert db.session.get(SyncDeletedRow, row_id).status == "cancelled"


def test_key_typed_back_ends_the_deletion(clean_db, tmp_path) -> None:
    tracker, path, numbers = _deleted_tracker(tmp_path, "ignore")
    append_row(path, {"Order No": numbers[1], "Customer PO": "PO-2"})
    sync_tracker(tracker.id)
    db.session.expire_all()
    assert db.session.query(SyncDeletedRow).one().status == "restored"
    assert sheet(path)[numbers[1]]["Notes"] == "note 2"  # the blank cell filled from the portal


def test_cancel_policy_is_refused_for_stock_levels(clean_db, tmp_path) -> None:
    with pytest.raises(ValidationFailed) as refused:
        trackers.trackers.create(
            {
                "name": "stock",
                "kind": "stock_levels",
                "location": str(tmp_path / "stock.xlsx"),
                "tab": "Stock",
                "deleted_row_policy": "cancel",
            },
            ADMIN,
        )
    assert "cannot be cancelled" in str(refused.value.field_errors["deleted_row_policy"])
