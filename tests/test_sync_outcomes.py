"""Every row's outcome: the pure outcome list (dry run and finished sync) and the job storing it."""

from __future__ import annotations

from datetime import date

import pytest

from jobs.sync import sync_tracker
from portal.extensions import db
from portal.models import SyncRunRow
from portal.services import orders, sync_runs
from sheets.engine import CreateResult, UpdateResult, finalize, plan_sync
from sheets.outcomes import count_outcomes, plan_outcomes, result_outcomes
from sheets.trackers import Column, TrackerSpec
from tests.factories import SETUP
from tests.sync_helpers import append_row, edit, last_run, make_orders, make_tracker, order

SPEC = TrackerSpec(
    name="t",
    kind="orders",
    key_header="Order No",
    key_field="number",
    columns=(
        Column("Qty", "quantity", "int", "both"),
        Column("Due", "due", "date", "both"),
    ),
    may_create=True,
)
HEADER = ["Order No", "Qty", "Due", "Sync status"]
D1, D2 = date(2026, 1, 5), date(2026, 2, 9)


def _rows_and_base() -> tuple[list[list[object]], dict, dict]:
    base = {
        "SO-1": {"Qty": 1, "Due": D1},
        "SO-2": {"Qty": 2, "Due": D1},
        "SO-3": {"Qty": 3, "Due": D1},
        "SO-4": {"Qty": 4, "Due": D1},
        "SO-5": {"Qty": 5, "Due": D1},
    }
    portal = {k: dict(v) for k, v in base.items()}
    portal["SO-3"]["Due"] = D2  # portal change: written to the sheet
    portal["SO-4"]["Qty"] = 40  # and the sheet changes it too: a conflict
    portal["SO-6"] = {"Qty": 6, "Due": D1}  # not in the sheet: appended
    rows: list[list[object]] = [
        HEADER,
        ["SO-1", 1, D1, None],  # unchanged
        ["SO-2", 20, D1, None],  # sheet edit: updated
        ["SO-3", 3, D1, None],
        ["SO-4", 44, D1, None],
        ["SO-5", "lots", D1, None],  # text in a number column: refused
        [None, 7, D2, None],  # blank key: created
        ["SO-99", 1, D1, None],  # no such record: unmatched
    ]
    return rows, base, portal


def test_dry_run_lists_every_rows_fate_before_anything_is_applied() -> None:
    rows, base, portal = _rows_and_base()
    got = {(o.row, o.outcome): o for o in plan_outcomes(plan_sync(SPEC, base, rows, portal))}
    assert sorted(got) == [
        (2, "unchanged"),
        (3, "updated"),
        (4, "written"),
        (5, "conflict"),
        (6, "refused"),
        (7, "created"),
        (8, "unmatched"),
        (9, "appended"),
    ]
    conflict = got[(5, "conflict")]
    assert (conflict.key, conflict.header, conflict.sheet_value, conflict.portal_value) == (
        "SO-4",
        "Qty",
        44,
        40,
    )
    assert "Qty" in got[(6, "refused")].message and got[(6, "refused")].key == "SO-5"
    assert got[(3, "updated")].message == "sheet edits would be applied"
    assert got[(9, "appended")].key == "SO-6"
    assert "no orders record SO-99" in got[(8, "unmatched")].message


def test_finished_sync_outcomes_follow_what_the_services_did() -> None:
    rows, base, portal = _rows_and_base()
    plan = plan_sync(SPEC, base, rows, portal)
    refused_update = UpdateResult("SO-2", error="quantity must be a multiple of 10")
    created = CreateResult(7, key="SO-7")
    outcomes = result_outcomes(plan, finalize(plan, [refused_update, created]))
    by_row = {o.row: o for o in outcomes if o.outcome != "conflict"}
    assert by_row[3].outcome == "refused"
    assert by_row[3].message == "not applied: quantity must be a multiple of 10"
    assert (by_row[7].outcome, by_row[7].key) == ("created", "SO-7")
    assert "SO-7" in by_row[7].message
    counts = count_outcomes(outcomes)
    assert counts["unchanged"] == 1 and counts["conflict"] == 1 and counts["refused"] == 2


@pytest.fixture
def synced(clean_db, tmp_path):
    made = make_orders(4)
    path = tmp_path / "orders.xlsx"
    tracker = make_tracker(path)
    assert sync_tracker(tracker.id)["status"] == "succeeded"
    return tracker, path, [o.number for o in made]


def test_sync_run_stores_each_rows_outcome(synced) -> None:
    tracker, path, numbers = synced
    edit(path, numbers[0], {"Incoterm": "XYZ"})  # refused by the order service
    edit(path, numbers[1], {"Customer PO": "PO-NEW"})  # applied
    edit(path, numbers[2], {"Notes": "sheet text"})  # and the portal changes it too
    orders.orders.update(order(numbers[2]), {"notes": "portal text"}, SETUP)
    append_row(path, {"Customer": "C1", "Customer PO": "PO-ROW", "Notes": "new"})
    outcome = sync_tracker(tracker.id)
    assert (outcome["errors"], outcome["applied"], outcome["conflicts"]) == (1, 1, 1)
    run = last_run(tracker.id)
    stored = {(r.row, r.outcome): r for r in sync_runs.run_rows(run.id)}
    assert sorted(stored) == [
        (2, "refused"),
        (3, "updated"),
        (4, "conflict"),
        (6, "created"),
    ]
    assert run.unchanged == 1  # numbers[3]
    refused = stored[(2, "refused")]
    assert refused.key == numbers[0] and "incoterm" in refused.message.lower()
    conflict = stored[(4, "conflict")]
    assert (conflict.key, conflict.header) == (numbers[2], "Notes")
    assert (conflict.sheet_value, conflict.portal_value) == ("sheet text", "portal text")
    created = stored[(6, "created")]
    assert created.key and created.key not in numbers and created.key in created.message
    assert [r.outcome for r in sync_runs.run_rows(run.id, "refused")] == ["refused"]
    # a quiet second sync stores no rows, only the count
    sync_tracker(tracker.id)
    quiet = last_run(tracker.id)
    assert quiet.id != run.id
    assert db.session.query(SyncRunRow).filter_by(run_id=quiet.id).count() == 2  # still open
