"""The sync engine through GSheetsBackend against the emulator, with people editing between syncs.

The portal side is the engine's plain-data ``portal_rows`` input; sheet edits the plan applies
are copied into it. People sort, insert and delete rows and paste duplicates through the
emulator's admin API: no edit is lost, duplicates are flagged, deleted rows come back and a
sync after a sync writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import gspread
import pytest
import requests

from sheets.backends.gsheets import GSheetsBackend, MetadataCache, RetryPolicy, SheetsQuotaError
from sheets.backends.gsheets_init import init_google_tracker
from sheets.emulator import Config
from sheets.emulator.testing import gspread_client, start_emulator, write_service_account_file
from sheets.engine import Base, SyncResult, UpdateResult, finalize, plan_sync
from sheets.trackers import TrackerSpec

SPEC = TrackerSpec.build(
    "orders-gsheets",
    "orders",
    ("Order", "order_no"),
    [
        ("Customer", "customer"),
        ("Qty", "qty", "int"),
        ("Price", "price", "decimal"),
        ("Due", "due", "date"),
        ("Paid", "paid", "bool"),
    ],
    status_header="Sync status",
)
FIELD_HEADER = {c.field: c.header for c in SPEC.columns}


class Emu:
    def __init__(self, url: str) -> None:
        self.url = url

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        r = requests.request(method, f"{self.url}/_admin/{path}", json=body, timeout=30)
        r.raise_for_status()
        return r.json()

    def values(self, key: str) -> list[list[Any]]:
        sheets = self.admin("GET", f"spreadsheets/{key}")["sheets"]
        return next(s for s in sheets if s["title"] == "Orders")["values"]

    def writes(self) -> int:
        """values_write requests so far (the emulator answers once earlier ones are counted)."""
        return self.admin("GET", "requests")["counters"].get("values_write", 0)

    def person(self, key: str, action: str, **body: Any) -> Any:
        return self.admin("POST", f"spreadsheets/{key}/{action}", {"sheet": "Orders", **body})


@pytest.fixture(scope="module")
def emu_server() -> Iterator[tuple[Emu, gspread.Client]]:
    url, _, stop = start_emulator(config=Config(quota_reads=100_000, quota_writes=100_000))
    yield Emu(url), gspread_client(url)
    stop()


@pytest.fixture
def emu(emu_server: tuple[Emu, gspread.Client]) -> Emu:
    emu_server[0].admin("POST", "reset")
    return emu_server[0]


@pytest.fixture
def gc(emu_server: tuple[Emu, gspread.Client]) -> gspread.Client:
    return emu_server[1]


def portal_records() -> dict[str, dict[str, Any]]:
    return {
        f"SO-{i}": {
            "Customer": ("ACME", "Globex", "Initech")[i % 3],
            "Qty": i,
            "Price": Decimal(f"{i}.25"),
            "Due": date(2024, 5, i),
            "Paid": i % 2 == 0,
        }
        for i in range(1, 7)
    }


def new_tracker(gc: gspread.Client, portal: dict[str, dict[str, Any]]) -> GSheetsBackend:
    key = gc.create("Trackers").id
    rows = [[k, *(v[c.header] for c in SPEC.columns), None] for k, v in portal.items()]
    init_google_tracker(
        gc,
        key,
        "Orders",
        SPEC.headers,
        rows,
        key_header="Order",
        status_header="Sync status",
        status_choices={"Customer": ["ACME", "Globex", "Initech"]},
    )
    retry = RetryPolicy(max_attempts=4, max_seconds=5, base_delay=0.02)
    return GSheetsBackend(key, "Orders", client=gc, retry=retry, metadata_cache=MetadataCache())


def sync(
    backend: GSheetsBackend,
    base: Base,
    portal: dict[str, dict[str, Any]],
    deleted: set[str] | None = None,
) -> tuple[Base, SyncResult]:
    """One sync as the job runs it; applying an update = copying it into ``portal``. Records
    whose row was deleted join ``deleted`` and are kept out of the sheet, as the job does."""
    snapshot = backend.read()
    gone = deleted if deleted is not None else set()
    visible = {k: v for k, v in portal.items() if k not in gone}
    plan = plan_sync(SPEC, base, snapshot.rows, visible)
    gone.update(plan.deleted)
    assert plan.fatal is None
    results = []
    for u in plan.updates:
        for field, value in u.changes.items():
            portal[u.key][FIELD_HEADER[field]] = value
        results.append(UpdateResult(u.key))
    result = finalize(plan, results)
    backend.write(result.writes, snapshot)
    return result.base, result


def rows_by_key(values: list[list[Any]]) -> dict[str, list[list[Any]]]:
    out: dict[str, list[list[Any]]] = {}
    for row in values[1:]:
        if row and row[0]:
            out.setdefault(row[0], []).append(row)
    return out


def test_people_sort_insert_delete_and_paste_between_syncs(emu: Emu, gc: gspread.Client) -> None:
    portal = portal_records()
    backend = new_tracker(gc, portal)
    key = backend.spreadsheet_key
    writes = emu.writes()
    base, _ = sync(backend, {}, portal)
    assert emu.writes() == writes  # sheet == portal: nothing to write

    # between syncs: a person edits, sorts, inserts, deletes and pastes; the portal changes
    emu.person(key, "type", cells={"C3": "20"})  # SO-2's Qty
    portal["SO-4"]["Price"] = Decimal("99.99")
    portal["SO-6"]["Due"] = date(2025, 1, 31)
    emu.person(key, "sort", column="B", descending=True)  # by Customer
    emu.person(key, "insert_rows", before=3, count=2)
    so5 = next(i for i, r in enumerate(emu.values(key)) if r and r[0] == "SO-5") + 1
    emu.person(key, "delete_rows", row=so5)
    so3 = next(i for i, r in enumerate(emu.values(key)) if r and r[0] == "SO-3") + 1
    emu.person(key, "duplicate_row", row=so3)

    gone: set[str] = set()
    base, result = sync(backend, base, portal, gone)
    assert portal["SO-2"]["Qty"] == 20  # the person's edit reached the portal
    sheet = rows_by_key(emu.values(key))
    assert sheet["SO-4"][0][3] == 99.99  # written into SO-4's row, wherever it moved
    assert sheet["SO-6"][0][4] == (date(2025, 1, 31) - date(1899, 12, 30)).days
    assert "SO-5" not in sheet and gone == {"SO-5"}  # deleted: reported, not appended again
    assert len(sheet["SO-3"]) == 2 and all(
        r[6].startswith("Error: key SO-3 is in rows") for r in sheet["SO-3"]
    )
    assert all(len(r) == 6 for k, rs in sheet.items() if k != "SO-3" for r in rs)  # no status

    writes = emu.writes()
    base, result = sync(backend, base, portal, gone)
    assert result.writes == [] and emu.writes() == writes  # nothing changed: nothing written

    # the person removes the pasted copy: the error clears, then quiet again
    second = [i for i, r in enumerate(emu.values(key)) if r and r[0] == "SO-3"][1] + 1
    emu.person(key, "delete_rows", row=second)
    base, result = sync(backend, base, portal, gone)
    assert len(result.writes) == 1 and result.writes[0].value is None
    assert rows_by_key(emu.values(key))["SO-3"] == [["SO-3", "ACME", 3, 3.25, 45415, False]]
    writes = emu.writes()
    sync(backend, base, portal, gone)
    assert emu.writes() == writes


def test_conflicts_and_bad_input_stay_in_the_sheet(emu: Emu, gc: gspread.Client) -> None:
    portal = portal_records()
    backend = new_tracker(gc, portal)
    key = backend.spreadsheet_key
    base, _ = sync(backend, {}, portal)
    emu.person(key, "type", cells={"C2": "abc", "D3": "7.5"})  # bad Qty on SO-1; SO-2 Price
    portal["SO-2"]["Price"] = Decimal("8.5")  # both sides changed SO-2's Price
    base, _ = sync(backend, base, portal)
    values = emu.values(key)
    assert values[1][2] == "abc" and values[1][6].startswith("Error: Qty: 'abc'")
    assert values[2][3] == 7.5 and values[2][6].startswith("Conflict: Price changed on both")
    assert portal["SO-1"]["Qty"] == 1 and portal["SO-2"]["Price"] == Decimal("8.5")
    emu.person(key, "type", cells={"C2": "11"})  # fixed by the person
    sync(backend, base, portal)
    assert portal["SO-1"]["Qty"] == 11
    assert len(emu.values(key)[1]) == 6  # error cleared


def test_blank_tab_gets_header_and_every_record(emu: Emu, gc: gspread.Client) -> None:
    key = emu.admin("POST", "spreadsheets", {"sheets": [{"title": "Orders", "rows": 3}]})[
        "spreadsheetId"
    ]
    backend = GSheetsBackend(key, "Orders", client=gc, metadata_cache=MetadataCache())
    portal = portal_records()
    base, _ = sync(backend, {}, portal)
    values = emu.values(key)
    assert values[0] == SPEC.headers
    assert [r[0] for r in values[1:]] == list(portal)
    writes = emu.writes()
    sync(backend, base, portal)
    assert emu.writes() == writes


def test_tracker_job_end_to_end_on_google_sheets(
    emu: Emu, gc: gspread.Client, clean_db: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """jobs.sync runs a ``gsheets`` tracker against the emulator: open_backend builds the
    backend from GOOGLE_SERVICE_ACCOUNT_FILE and SHEETS_API_URL; 429s past the retry budget
    fail the run cleanly, and the next run completes with nothing lost."""
    from flask import current_app

    from jobs.sync import sync_tracker
    from portal.services import orders
    from tests.factories import SETUP
    from tests.sync_helpers import last_run, make_google_tracker, make_orders, order

    sa = write_service_account_file(str(tmp_path / "sa.json"), emu.url)
    monkeypatch.setitem(current_app.config, "GOOGLE_SERVICE_ACCOUNT_FILE", sa)
    monkeypatch.setitem(current_app.config, "SHEETS_API_URL", emu.url)
    monkeypatch.setenv("SHEETS_RETRY_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("SHEETS_RETRY_BASE_DELAY", "0.05")
    numbers = [o.number for o in make_orders(3)]
    tracker, key = make_google_tracker(gc)
    assert sync_tracker(tracker.id)["status"] == "succeeded"

    headers = emu.values(key)[0]
    row = next(i for i, r in enumerate(emu.values(key), 1) if r and r[0] == numbers[0])
    po = gspread.utils.rowcol_to_a1(row, headers.index("Customer PO") + 1)
    emu.person(key, "type", cells={po: "PO-FROM-SHEET"})
    orders.orders.update(order(numbers[1]), {"notes": "call first"}, SETUP)
    emu.admin("POST", "faults", {"count": 10, "status": 429, "kind": "values_read"})
    with pytest.raises(SheetsQuotaError):
        sync_tracker(tracker.id)
    assert last_run(tracker.id).status == "failed"
    assert order(numbers[0]).customer_po != "PO-FROM-SHEET"  # nothing half-applied

    emu.admin("DELETE", "faults")
    emu.admin("DELETE", "requests")
    outcome = sync_tracker(tracker.id)
    assert outcome["status"] == "succeeded" and outcome["applied"] == 1
    assert order(numbers[0]).customer_po == "PO-FROM-SHEET"
    notes = headers.index("Notes")
    assert next(r for r in emu.values(key) if r[0] == numbers[1])[notes] == "call first"
    counters = emu.admin("GET", "requests")["counters"]
    assert counters.get("values_read") == 1 and emu.writes() == 1
    assert counters.get("metadata_read", 0) <= 1
