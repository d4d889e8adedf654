"""GSheetsBackend against the in-process Sheets emulator: real gspread over real HTTP.

Types round trip, only changed cells written, no-op writes, metadata cache, bounded retries on
429/5xx (fault injection and the emulator's real per-minute quota), and the call budget of a
20,000-row sync.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import gspread
import pytest
import requests
from gspread.http_client import BackOffHTTPClient

from sheets.backends.gsheets import (
    GSheetsBackend,
    MetadataCache,
    RetryPolicy,
    SheetsQuotaError,
    SheetsUnavailableError,
    cell_ranges,
    encode_cell,
)
from sheets.backends.gsheets_init import init_google_tracker
from sheets.emulator import Config, Emulator
from sheets.emulator.testing import (
    gspread_client,
    start_emulator,
    write_service_account_file,
)
from sheets.engine import UpdateResult, finalize, plan_sync
from sheets.grid import CellWrite
from sheets.trackers import TrackerSpec
from sheets.values import normalize

FAST_RETRY = RetryPolicy(max_attempts=6, max_seconds=5.0, base_delay=0.02, max_delay=0.1)
HEADERS = ["Order", "Customer", "Qty", "Price", "Due", "Paid", "Sync status"]


class Emu:
    """The emulator's URL plus its admin API."""

    def __init__(self, url: str, state: Emulator) -> None:
        self.url = url
        self.state = state

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        r = requests.request(method, f"{self.url}/_admin/{path}", json=body, timeout=30)
        r.raise_for_status()
        return r.json()

    def seed(self, values: list[list[Any]], raw: bool = True, title: str = "Orders") -> str:
        body = {"title": "T", "sheets": [{"title": title, "values": values, "raw": raw}]}
        return self.admin("POST", "spreadsheets", body)["spreadsheetId"]

    def values(self, key: str) -> list[list[Any]]:
        return self.admin("GET", f"spreadsheets/{key}")["sheets"][0]["values"]

    def counters(self) -> dict[str, int]:
        """Request counters (the emulator answers once every earlier request is counted)."""
        return self.admin("GET", "requests")["counters"]

    def reset_counters(self) -> None:
        self.admin("DELETE", "requests")

    def fault(self, count: int, status: int, kind: str) -> None:
        self.admin("POST", "faults", {"count": count, "status": status, "kind": kind})

    def person(self, key: str, action: str, **body: Any) -> Any:
        return self.admin("POST", f"spreadsheets/{key}/{action}", body)


@pytest.fixture(scope="module")
def emu_server() -> Iterator[tuple[Emu, gspread.Client]]:
    url, server, stop = start_emulator(config=Config(quota_reads=100_000, quota_writes=100_000))
    yield Emu(url, server.emulator), gspread_client(url)
    stop()


@pytest.fixture
def emu(emu_server: tuple[Emu, gspread.Client]) -> Emu:
    emu_server[0].admin("POST", "reset")
    emu_server[0].admin("POST", "config", {"quota_reads": 100_000, "quota_writes": 100_000})
    return emu_server[0]


@pytest.fixture
def gc(emu_server: tuple[Emu, gspread.Client]) -> gspread.Client:
    return emu_server[1]


def backend(gc: gspread.Client, key: str, retry: RetryPolicy = FAST_RETRY) -> GSheetsBackend:
    return GSheetsBackend(key, "Orders", client=gc, retry=retry, metadata_cache=MetadataCache())


def test_read_types_text_stays_text_dates_are_serials(emu: Emu, gc: gspread.Client) -> None:
    key = emu.seed(
        [
            ["Order", "Qty", "Price", "Due", "Paid", "Note"],
            ["'00123", "3", "2.50", "2024-05-06", "TRUE", "=1+1"],
            ["SO-2", "", "1,234.5", "2024-05-07 13:30", "false"],
        ],
        raw=False,  # typed like a person
    )
    snap = backend(gc, key).read()
    assert snap.rows[0] == ["Order", "Qty", "Price", "Due", "Paid", "Note"]
    order, qty, price, due, paid, note = snap.rows[1]
    assert (order, qty, price, paid, note) == ("00123", 3, 2.5, True, 2)
    assert normalize("text", order) == "00123"
    assert normalize("date", due) == date(2024, 5, 6)
    assert snap.rows[2][:3] == ["SO-2", None, 1234.5]
    assert normalize("datetime", snap.rows[2][3]) == datetime(2024, 5, 7, 13, 30, tzinfo=UTC)
    assert snap.rows[2][4] is False
    assert snap.meta["grid"] == (1000, 26)
    assert snap.fingerprint and snap.fingerprint.startswith("sha256:")


def test_written_values_round_trip(emu: Emu, gc: gspread.Client) -> None:
    key = emu.seed([["A", "B", "C", "D", "E", "F", "G", "H"], ["x", "y", "z"]])
    b = backend(gc, key)
    cases = [
        ("text", "00123"),
        ("text", "=1+1"),
        ("decimal", Decimal("19.99")),
        ("decimal", Decimal("12345678901234567.89")),  # a double would lose the cents
        ("date", date(2024, 2, 29)),
        ("datetime", datetime(2024, 5, 7, 13, 30, 15, tzinfo=UTC)),
        ("bool", False),
        ("int", 2**60),
    ]
    b.write([CellWrite(2, i + 1, v) for i, (_, v) in enumerate(cases)], b.read())
    row = b.read().rows[1]
    for (type_, value), raw in zip(cases, row, strict=True):
        assert normalize(type_, raw) == value, (type_, raw)
    assert row[3] == "12345678901234567.89" and row[2] == 19.99 and row[0] == "00123"
    b.write([CellWrite(2, 1, None)], b.read())  # None clears
    assert b.read().rows[1][0] is None


def test_encode_cell_rules() -> None:
    assert encode_cell(Decimal("7.00")) == 7.0
    assert encode_cell(Decimal("0.1")) == 0.1
    assert encode_cell(Decimal("1.0000000000000001")) == "1.0000000000000001"
    assert encode_cell(date(1899, 12, 31)) == 1
    assert encode_cell(datetime(1900, 1, 1, 12)) == 2.5  # naive = UTC
    assert encode_cell(None) == ""
    with pytest.raises(ValueError):
        encode_cell(float("nan"))


def test_cell_ranges_group_runs_and_stack_rows() -> None:
    cells = {(2, 1): 1, (2, 2): 2, (2, 5): 5, (2, 9): 9, (3, 1): 1, (3, 2): 2, (3, 5): 5}
    cells |= {(10, 7): "s", (11, 7): "t", (13, 7): "u"}
    blocks = [(b.row, b.col, b.values) for b in cell_ranges(cells)]
    assert blocks == [
        (2, 1, [[1, 2, None, None, 5], [1, 2, None, None, 5]]),  # gap of 2 bridged by nulls
        (2, 9, [[9]]),  # gap of 3: a range of its own
        (10, 7, [["s"], ["t"]]),
        (13, 7, [["u"]]),
    ]


def test_write_sends_only_changed_cells_and_keeps_a_persons_edit(
    emu: Emu, gc: gspread.Client
) -> None:
    key = emu.seed([["Order", "Qty", "Note", "Price"], ["SO-1", 1, "a", 2], ["SO-2", 2, "b", 3]])
    b = backend(gc, key)
    snap = b.read()
    emu.person(key, "type", cells={"C2": "typed meanwhile", "A3": "SO-2b"})
    emu.reset_counters()
    b.write([CellWrite(2, 2, 10), CellWrite(2, 4, 20), CellWrite(3, 3, "portal")], snap)
    assert emu.counters() == {"values_write": 1}
    assert emu.values(key) == [
        ["Order", "Qty", "Note", "Price"],
        ["SO-1", 10, "typed meanwhile", 20],  # the null between B2 and D2 left C2 alone
        ["SO-2b", 2, "portal", 3],
    ]


def test_noop_write_makes_no_request(emu: Emu, gc: gspread.Client) -> None:
    key = emu.seed([["Order"], ["SO-1"]])
    b = backend(gc, key)
    snap = b.read()
    emu.reset_counters()
    b.write([], snap)
    assert emu.counters() == {}


def test_appending_dated_rows_costs_no_extra_call(emu: Emu, gc: gspread.Client) -> None:
    key = emu.seed([["Order", "Due"], ["SO-1", 45000]])
    emu.reset_counters()
    for row in (3, 4):  # two syncs appending a dated row inside the grid
        b = GSheetsBackend(
            key, "Orders", client=gc, retry=FAST_RETRY, metadata_cache=MetadataCache()
        )
        b.write([CellWrite(row, 1, f"SO-{row}"), CellWrite(row, 2, date(2024, 1, row))], b.read())
    assert emu.counters() == {"values_read": 2, "values_write": 2}
    assert b.read().rows[2:] == [["SO-3", 45294], ["SO-4", 45295]]


def test_metadata_is_cached_per_spreadsheet_and_tab(emu: Emu, gc: gspread.Client) -> None:
    key = emu.admin(
        "POST",
        "spreadsheets",
        {"sheets": [{"title": "Orders", "rows": 2, "cols": 2, "values": [["Order", "Qty"]]}]},
    )["spreadsheetId"]
    cache = MetadataCache()
    emu.reset_counters()
    for row in (3, 4):  # each sync grows the grid: only the first needs the sheet id
        b = GSheetsBackend(key, "Orders", client=gc, retry=FAST_RETRY, metadata_cache=cache)
        b.write([CellWrite(row, 1, f"SO-{row}")], b.read())
    counters = emu.counters()
    assert counters["metadata_read"] == 1
    assert counters["batch_update"] == 2 and counters["values_write"] == 2
    now = [0.0]
    expired = MetadataCache(ttl=1.0, clock=lambda: now[0])
    expired.put(key, "Orders", cache.get(key, "Orders"))  # type: ignore[arg-type]
    now[0] = 1.5
    assert expired.get(key, "Orders") is None


def test_rows_past_the_grid_are_added(emu: Emu, gc: gspread.Client) -> None:
    key = emu.admin(
        "POST",
        "spreadsheets",
        {"sheets": [{"title": "Orders", "rows": 2, "cols": 2, "values": [["Order", "Qty"]]}]},
    )["spreadsheetId"]
    b = backend(gc, key)
    snap = b.read()
    assert snap.meta["grid"] == (2, 2)
    b.write([CellWrite(2, 1, "SO-1"), CellWrite(4, 1, "SO-3"), CellWrite(4, 3, "x")], snap)
    assert emu.values(key) == [["Order", "Qty"], ["SO-1"], [], ["SO-3", "", "x"]]
    assert b.read().meta["grid"] == (4, 3)


def test_missing_tab_and_retrying_client_are_refused(emu: Emu, gc: gspread.Client) -> None:
    key = emu.seed([["Order"]], title="Other")
    with pytest.raises(KeyError, match="no tab named 'Orders'"):
        backend(gc, key).read()
    retrying = gspread.Client(auth=gc.http_client.auth, http_client=BackOffHTTPClient)
    with pytest.raises(ValueError, match="BackOffHTTPClient"):
        GSheetsBackend(key, "Orders", client=retrying)


def test_credentials_file_and_api_url(emu: Emu, tmp_path: Path) -> None:
    key = emu.seed([["Order"], ["SO-1"]])
    sa = write_service_account_file(str(tmp_path / "sa.json"), emu.url)
    b = GSheetsBackend(key, "Orders", credentials_file=sa, api_url=emu.url, retry=FAST_RETRY)
    assert b.read().rows == [["Order"], ["SO-1"]]
    with pytest.raises(ValueError, match="credentials_file or client"):
        GSheetsBackend(key, "Orders")


def test_429_for_a_while_waits_and_completes(emu: Emu, gc: gspread.Client) -> None:
    key = emu.seed([["Order", "Qty"], ["SO-1", 1]])
    b = backend(gc, key)
    emu.fault(3, 429, "values_read")
    started = time.monotonic()
    snap = b.read()
    emu.fault(2, 429, "values_write")
    b.write([CellWrite(2, 2, 5)], snap)
    assert time.monotonic() - started < FAST_RETRY.max_seconds
    assert emu.counters()["values_read"] == 4 and emu.counters()["values_write"] == 3
    assert emu.values(key)[1] == ["SO-1", 5]


def test_real_quota_window_is_waited_out(emu: Emu, gc: gspread.Client) -> None:
    """The emulator's own per-minute quota (here 3 reads per 1 s) answers 429 until the
    window slides; the read backs off and completes within its budget."""
    key = emu.seed([["Order"], ["SO-1"]])
    emu.admin("POST", "config", {"quota_reads": 3, "quota_window_s": 1.0})
    b = backend(gc, key, RetryPolicy(max_attempts=10, max_seconds=6, base_delay=0.1, max_delay=0.5))
    started = time.monotonic()
    for _ in range(5):
        assert b.read().rows == [["Order"], ["SO-1"]]
    assert 0.9 < time.monotonic() - started < 6
    log = emu.admin("GET", "requests")["log"]
    assert [e["status"] for e in log].count(429) >= 1


@pytest.mark.parametrize(
    ("status", "error"), [(429, SheetsQuotaError), (500, SheetsUnavailableError)]
)
def test_budget_exhausted_fails_cleanly_and_loses_nothing(
    emu: Emu, gc: gspread.Client, status: int, error: type[Exception]
) -> None:
    key = emu.seed([["Order", "Qty"], ["SO-1", 1]])
    b = backend(gc, key, RetryPolicy(max_attempts=3, max_seconds=5, base_delay=0.01))
    snap = b.read()
    emu.fault(100, status, "values_write")
    with pytest.raises(error, match="gave up after 3 attempt") as info:
        b.write([CellWrite(2, 2, 7)], snap)
    assert info.value.status == status and info.value.attempts == 3  # type: ignore[attr-defined]
    assert emu.values(key) == [["Order", "Qty"], ["SO-1", 1]]  # untouched
    emu.fault(100, status, "values_read")
    with pytest.raises(error):
        b.read()
    emu.admin("DELETE", "faults")
    b.write([CellWrite(2, 2, 7)], b.read())  # the caller's retry goes through
    assert emu.values(key)[1] == ["SO-1", 7]


def test_retry_policy_gives_up_before_overrunning_its_time_budget() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    policy = RetryPolicy(max_attempts=50, max_seconds=10, base_delay=1, max_delay=4, sleep=sleep,
                         clock=lambda: now[0])  # fmt: skip
    response = requests.Response()
    response.status_code = 503
    response._content = b'{"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}'

    def fail() -> None:
        raise gspread.exceptions.APIError(response)

    with pytest.raises(SheetsUnavailableError):
        policy.run("test", fail)
    assert sum(slept) <= 10 and all(0.5 <= s <= 4 for s in slept)
    assert all(policy.delay(n) <= 4 for n in range(20))


def test_init_google_tracker(emu: Emu, gc: gspread.Client) -> None:
    key = gc.create("Trackers").id
    emu.reset_counters()
    b = init_google_tracker(
        gc,
        key,
        "Orders",
        HEADERS,
        [["SO-1", "ACME", 2, Decimal("9.50"), date(2024, 5, 6), True, None]],
        key_header="Order",
        status_header="Sync status",
        status_choices={"Customer": ["ACME", "Globex"], "Sync status": ["OK"]},
    )
    assert emu.counters() == {"metadata_read": 1, "batch_update": 1, "values_write": 1}
    assert b.read().rows == [HEADERS, ["SO-1", "ACME", 2, 9.5, 45418, True]]
    meta = gc.http_client.fetch_sheet_metadata(
        key, params={"fields": "sheets(properties(title,gridProperties),protectedRanges)"}
    )
    tab = next(s for s in meta["sheets"] if s["properties"]["title"] == "Orders")
    assert tab["properties"]["gridProperties"]["frozenRowCount"] == 1
    (prot,) = tab["protectedRanges"]
    assert prot["warningOnly"] and prot["range"]["startColumnIndex"] == 0
    typed = emu.person(key, "type", sheet="Orders", cells={"B2": "Nobody", "G2": "any note"})
    assert typed["rejected"] == [{"cell": "B2", "reason": "invalid: not one of ACME, Globex"}]
    assert typed["applied"] == ["G2"]  # the status list only warns
    assert emu.person(key, "type", sheet="Orders", cells={"A2": "SO-9"})["applied"] == ["A2"]
    with pytest.raises(ValueError, match="already has a tab"):
        init_google_tracker(b, key, "orders", ["Order", "S"], [], key_header="Order",
                            status_header="S", status_choices={})  # fmt: skip


def test_call_budget_20000_rows_200_changes(emu: Emu, gc: gspread.Client) -> None:
    spec = TrackerSpec.build(
        "budget",
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
    n = 20_000
    rows = [[f"SO-{i:05d}", f"C{i % 300}", i % 17, (i % 997) / 4, 45000 + i % 700, i % 2 == 0]
            for i in range(n)]  # fmt: skip
    key = emu.seed([HEADERS, *rows])
    portal = {
        r[0]: {"Customer": r[1], "Qty": r[2], "Price": Decimal(str(r[3])),
               "Due": normalize("date", r[4]), "Paid": r[5]}
        for r in rows
    }  # fmt: skip
    b = backend(gc, key)
    first = plan_sync(spec, {}, b.read().rows, portal)
    base = finalize(first).base
    assert not first.writes and not first.updates
    for i in range(0, n, 100):  # 200 portal changes
        portal[f"SO-{i:05d}"]["Qty"] = 99
    edits = {f"B{i + 2}": "edited" for i in range(50, n, 200)}  # 100 edits by a person
    emu.person(key, "type", cells=edits)
    emu.reset_counters()

    fresh = backend(gc, key)  # cold metadata cache
    snap = fresh.read()
    plan = plan_sync(spec, base, snap.rows, portal)
    assert len(plan.writes) == 200 and len(plan.updates) == 100
    result = finalize(plan, [UpdateResult(u.key) for u in plan.updates])
    assert len(result.writes) == 200
    fresh.write(result.writes, snap)
    counters = emu.counters()
    assert counters.pop("metadata_read", 0) <= 1
    assert counters == {"values_read": 1, "values_write": 1}
    assert emu.values(key)[1][2] == 99 and emu.values(key)[51][1] == "edited"
