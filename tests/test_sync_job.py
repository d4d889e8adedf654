"""The sync job end to end: a real .xlsx tracker, the real services and database, inline runs."""

from __future__ import annotations

import json

import pytest
from flask import current_app, g

from jobs.queue import get_queue
from jobs.sync import sync_tracker
from portal.extensions import db
from portal.models import (
    AuditEvent,
    ConflictStatus,
    SyncConflict,
    SyncRun,
    SyncRunStatus,
    TrackerBasePatch,
    TrackerSnapshot,
)
from portal.services import orders, sync_review, trackers
from portal.services.base import PermissionDenied, ValidationFailed
from sheets.backends.xlsx import XlsxBackend
from tests.conftest import actor, login
from tests.factories import SETUP
from tests.sync_helpers import (
    ADMIN,
    COLUMNS,
    TAB,
    append_row,
    delete_row,
    edit,
    init_workbook,
    last_run,
    make_orders,
    make_tracker,
    order,
    sheet,
)


@pytest.fixture
def setup(clean_db, tmp_path):
    made = make_orders(3)
    path = tmp_path / "orders.xlsx"
    tracker = make_tracker(path)
    assert sync_tracker(tracker.id)["status"] == "succeeded"  # first sync: base only
    return tracker, path, [o.number for o in made]


def test_sheet_edit_reaches_the_portal_through_the_services(setup) -> None:
    tracker, path, numbers = setup
    edit(path, numbers[0], {"Customer PO": "PO-NEW", "Incoterm": "FOB"})
    outcome = sync_tracker(tracker.id)
    assert outcome["applied"] == 1 and outcome["errors"] == 0
    assert order(numbers[0]).customer_po == "PO-NEW"
    assert order(numbers[0]).incoterm == "FOB"
    event = db.session.query(AuditEvent).filter_by(actor="sheet:orders-main").one()
    assert event.action == "update" and "PO-NEW" in event.changes
    run = last_run(tracker.id)
    assert run.status == SyncRunStatus.SUCCEEDED.value and run.applied == 1 and run.rows_read == 3


def test_portal_change_is_written_to_its_cell_only(setup) -> None:
    tracker, path, numbers = setup
    orders.orders.update(order(numbers[1]), {"notes": "call before delivery"}, SETUP)
    before = sheet(path)
    outcome = sync_tracker(tracker.id)
    assert outcome["written"] == 1
    after = sheet(path)
    assert after[numbers[1]]["Notes"] == "call before delivery"
    after[numbers[1]]["Notes"] = before[numbers[1]]["Notes"]
    assert after == before


def test_failed_validation_stays_in_the_cell_with_the_reason_then_applies_once_fixed(
    setup,
) -> None:
    tracker, path, numbers = setup
    edit(path, numbers[0], {"Incoterm": "XYZ"})
    outcome = sync_tracker(tracker.id)
    assert outcome["applied"] == 0 and outcome["errors"] == 1
    row = sheet(path)[numbers[0]]
    assert row["Incoterm"] == "XYZ"
    assert row["Sync status"].startswith("Error: not applied:") and "incoterm" in row["Sync status"]
    assert order(numbers[0]).incoterm is None
    sync_tracker(tracker.id)  # still wrong: still there, still explained
    assert sheet(path)[numbers[0]]["Incoterm"] == "XYZ"
    edit(path, numbers[0], {"Incoterm": "CIF"})
    assert sync_tracker(tracker.id)["applied"] == 1
    assert order(numbers[0]).incoterm == "CIF"
    assert sheet(path)[numbers[0]]["Sync status"] is None


@pytest.mark.parametrize(
    ("policy", "portal_value", "sheet_value"),
    [("portal_wins", "portal text", "portal text"), ("sheet_wins", "sheet text", "sheet text")],
)
def test_conflict_policies(clean_db, tmp_path, policy, portal_value, sheet_value) -> None:
    numbers = [o.number for o in make_orders(1)]
    path = tmp_path / "orders.xlsx"
    tracker = make_tracker(path, policy=policy)
    sync_tracker(tracker.id)
    edit(path, numbers[0], {"Notes": "sheet text"})
    orders.orders.update(order(numbers[0]), {"notes": "portal text"}, SETUP)
    outcome = sync_tracker(tracker.id)
    assert outcome["conflicts"] == 0
    assert order(numbers[0]).notes == portal_value
    row = sheet(path)[numbers[0]]
    assert row["Notes"] == sheet_value
    assert row["Sync status"].startswith("Note: Notes changed on both sides")
    assert sync_tracker(tracker.id)["written"] == 0


def test_flagged_conflict_is_resolved_by_a_supervisor_and_written_back(setup) -> None:
    tracker, path, numbers = setup
    edit(path, numbers[2], {"Notes": "sheet text"})
    orders.orders.update(order(numbers[2]), {"notes": "portal text"}, SETUP)
    assert sync_tracker(tracker.id)["conflicts"] == 1
    conflict = db.session.query(SyncConflict).one()
    assert (conflict.key, conflict.header, conflict.status) == (numbers[2], "Notes", "open")
    assert json.loads(conflict.sheet_value) == "sheet text"
    assert sheet(path)[numbers[2]]["Sync status"].startswith("Conflict: Notes changed")
    assert order(numbers[2]).notes == "portal text"  # neither side changed while flagged
    sync_tracker(tracker.id)
    assert db.session.query(SyncConflict).count() == 1  # still one, still open

    with pytest.raises(PermissionDenied):
        sync_review.resolve(conflict, "sheet", actor("specialist"))
    with pytest.raises(ValidationFailed):
        sync_review.resolve(conflict, "nonsense", actor("supervisor"))
    sync_review.resolve(conflict, "value", actor("supervisor"), value="agreed text")
    assert order(numbers[2]).notes == "agreed text"
    db.session.expire_all()
    assert conflict.status == ConflictStatus.RESOLVED.value and conflict.resolved_by == "supervisor"
    outcome = sync_tracker(tracker.id)
    assert outcome["written"] >= 1 and outcome["conflicts"] == 0
    row = sheet(path)[numbers[2]]
    assert row["Notes"] == "agreed text" and row["Sync status"] is None
    assert sync_tracker(tracker.id)["written"] == 0
    events = db.session.query(AuditEvent).filter_by(entity="sync_conflict").all()
    assert [e.action for e in events] == ["open", "resolve"]


def test_conflict_clears_itself_when_both_sides_agree_again(setup) -> None:
    tracker, path, numbers = setup
    edit(path, numbers[0], {"Notes": "A"})
    orders.orders.update(order(numbers[0]), {"notes": "B"}, SETUP)
    sync_tracker(tracker.id)
    edit(path, numbers[0], {"Notes": "B"})
    sync_tracker(tracker.id)
    db.session.expire_all()
    assert db.session.query(SyncConflict).one().status == ConflictStatus.CLEARED.value


def test_duplicated_key_flags_both_rows_and_applies_neither(setup) -> None:
    tracker, path, numbers = setup
    append_row(path, {"Order No": numbers[0], "Customer PO": "COPY", "Notes": "copy"})
    edit(path, numbers[0], {"Customer PO": "ORIGINAL-EDIT"})
    outcome = sync_tracker(tracker.id)
    assert outcome["applied"] == 0 and outcome["errors"] == 2
    rows = XlsxBackend(path, TAB).read().rows
    statuses = [r[-1] for r in rows[1:] if r[0] == numbers[0]]
    assert len(statuses) == 2
    assert all(s.startswith(f"Error: key {numbers[0]} is in rows 2, 5") for s in statuses)
    assert order(numbers[0]).customer_po == "PO-1"


def test_blank_key_row_creates_an_order_once_and_gets_its_key(setup) -> None:
    tracker, path, numbers = setup
    row = append_row(path, {"Customer": "C1", "Customer PO": "PO-NEW-ROW", "Notes": "new"})
    outcome = sync_tracker(tracker.id)
    assert outcome["created"] == 1
    created = db.session.query(AuditEvent).filter_by(
        actor="sheet:orders-main", entity="sales_order", action="create"
    )
    assert created.count() == 1
    new_key = [k for k in sheet(path) if k not in numbers]
    assert len(new_key) == 1
    new = sheet(path)[new_key[0]]
    assert new["Customer PO"] == "PO-NEW-ROW" and new["Status"] == "draft"
    assert new["Sync status"].startswith("Note: added as orders record")
    assert order(new_key[0]).customer_po == "PO-NEW-ROW"
    assert row == 5
    second = sync_tracker(tracker.id)
    assert (second["created"], second["written"]) == (0, 0)


def test_blank_key_row_is_an_error_when_the_tracker_may_not_create(clean_db, tmp_path) -> None:
    make_orders(1)
    path = tmp_path / "orders.xlsx"
    tracker = make_tracker(path, may_create=False)
    append_row(path, {"Customer": "C1", "Customer PO": "X"})
    assert sync_tracker(tracker.id)["errors"] == 1
    assert "does not add records" in sheet(path)["#3"]["Sync status"]


def test_deleted_row_is_recorded_and_not_appended_again(setup) -> None:
    tracker, path, numbers = setup
    delete_row(path, numbers[1])
    sync_tracker(tracker.id)
    sync_tracker(tracker.id)
    assert numbers[1] not in sheet(path)
    assert order(numbers[1]).customer_po == "PO-2" and order(numbers[1]).status == "draft"


def test_second_sync_is_a_no_op_and_leaves_the_file_alone(setup) -> None:
    tracker, path, numbers = setup
    edit(path, numbers[0], {"Notes": "changed"})
    orders.orders.update(order(numbers[1]), {"customer_po": "PO-X"}, SETUP)
    sync_tracker(tracker.id)
    stat = path.stat()
    content = path.read_bytes()
    outcome = sync_tracker(tracker.id)
    assert (outcome["applied"], outcome["created"], outcome["written"]) == (0, 0, 0)
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.read_bytes() == content


def test_missing_key_column_fails_the_run_and_writes_nothing(setup) -> None:
    tracker, path, _ = setup
    edit(path, None, {"Order No": "Number"}, row=1)
    content = path.read_bytes()
    outcome = sync_tracker(tracker.id)
    assert outcome["status"] == "failed" and "key column" in outcome["error"]
    assert path.read_bytes() == content
    run = last_run(tracker.id)
    assert run.status == "failed" and "key column" in run.error


def test_workbook_over_a_limit_fails_the_run_once_with_its_message(setup, monkeypatch) -> None:
    """A zip bomb at the tracker's path and a small XLSX_MAX_PART_BYTES: the run fails with
    the one-line message, the job returns (no exception, so no RQ retry), the file is intact."""
    import hashlib
    import zipfile

    from tests import xlsx_hostile

    tracker, path, _ = setup
    xlsx_hostile.workbook(path, xlsx_hostile.sheet([(b"<row/>" * 1000, 400)]))  # 2.4 MB inflated
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(current_app.config, "XLSX_MAX_PART_BYTES", 1_000_000)
    outcome = sync_tracker(tracker.id)
    with zipfile.ZipFile(path) as zf:
        size = zf.getinfo("xl/worksheets/sheet1.xml").file_size
    message = (
        f"xl/worksheets/sheet1.xml: max part bytes exceeded: {size:,} > 1,000,000 "
        "(setting XLSX_MAX_PART_BYTES)"
    )
    assert outcome["status"] == "failed" and outcome["error"] == message
    run = last_run(tracker.id)
    assert run.status == SyncRunStatus.FAILED.value and run.error == message
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    runs = db.session.query(SyncRun).filter_by(tracker_id=tracker.id).count()
    assert runs == 2  # the first sync and this one: no retried attempts


def test_tracker_definitions_are_validated(clean_db, tmp_path) -> None:
    base = {"kind": "orders", "location": str(tmp_path / "a.xlsx"), "tab": "Orders"}
    bad = [
        ({"name": "a", "columns": "[{"}, "columns"),
        ({"name": "b", "columns": json.dumps([{"header": "X", "field": "nope"}])}, "columns"),
        ({"name": "c", "location": str(tmp_path / "no" / "a.xlsx")}, "location"),
        ({"name": "d", "backend": "ftp"}, "backend"),
        ({"name": "e", "filter": "someday"}, "filter"),
        ({"name": "f", "kind": "invoices"}, "kind"),
        (
            {
                "name": "g",
                "columns": json.dumps([{"header": "St", "field": "status", "owner": "both"}]),
            },
            "columns",
        ),
    ]
    for data, field in bad:
        with pytest.raises(ValidationFailed) as info:
            trackers.trackers.create({**base, **data}, ADMIN)
        assert field in info.value.field_errors, (data, info.value.field_errors)
    with pytest.raises(PermissionDenied):
        trackers.trackers.create({**base, "name": "h"}, actor("supervisor"))
    made = trackers.trackers.create({**base, "name": "ok", "columns": json.dumps(COLUMNS)}, ADMIN)
    assert made.key_header == "Order No" and made.spec().columns[0].header == "Customer"
    preset = trackers.trackers.create({**base, "name": "preset"}, ADMIN)
    assert len(preset.spec().columns) == 10


def test_cli_add_init_sync_show(clean_db, tmp_path) -> None:
    numbers = [o.number for o in make_orders(2)]
    runner = clean_db.test_cli_runner()
    path = tmp_path / "cli.xlsx"
    added = runner.invoke(
        args=[
            "sheets", "add", "cli-orders", "--kind", "orders", "--location", str(path),
            "--tab", TAB, "--filter", "open", "--interval", "300", "--may-create",
        ]
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert runner.invoke(args=["sheets", "init", "cli-orders"]).exit_code == 0
    assert runner.invoke(args=["sheets", "init", "cli-orders"]).exit_code == 1  # no overwrite
    assert set(numbers) <= set(sheet(path))
    assert runner.invoke(args=["sheets", "sync", "cli-orders"]).exit_code == 0  # the base
    edit(path, numbers[0], {"Customer PO": "VIA-CLI"})
    synced = runner.invoke(args=["sheets", "sync", "cli-orders"])
    assert synced.exit_code == 0 and json.loads(synced.output)["applied"] == 1
    assert order(numbers[0]).customer_po == "VIA-CLI"
    listed = runner.invoke(args=["sheets", "list"])
    assert "cli-orders\torders\txlsx" in listed.output and "every 300s" in listed.output
    shown = runner.invoke(args=["sheets", "show", "cli-orders"])
    assert "Customer PO -> customer_po (text, owner both)" in shown.output
    assert "succeeded: read 2, applied 1, created 0, written 0" in shown.output
    bad = runner.invoke(
        args=["sheets", "add", "x", "--kind", "orders", "--location", "/no/a.xlsx", "--tab", "T"]
    )
    assert bad.exit_code == 1 and "does not exist" in bad.output


def _forget_user() -> None:
    """Requests share the test's app context (and its ``g``): drop the last signed-in user."""
    g.pop("_login_user", None)
    g.pop("user", None)


def test_views_sync_now_and_resolve(setup) -> None:
    tracker, path, numbers = setup
    app = current_app._get_current_object()
    admin = login(app, "admin")
    response = admin.post(f"/trackerview/sync/{tracker.id}", follow_redirects=True)
    assert response.status_code == 200 and b"sync queued as job" in response.data
    get_queue("sync").empty()  # no worker here: drop the queued job
    assert admin.get(f"/trackerview/show/{tracker.id}").status_code == 200

    _forget_user()
    edit(path, numbers[0], {"Notes": "S"})
    orders.orders.update(order(numbers[0]), {"notes": "P"}, SETUP)
    sync_tracker(tracker.id)
    conflict = db.session.query(SyncConflict).one()
    specialist = login(app, "specialist")
    assert specialist.get(f"/syncconflictview/resolve/{conflict.id}").status_code in (302, 403)
    _forget_user()
    supervisor = login(app, "supervisor")
    page = supervisor.get(f"/syncconflictview/resolve/{conflict.id}")
    assert page.status_code == 200 and b"Keep the portal" in page.data
    done = supervisor.post(
        f"/syncconflictview/resolve/{conflict.id}", data={"choice": "portal"}, follow_redirects=True
    )
    assert b"Resolved" in done.data
    assert order(numbers[0]).notes == "P"
    sync_tracker(tracker.id)
    assert sheet(path)[numbers[0]]["Notes"] == "P"
    assert supervisor.get("/syncrunview/list/").status_code == 200


def test_base_is_kept_as_patches_then_folded_into_the_snapshot(setup, monkeypatch) -> None:
    tracker, path, numbers = setup
    edit(path, numbers[0], {"Notes": "one"})
    sync_tracker(tracker.id)
    assert db.session.query(TrackerBasePatch).count() >= 1
    monkeypatch.setattr(trackers, "FOLD_AFTER", 0)
    edit(path, numbers[1], {"Notes": "two"})
    sync_tracker(tracker.id)
    db.session.expire_all()
    assert db.session.query(TrackerBasePatch).count() == 0
    stored = json.loads(db.session.query(TrackerSnapshot).one().base)
    assert stored[numbers[0]]["Notes"] == "one" and stored[numbers[1]]["Notes"] == "two"
    assert sync_tracker(tracker.id)["written"] == 0


def test_shipments_tracker_edits_carrier_details_through_the_fulfillment_service(
    clean_db, tmp_path
) -> None:
    from portal.models import Shipment, Warehouse
    from portal.services import fulfillment, lifecycle

    sales = order(make_orders(1)[0].number)
    orders.orders.update(sales, {"ship_to_id": sales.customer.addresses[0].id}, SETUP)
    lifecycle.confirm(sales, SETUP)
    fulfillment.allocate(sales, SETUP)
    warehouse = db.session.query(Warehouse).filter_by(code="W1").one()
    shipment = fulfillment.ship(
        sales,
        SETUP,
        warehouse_id=warehouse.id,
        lines={line.id: line.quantity for line in sales.lines},
        carrier="DHL",
    )
    path = tmp_path / "shipments.xlsx"
    tracker = trackers.trackers.create(
        {"name": "ships", "kind": "shipments", "location": str(path), "tab": TAB}, ADMIN
    )
    init_workbook(tracker)
    sync_tracker(tracker.id)
    edit(path, shipment.number, {"Tracking": "1Z999", "Delay reason": "nonsense"})
    outcome = sync_tracker(tracker.id)
    assert outcome["errors"] == 1
    assert "delay_reason" in sheet(path)[shipment.number]["Sync status"]
    edit(path, shipment.number, {"Delay reason": "weather"})
    assert sync_tracker(tracker.id)["applied"] == 1
    db.session.expire_all()
    stored = db.session.get(Shipment, shipment.id)
    assert (stored.tracking_number, stored.delay_reason) == ("1Z999", "weather")
    event = db.session.query(AuditEvent).filter_by(actor="sheet:ships", entity="shipment").one()
    assert "1Z999" in event.changes


def test_scheduler_enqueues_due_trackers_once(setup) -> None:
    from datetime import timedelta

    from jobs.schedule import tick
    from portal.models import utcnow

    tracker, _, _ = setup
    sync_queue = get_queue("sync")
    sync_queue.empty()
    assert tick() == []  # interval 0: manual only
    trackers.trackers.update(tracker, {"interval_seconds": 60}, ADMIN)
    assert tick() == []  # the setup's sync ran just now
    later = utcnow() + timedelta(seconds=61)
    assert tick(later) == [tracker.id]
    assert tick(later) == []  # already queued: never twice
    assert sync_queue.count == 1
    sync_queue.empty()
    trackers.trackers.update(tracker, {"enabled": False}, ADMIN)
    assert tick(later) == []
