"""Sync from inside Excel: workbooks posted as each xlwings client posts them, through the real
Flask endpoint and a real ``xw.Book(json=...)`` (docs/xlwings.md)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from portal.extensions import appbuilder, db
from portal.models import (
    AuditEvent,
    ConflictStatus,
    SalesOrder,
    SyncConflict,
    SyncDeletedRow,
    SyncRun,
    Tracker,
)
from portal.services import api_tokens, orders, trackers
from portal.sync.adapters import new_workbook_rows
from tests.conftest import actor
from tests.sync_helpers import ADMIN, COLUMNS, TAB, make_orders, order
from tests.xlwings_clients import CLIENTS, Grid, apply, body, payload, touched

KINDS = list(CLIENTS)


def _user_id(name: str) -> int:
    return appbuilder.sm.find_user(username=name).id


def make_xlwings_tracker(
    name: str = "orders-excel", owner: str = "specialist", **options: Any
) -> Tracker:
    """An orders tracker synced from inside Excel, owned by ``owner``."""
    data = {
        "name": name,
        "kind": "orders",
        "backend": "xlwings",
        "location": "Orders tracker.xlsm",
        "tab": TAB,
        "columns": json.dumps(COLUMNS),
        "conflict_policy": "flag",
        "may_create": True,
        "owner_id": _user_id(owner),
        **options,
    }
    return trackers.trackers.create(data, ADMIN)


def first_grid(tracker: Tracker) -> Grid:
    """The tab as a new tracker workbook has it: headers, then one row per record."""
    spec = tracker.spec()
    return [list(spec.headers), *new_workbook_rows(spec, tracker.filter)]


def col(grid: Grid, header: str) -> int:
    return grid[0].index(header)


def row_of(grid: Grid, key: str) -> int:
    return next(i for i, r in enumerate(grid) if r and r[0] == key)


def token_headers(user: str) -> dict[str, str]:
    """``Authorization`` with a new personal API token of ``user``."""
    made = api_tokens.create(actor(user), "excel")
    return {"Authorization": f"Bearer {made.plaintext}"}


def post(app, tracker: str, kind: str, grid: Grid, *, user: str = "specialist", **options):
    headers = token_headers(user) if user else {}
    return app.test_client().post(
        f"/xlwings/sync/{tracker}",
        data=body(kind, {TAB: grid, "xlwings.conf": [["AUTH", "Bearer x"]]}, **options),
        content_type="application/json",
        headers=headers,
    )


@pytest.fixture
def excel(clean_db):
    """Three orders, an xlwings tracker of them and its first sync from Excel (VBA)."""
    numbers = [o.number for o in make_orders(3)]
    tracker = make_xlwings_tracker()
    grid = first_grid(tracker)
    answer = post(clean_db, tracker.name, "vba", grid)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return clean_db, tracker, numbers, apply(answer.get_json(), grid)


@pytest.mark.parametrize("kind", KINDS)
def test_edits_reach_the_portal_as_the_user_and_the_answer_writes_only_changed_cells(
    excel, kind: str
) -> None:
    app, tracker, numbers, grid = excel
    first, second, third = numbers
    later = date.today() + timedelta(days=45)
    grid[row_of(grid, first)][col(grid, "Notes")] = "call before delivery"
    grid[row_of(grid, second)][col(grid, "Requested")] = later
    orders.orders.update(
        order(third), {"notes": "changed in the portal", "customer_po": "PO-P"}, actor("supervisor")
    )

    answer = post(app, tracker.name, kind, grid)

    assert answer.status_code == 200, answer.get_data(as_text=True)
    actions = answer.get_json()
    assert order(first).notes == "call before delivery"
    assert order(second).requested_date == later
    events = db.session.execute(
        select(AuditEvent.actor).where(
            AuditEvent.entity == "sales_order", AuditEvent.action == "update"
        )
    ).scalars()
    assert "specialist" in set(events)
    status = col(grid, "Sync status") + 1
    cells = touched(actions)
    portal_cells = {
        (row_of(grid, third) + 1, col(grid, header) + 1) for header in ("Notes", "Customer PO")
    }
    assert portal_cells <= cells
    assert all(c == status or (r, c) in portal_cells for r, c in cells), cells
    after = apply(actions, grid)
    assert after[row_of(grid, third)][col(grid, "Notes")] == "changed in the portal"
    run = (
        db.session.execute(
            select(SyncRun).where(SyncRun.tracker_id == tracker.id).order_by(SyncRun.id.desc())
        )
        .scalars()
        .first()
    )
    assert (run.status, run.started_by, run.applied) == ("succeeded", "specialist", 2)


def test_a_cell_changed_on_both_sides_is_flagged_like_any_sync(excel) -> None:
    app, tracker, numbers, grid = excel
    first = numbers[0]
    orders.orders.update(order(first), {"notes": "portal says"}, actor("supervisor"))
    grid[row_of(grid, first)][col(grid, "Notes")] = "sheet says"

    answer = post(app, tracker.name, "officescripts", grid)

    assert answer.status_code == 200, answer.get_data(as_text=True)
    conflict = db.session.execute(select(SyncConflict)).scalar_one()
    assert (conflict.key, conflict.header, conflict.status) == (
        first,
        "Notes",
        ConflictStatus.OPEN.value,
    )
    assert order(first).notes == "portal says"  # flagged: neither side overwritten
    after = apply(answer.get_json(), grid)
    status = after[row_of(grid, first)][col(grid, "Sync status")]
    assert "conflict" in status.lower() and after[row_of(grid, first)][col(grid, "Notes")] == (
        "sheet says"
    )


def test_a_new_row_is_created_by_the_user_and_its_key_written_back(excel) -> None:
    app, tracker, numbers, grid = excel
    new = [None] * len(grid[0])
    new[col(grid, "Customer")] = "C1"
    new[col(grid, "Customer PO")] = "PO-NEW"
    new[col(grid, "Requested")] = date.today() + timedelta(days=40)
    grid.append(new)

    answer = post(app, tracker.name, "appsscript", grid)

    assert answer.status_code == 200, answer.get_data(as_text=True)
    after = apply(answer.get_json(), grid)
    key = after[-1][0]
    assert key and key not in numbers
    created = db.session.execute(
        select(AuditEvent.actor).where(
            AuditEvent.entity == "sales_order", AuditEvent.action == "create"
        )
    ).scalars()
    assert "specialist" in set(created)
    assert order(key).customer_po == "PO-NEW"


def test_a_row_deleted_in_excel_and_typed_back_is_recorded_as_the_user(clean_db) -> None:
    """Deleted rows (policy cancel: the order is cancelled) and their restore are the user's."""
    app = clean_db
    numbers = [o.number for o in make_orders(2)]
    tracker = make_xlwings_tracker(deleted_row_policy="cancel")
    grid = apply(
        post(app, tracker.name, "vba", first_grid(tracker)).get_json(), first_grid(tracker)
    )
    gone = grid.pop(row_of(grid, numbers[1]))
    assert post(app, tracker.name, "vba", grid).status_code == 200
    assert order(numbers[1]).status == "cancelled"
    deleted = db.session.execute(select(SyncDeletedRow)).scalar_one()
    assert deleted.status == "cancelled"
    by = db.session.execute(
        select(AuditEvent.actor).where(AuditEvent.entity == "sync_deleted_row")
    ).scalars()
    assert set(by) == {"specialist"}
    grid.append(gone)
    assert post(app, tracker.name, "vba", grid, user="supervisor").status_code == 403
    trackers.trackers.update(tracker, {"owner_id": _user_id("supervisor")}, ADMIN)
    assert post(app, tracker.name, "vba", grid, user="supervisor").status_code == 200
    db.session.expire_all()
    restored = db.session.execute(select(SyncDeletedRow)).scalar_one()
    assert (restored.status, restored.decided_by) == ("restored", "supervisor")


def test_a_user_without_the_right_to_work_with_trackers_gets_403(excel) -> None:
    """The user's own permissions apply: an Auditor (read-only) is refused before any row
    is read, and nothing changes."""
    app, tracker, numbers, grid = excel
    grid[row_of(grid, numbers[0])][col(grid, "Notes")] = "auditor was here"
    answer = post(app, tracker.name, "vba", grid, user="auditor")
    assert answer.status_code == 403
    assert "does not work with trackers" in answer.get_data(as_text=True)
    assert order(numbers[0]).notes == "note 1"


@pytest.mark.parametrize(
    ("change", "status", "said"),
    [
        ({"version": "0.30.0"}, 409, "version 0.30.0"),
        ({"tracker": "nope"}, 404, "no tracker named 'nope'"),
        ({"tracker": "theirs"}, 403, "neither yours nor shared with you"),
        ({"header": "Remarks"}, 422, "missing 'Notes'"),
        ({"tab": "Sheet1"}, 422, "no sheet named 'Orders'"),
        ({"user": None}, 401, "Bearer obt_"),
    ],
)
def test_refusals_say_why_in_the_body_the_client_shows(
    excel, change: dict[str, Any], status: int, said: str
) -> None:
    app, tracker, _, grid = excel
    make_xlwings_tracker("theirs", owner="supervisor")
    if "header" in change:
        grid[0][col(grid, "Notes")] = change["header"]
    tabs = {change.get("tab", TAB): grid}
    headers = token_headers("specialist") if change.get("user", "x") else {}
    answer = app.test_client().post(
        f"/xlwings/sync/{change.get('tracker', tracker.name)}",
        data=json.dumps(payload("vba", tabs, version=change.get("version"))),
        content_type="application/json",
        headers=headers,
    )
    assert answer.status_code == status
    assert answer.mimetype == ("application/json" if status == 401 else "text/plain")
    assert said in answer.get_data(as_text=True)
    runs = db.session.execute(select(SyncRun).where(SyncRun.tracker_id == tracker.id)).all()
    assert len(runs) == 1  # only the fixture's first sync: a refusal syncs nothing


def test_a_revoked_token_gets_401_and_a_browser_session_is_not_enough(excel) -> None:
    from tests.conftest import login

    app, tracker, numbers, grid = excel
    made = api_tokens.create(actor("specialist"), "excel")
    api_tokens.revoke(actor("specialist"), made.record.id)
    grid[row_of(grid, numbers[0])][col(grid, "Notes")] = "after revoking"
    data = body("vba", {TAB: grid})
    revoked = app.test_client().post(
        f"/xlwings/sync/{tracker.name}",
        data=data,
        content_type="application/json",
        headers={"Authorization": f"Bearer {made.plaintext}"},
    )
    assert revoked.status_code == 401
    assert "revoked" in revoked.get_data(as_text=True)
    cookie = login(app, "specialist").post(
        f"/xlwings/sync/{tracker.name}", data=data, content_type="application/json"
    )
    assert cookie.status_code == 401  # a session cookie never reaches the endpoint
    assert order(numbers[0]).notes == "note 1"


def test_a_server_without_a_license_key_refuses(excel, monkeypatch) -> None:
    app, tracker, _, grid = excel
    monkeypatch.delenv("XLWINGS_LICENSE_KEY")
    monkeypatch.setitem(app.config, "XLWINGS_LICENSE_KEY", "")
    answer = post(app, tracker.name, "officejs", grid)
    assert answer.status_code == 503
    assert "XLWINGS_LICENSE_KEY" in answer.get_data(as_text=True)


def test_json_only_and_bounded_by_xlwings_max_bytes(excel, monkeypatch) -> None:
    app, tracker, _, grid = excel
    headers = token_headers("specialist")
    form = app.test_client().post(f"/xlwings/sync/{tracker.name}", data={"a": "b"}, headers=headers)
    assert form.status_code == 415
    monkeypatch.setitem(app.config, "XLWINGS_MAX_BYTES", 200)
    big = post(app, tracker.name, "vba", grid)
    assert big.status_code == 413
    assert big.mimetype == "text/plain" and "XLWINGS_MAX_BYTES" in big.get_data(as_text=True)


def test_an_xlsx_tracker_is_not_synced_from_excel(excel, tmp_path) -> None:
    from tests.sync_helpers import make_tracker

    app, _, _, grid = excel
    xlsx = make_tracker(tmp_path / "t.xlsx", name="file-tracker")
    trackers.trackers.update(xlsx, {"owner_id": _user_id("specialist")}, ADMIN)
    answer = post(app, "file-tracker", "vba", grid)
    assert answer.status_code == 409
    assert "xlsx workbook" in answer.get_data(as_text=True)


# -- the same edits through an .xlsx tracker and from Excel give the same result -------------

LATER = timedelta(days=45)


def _edits(today: date) -> dict[str, dict[str, Any]]:
    """Sheet edits by order position: a note, a date, a PO, a portal-owned column (reverted)."""
    return {
        "0": {"Notes": "call before delivery", "Incoterm": "FOB"},
        "1": {"Requested": today + LATER, "Status": "shipped"},
        "2": {"Customer PO": "PO-9"},
    }


NEW_ROW = {"Customer": "C1", "Customer PO": "PO-NEW", "Notes": "typed in Excel"}


def _state() -> list[tuple[Any, ...]]:
    """Every order's synced fields."""
    db.session.expire_all()
    return sorted(
        (o.number, o.customer_po, o.requested_date, o.incoterm, o.notes, o.status, o.total)
        for o in db.session.execute(select(SalesOrder)).scalars()
    )


def _cells(grid: Grid, tracker: Tracker) -> list[tuple[Any, ...]]:
    """Each data row's key, typed values and status text (as a sync reads them back)."""
    from sheets.values import normalize

    spec = tracker.spec()
    types = {c.header: c.type for c in spec.columns}
    header = [str(h) for h in grid[0]]
    out = []
    for row in grid[1:]:
        if not any(v not in (None, "") for v in row):
            continue
        cells = dict(zip(header, [*row, *[None] * (len(header) - len(row))], strict=True))
        typed = tuple(normalize(types[h], cells[h]) for h in types)
        out.append((cells[spec.key_header], *typed, cells[spec.status_header] or None))
    return sorted(out, key=lambda r: str(r[0]))


def _through_xlsx(path) -> tuple[list, list]:
    from jobs.sync import sync_tracker
    from sheets.backends.xlsx import XlsxBackend
    from tests.sync_helpers import append_row, edit, make_tracker

    numbers = [o.number for o in make_orders(3)]
    tracker = make_tracker(path, name="same-edits")
    sync_tracker(tracker.id)
    for i, values in _edits(date.today()).items():
        edit(path, numbers[int(i)], values)
    append_row(path, {**NEW_ROW, "Requested": date.today() + LATER})
    orders.orders.update(order(numbers[2]), {"notes": "portal note"}, actor("supervisor"))
    sync_tracker(tracker.id)
    return _state(), _cells(XlsxBackend(path, TAB).read().rows, tracker)


def _through_excel(app) -> tuple[list, list]:
    numbers = [o.number for o in make_orders(3)]
    tracker = make_xlwings_tracker(name="same-edits")
    grid = first_grid(tracker)
    grid = apply(post(app, tracker.name, "officejs", grid).get_json(), grid)
    for i, values in _edits(date.today()).items():
        for header, value in values.items():
            grid[row_of(grid, numbers[int(i)])][col(grid, header)] = value
    new = [None] * len(grid[0])
    for header, value in {**NEW_ROW, "Requested": date.today() + LATER}.items():
        new[col(grid, header)] = value
    grid.append(new)
    orders.orders.update(order(numbers[2]), {"notes": "portal note"}, actor("supervisor"))
    answer = post(app, tracker.name, "officejs", grid)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return _state(), _cells(apply(answer.get_json(), grid), tracker)


def test_an_xlwings_tracker_and_an_xlsx_tracker_end_alike_after_the_same_edits(
    clean_db, tmp_path
) -> None:
    from tests.conftest import wipe_business_tables

    state_xlsx, cells_xlsx = _through_xlsx(tmp_path / "same.xlsx")
    wipe_business_tables()
    state_excel, cells_excel = _through_excel(clean_db)
    assert state_excel == state_xlsx
    assert cells_excel == cells_xlsx
    assert any(row[-1] for row in cells_excel)  # the reverted Status says why
    assert len(cells_excel) == 4


def test_sync_runs_name_who_ran_them(excel) -> None:
    """A sync from Excel names the user; a queued one (here on Linux: refused, no Excel) the
    schedule, never "None"."""
    from jobs.sync import run_sync
    from sheets.backends import BackendUnavailable
    from tests.conftest import login

    app, tracker, _, _ = excel
    with pytest.raises(BackendUnavailable):
        run_sync(tracker.id, "queued-job")
    page = login(app, "admin").get("/syncrunview/list/").get_data(as_text=True)
    assert "specialist" in page and "Schedule" in page and ">None<" not in page
