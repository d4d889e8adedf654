"""The Sheets API emulator, driven by real gspread over HTTP (service-account login included)."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gspread
import pytest
import requests
from gspread.exceptions import APIError, SpreadsheetNotFound

from sheets.emulator import Config, EmulatorServer, a1
from sheets.emulator.testing import DEFAULT_EMAIL, gspread_client, start_emulator

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def emulator() -> Iterator[tuple[str, EmulatorServer]]:
    # generous quotas: the suite itself would otherwise trip 60 reads/minute
    url, server, stop = start_emulator(config=Config(quota_reads=1000, quota_writes=1000))
    yield url, server
    stop()


@pytest.fixture(scope="module")
def url(emulator: tuple[str, EmulatorServer]) -> str:
    return emulator[0]


@pytest.fixture(scope="module")
def gc(url: str) -> gspread.Client:
    return gspread_client(url)


@pytest.fixture
def sh(gc: gspread.Client) -> Iterator[gspread.Spreadsheet]:
    spreadsheet = gc.create("Emulator test")
    yield spreadsheet
    gc.del_spreadsheet(spreadsheet.id)


def admin(url: str, path: str, body: dict | None = None, method: str = "POST") -> dict:
    reply = requests.request(method, f"{url}/_admin/{path}", json=body, timeout=5)
    assert reply.status_code == 200, reply.text
    return reply.json()


def serial(day: dt.date) -> int:
    return (day - dt.date(1899, 12, 30)).days


# --- auth and Drive ------------------------------------------------------------------------


def test_service_account_token_flow(url: str, emulator: tuple[str, EmulatorServer]) -> None:
    client = gspread_client(url)
    assert client.http_client.auth.token is None
    spreadsheet = client.create("Token flow")
    token = client.http_client.auth.token
    assert token.startswith("ya29.emu-")
    assert emulator[1].emulator.tokens[token]["user"] == DEFAULT_EMAIL
    meta_url = f"{url}/v4/spreadsheets/{spreadsheet.id}"
    missing = requests.get(meta_url, timeout=5)
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    bogus = requests.get(meta_url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bogus.status_code == 401
    ok = requests.get(meta_url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert ok.json()["properties"]["title"] == "Token flow"


def test_create_open_list_delete(gc: gspread.Client) -> None:
    spreadsheet = gc.create("Orders tracker")
    assert len(spreadsheet.id) == 44
    assert gc.open("Orders tracker").id == spreadsheet.id
    assert gc.open_by_key(spreadsheet.id).sheet1.title == "Sheet1"
    names = [f["name"] for f in gc.list_spreadsheet_files()]
    assert "Orders tracker" in names
    assert spreadsheet.get_lastUpdateTime().endswith("Z")
    gc.del_spreadsheet(spreadsheet.id)
    with pytest.raises(SpreadsheetNotFound):
        gc.open_by_key(spreadsheet.id)


def test_readonly_scope_cannot_write(url: str, sh: gspread.Spreadsheet) -> None:
    readonly = gspread_client(
        url, scopes=("https://www.googleapis.com/auth/spreadsheets.readonly",)
    )
    ws = readonly.open_by_key(sh.id).sheet1
    with pytest.raises(APIError) as err:
        ws.update([["x"]], "A1")
    assert err.value.response.status_code == 403
    assert err.value.error["status"] == "PERMISSION_DENIED"


# --- values --------------------------------------------------------------------------------


def test_user_entered_parsing_and_render_options(sh: gspread.Spreadsheet) -> None:
    ws = sh.sheet1
    row = ["00123", "2,000,000.01", "2024-03-05", "true", "'0042", "=2*3", "=SUM(A1:B1)", "12%"]
    ws.update([row], "A1", value_input_option="USER_ENTERED")
    day = serial(dt.date(2024, 3, 5))
    unformatted = ws.get("A1:H1", value_render_option="UNFORMATTED_VALUE")[0]
    assert unformatted == [123, 2000000.01, day, True, "0042", 6, "", 0.12]
    formatted = ws.get("A1:H1")[0]
    assert formatted == ["123", "2,000,000.01", "2024-03-05", "TRUE", "0042", "6", "", "12%"]
    formulas = ws.get("A1:H1", value_render_option="FORMULA")[0]
    assert formulas[5:7] == ["=2*3", "=SUM(A1:B1)"]
    as_text = ws.get(
        "C1", value_render_option="UNFORMATTED_VALUE", date_time_render_option="FORMATTED_STRING"
    )
    assert as_text == [["2024-03-05"]]


def test_raw_input_keeps_strings(sh: gspread.Spreadsheet) -> None:
    ws = sh.sheet1
    ws.update([["00123", "=1+1", 42, True, "2024-03-05"]], "A1", value_input_option="RAW")
    assert ws.get("A1:E1", value_render_option="UNFORMATTED_VALUE") == [
        ["00123", "=1+1", 42, True, "2024-03-05"]
    ]


def test_trimming_and_range_echo(sh: gspread.Spreadsheet) -> None:
    ws = sh.add_worksheet("My Sheet", rows=20, cols=5)
    reply = ws.update([["a", "", ""], ["", "", ""], ["", "b", ""]], "A1")
    assert reply["updatedRange"] == "'My Sheet'!A1:C3"
    assert reply["updatedCells"] == 9
    got = sh.values_get("'My Sheet'!A1:E10")
    assert got["range"] == "'My Sheet'!A1:E10"
    assert got["values"] == [["a"], [], ["", "b"]]
    assert sh.values_get("'My Sheet'")["range"] == "'My Sheet'!A1:E20"
    assert sh.values_get("'My Sheet'!B:C")["range"] == "'My Sheet'!B1:C20"
    assert sh.values_get("'My Sheet'!2:3")["values"] == [[], ["", "b"]]
    assert sh.values_get("Sheet1!A1:B2") == {"range": "Sheet1!A1:B2", "majorDimension": "ROWS"}
    columns = sh.values_get("'My Sheet'!A1:B3", params={"majorDimension": "COLUMNS"})
    assert columns["values"] == [["a"], ["", "", "b"]]


def test_batch_update_batch_get_and_clears(sh: gspread.Spreadsheet) -> None:
    ws = sh.sheet1
    reply = ws.batch_update(
        [{"range": "A1:B1", "values": [["k", "v"]]}, {"range": "A3", "values": [["x"]]}]
    )
    assert reply["totalUpdatedCells"] == 3
    assert reply["totalUpdatedRows"] == 2
    got = sh.values_batch_get(["Sheet1!A1:B1", "Sheet1!A3"])
    assert [vr["values"] for vr in got["valueRanges"]] == [[["k", "v"]], [["x"]]]
    ws.batch_clear(["A1:A1"])
    assert ws.get_all_values() == [["", "v"], ["", ""], ["x", ""]]
    assert sh.values_clear("Sheet1")["clearedRange"] == "Sheet1!A1:Z1000"
    assert "values" not in sh.values_get("Sheet1")


def test_append_finds_the_table(sh: gspread.Spreadsheet) -> None:
    ws = sh.sheet1
    ws.update([["Order", "Qty"], ["SO-1", 5]], "A1")
    reply = ws.append_rows([["SO-2", 7], ["SO-3", 1]])
    assert reply["tableRange"] == "Sheet1!A1:B2"
    assert reply["updates"]["updatedRange"] == "Sheet1!A3:B4"
    ws.append_row(["SO-4", 2], insert_data_option="INSERT_ROWS")
    assert ws.col_values(1) == ["Order", "SO-1", "SO-2", "SO-3", "SO-4"]


def test_values_errors_are_google_json(gc: gspread.Client, sh: gspread.Spreadsheet) -> None:
    ws = sh.sheet1
    with pytest.raises(APIError) as err:
        sh.values_get("Nope!A1")
    assert err.value.response.json() == {
        "error": {
            "code": 400,
            "message": "Unable to parse range: Nope!A1",
            "status": "INVALID_ARGUMENT",
        }
    }
    with pytest.raises(APIError) as err:
        ws.get("A1:A2000")
    assert err.value.error["message"] == (
        "Range ('Sheet1'!A1:A2000) exceeds grid limits. Max rows: 1000, max columns: 26"
    )
    with pytest.raises(APIError) as err:
        ws.update("A1:D4", "X")  # values and range swapped
    assert err.value.error["status"] == "INVALID_ARGUMENT"
    assert "data.values" in err.value.error["message"]
    with pytest.raises(APIError) as err:
        ws.update([["a"], ["b"], ["c"]], "A1:A2")
    assert "tried writing to row [3]" in err.value.error["message"]
    with pytest.raises(SpreadsheetNotFound) as missing:
        gc.open_by_key("does-not-exist")
    assert missing.value.__cause__.response.json()["error"] == {
        "code": 404,
        "message": "Requested entity was not found.",
        "status": "NOT_FOUND",
    }


def test_private_spreadsheet_is_403(url: str, gc: gspread.Client) -> None:
    seeded = admin(
        url, "spreadsheets", {"title": "Someone's", "owner": "x@example.com", "shared_with": []}
    )
    with pytest.raises(PermissionError) as err:
        gc.open_by_key(seeded["spreadsheetId"])
    assert err.value.__cause__.error["status"] == "PERMISSION_DENIED"


# --- structure -----------------------------------------------------------------------------


def test_sheets_add_delete_rename_freeze_hide(sh: gspread.Spreadsheet) -> None:
    ws = sh.add_worksheet("Lines", rows=10, cols=4)
    assert ws.id != 0 and ws.index == 1
    with pytest.raises(APIError) as err:
        sh.add_worksheet("Lines", rows=1, cols=1)
    assert 'A sheet with the name "Lines" already exists' in err.value.error["message"]
    ws.update_title("Order lines")
    ws.freeze(rows=1)
    ws.hide()
    props = sh.fetch_sheet_metadata()["sheets"][1]["properties"]
    assert props["title"] == "Order lines"
    assert props["gridProperties"] == {"rowCount": 10, "columnCount": 4, "frozenRowCount": 1}
    assert props["hidden"] is True
    with pytest.raises(APIError) as err:
        sh.sheet1.hide()
    assert "You can't hide all the sheets" in err.value.error["message"]
    sh.del_worksheet(ws)
    assert [w.title for w in sh.worksheets()] == ["Sheet1"]
    with pytest.raises(APIError) as err:
        sh.del_worksheet(sh.sheet1)
    assert "You can't remove all the sheets" in err.value.error["message"]


def test_insert_delete_rows_and_columns(sh: gspread.Spreadsheet) -> None:
    ws = sh.sheet1
    ws.update([["1"], ["2"], ["3"]], "A1")
    ws.insert_rows([["1.5"]], row=2)
    assert ws.col_values(1) == ["1", "1.5", "2", "3"]
    ws.delete_rows(1, 2)
    assert ws.col_values(1) == ["2", "3"]
    ws.insert_cols([["new"]], col=1)
    assert ws.row_values(1) == ["new", "2"]
    meta = sh.fetch_sheet_metadata()["sheets"][0]["properties"]["gridProperties"]
    assert meta == {"rowCount": 999, "columnCount": 27}


def test_sort_range(sh: gspread.Spreadsheet) -> None:
    ws = sh.sheet1
    ws.resize(5, 2)
    ws.update([["b", 2], ["a", 10], ["", 1], ["B", "x"], ["c", True]], "A1")
    ws.sort((1, "asc"))
    assert ws.col_values(1) == ["a", "b", "B", "c"]
    ws.sort((2, "des"))
    assert ws.get("B1:B5", value_render_option="UNFORMATTED_VALUE") == [
        [True],
        ["x"],
        [10],
        [2],
        [1],
    ]


def test_protection_validation_format_and_developer_metadata(sh: gspread.Spreadsheet) -> None:
    ws = sh.sheet1
    ws.add_protected_range("A1:A10", warning_only=True)
    requests_ = [
        {
            "setDataValidation": {
                "range": {
                    "sheetId": 0,
                    "startRowIndex": 1,
                    "startColumnIndex": 1,
                    "endColumnIndex": 2,
                },
                "rule": {
                    "condition": {
                        "type": "ONE_OF_LIST",
                        "values": [{"userEnteredValue": "open"}, {"userEnteredValue": "done"}],
                    },
                    "strict": True,
                },
            }
        },
        {
            "repeatCell": {
                "range": {"sheetId": 0, "endRowIndex": 1},
                "cell": {"userEnteredFormat": {"textFormat": {"bold": True}}},
                "fields": "userEnteredFormat.textFormat.bold",
            }
        },
        {
            "createDeveloperMetadata": {
                "developerMetadata": {
                    "metadataKey": "orderbridge.tracker",
                    "metadataValue": "orders",
                    "location": {"sheetId": 0},
                    "visibility": "DOCUMENT",
                }
            }
        },
    ]
    reply = sh.batch_update({"requests": requests_})
    created = reply["replies"][2]["createDeveloperMetadata"]["developerMetadata"]
    assert created["location"] == {"sheetId": 0, "locationType": "SHEET"}
    sheet = sh.fetch_sheet_metadata()["sheets"][0]
    protected = sheet["protectedRanges"][0]
    assert protected["warningOnly"] is True
    assert protected["range"] == {
        "startRowIndex": 0,
        "endRowIndex": 10,
        "startColumnIndex": 0,
        "endColumnIndex": 1,
    }
    assert protected["editors"] == {"users": [DEFAULT_EMAIL]}
    assert sheet["developerMetadata"][0]["metadataValue"] == "orders"
    masked = sh.fetch_sheet_metadata(
        {"fields": "sheets(properties(title),protectedRanges(warningOnly))"}
    )
    assert masked == {
        "sheets": [{"properties": {"title": "Sheet1"}, "protectedRanges": [{"warningOnly": True}]}]
    }


def test_batch_update_is_atomic(sh: gspread.Spreadsheet) -> None:
    body = {
        "requests": [
            {"addSheet": {"properties": {"title": "Half"}}},
            {"deleteSheet": {"sheetId": 123456}},
        ]
    }
    with pytest.raises(APIError) as err:
        sh.batch_update(body)
    assert err.value.error["message"] == "Invalid requests[1].deleteSheet: No grid with id: 123456"
    assert [w.title for w in sh.worksheets()] == ["Sheet1"]


# --- quota, faults, counters ---------------------------------------------------------------


def test_read_quota_gives_429(url: str) -> None:
    sid = admin(url, "spreadsheets", {"title": "Shared"})["spreadsheetId"]
    admin(url, "config", {"quota_reads": 5, "quota_writes": 5})
    try:
        client = gspread_client(url, email="quota-test@emulator.iam.gserviceaccount.com")
        ws = client.open_by_key(sid).sheet1  # 2 metadata reads
        for _ in range(3):
            ws.get("A1")
        with pytest.raises(APIError) as err:
            ws.get("A1")
        assert err.value.response.status_code == 429
        assert err.value.error["status"] == "RESOURCE_EXHAUSTED"
        assert "Read requests per minute per user" in err.value.error["message"]
        ws.update([["writes have their own bucket"]], "A1")
    finally:
        admin(url, "config", {"quota_reads": 1000, "quota_writes": 1000})


def test_fault_injection(url: str, gc: gspread.Client, sh: gspread.Spreadsheet) -> None:
    ws = sh.sheet1
    admin(url, "faults", {"count": 2, "status": 500, "kind": "values_read"})
    for _ in range(2):
        with pytest.raises(APIError) as err:
            ws.get("A1")
        assert err.value.response.status_code == 500
    ws.get("A1")
    admin(url, "faults", {"count": 1, "status": 429})
    with pytest.raises(APIError) as err:
        ws.update([["x"]], "A1")
    assert err.value.error["status"] == "RESOURCE_EXHAUSTED"
    admin(url, "faults", {"count": 1, "delay_ms": 400})
    gc.set_timeout(0.1)
    try:
        with pytest.raises(requests.exceptions.ReadTimeout):
            ws.get("A1")
    finally:
        gc.set_timeout(None)


def test_request_counters(url: str, sh: gspread.Spreadsheet) -> None:
    ws = sh.sheet1
    admin(url, "requests", method="DELETE")
    sh.fetch_sheet_metadata()
    ws.get("A1:B2")
    ws.batch_update([{"range": "A1", "values": [["x"]]}])
    ws.freeze(rows=1)
    log = admin(url, "requests", method="GET")
    assert log["counters"] == {
        "metadata_read": 1,
        "values_read": 1,
        "values_write": 1,
        "batch_update": 1,
    }
    assert [e["kind"] for e in log["log"]] == [
        "metadata_read",
        "values_read",
        "values_write",
        "batch_update",
    ]


# --- admin: seeding, snapshots and a person's edits -----------------------------------------


def test_seed_snapshot_and_person_edits(url: str, gc: gspread.Client) -> None:
    seeded = admin(
        url,
        "spreadsheets",
        {
            "title": "Seeded",
            "sheets": [
                {
                    "title": "Orders",
                    "rows": 10,
                    "cols": 3,
                    "values": [
                        ["Order", "Qty", "Status"],
                        ["SO-2", 5, "open"],
                        ["SO-1", 7, "open"],
                    ],
                }
            ],
        },
    )
    sid = seeded["spreadsheetId"]
    ws = gc.open_by_key(sid).worksheet("Orders")
    assert ws.get_all_values()[1] == ["SO-2", "5", "open"]
    ws.spreadsheet.batch_update(
        {
            "requests": [
                {
                    "addProtectedRange": {
                        "protectedRange": {
                            "range": {"sheetId": ws.id, "startColumnIndex": 0, "endColumnIndex": 1}
                        }
                    }
                },
                {
                    "setDataValidation": {
                        "range": {
                            "sheetId": ws.id,
                            "startRowIndex": 1,
                            "startColumnIndex": 2,
                            "endColumnIndex": 3,
                        },
                        "rule": {
                            "condition": {
                                "type": "ONE_OF_LIST",
                                "values": [{"userEnteredValue": "open"}],
                            },
                            "strict": True,
                        },
                    }
                },
            ]
        }
    )
    typed = admin(
        url,
        f"spreadsheets/{sid}/type",
        {"sheet": "Orders", "cells": {"B2": "6", "A2": "SO-9", "C3": "bogus"}},
    )
    assert typed["applied"] == ["B2"]
    assert [r["reason"].split(":")[0] for r in typed["rejected"]] == ["protected", "invalid"]
    admin(url, f"spreadsheets/{sid}/sort", {"sheet": "Orders", "column": "A"})
    admin(
        url,
        f"spreadsheets/{sid}/insert_rows",
        {"sheet": "Orders", "before": 3, "values": [["SO-5", 1, "open"]]},
    )
    admin(url, f"spreadsheets/{sid}/duplicate_row", {"sheet": "Orders", "row": 2})
    admin(url, f"spreadsheets/{sid}/delete_rows", {"sheet": "Orders", "row": 4})
    snap = admin(url, f"spreadsheets/{sid}", method="GET")
    assert snap["sheets"][0]["values"] == [
        ["Order", "Qty", "Status"],
        ["SO-1", 7, "open"],
        ["SO-5", 1, "open"],
        ["SO-1", 7, "open"],
    ]
    assert snap["sheets"][0]["rowCount"] == 10
    assert ws.col_values(1) == ["Order", "SO-1", "SO-5", "SO-1"]


# --- units and the command line ------------------------------------------------------------


def test_a1_parsing() -> None:
    assert a1.split_sheet("'It''s mine'!A1:B2") == ("It's mine", "A1:B2")
    assert a1.split_sheet("Sheet1") == (None, "Sheet1")
    assert a1.parse_cells("B2") == a1.Bounds(1, 1, 2, 2, single=True)
    assert a1.parse_cells("A:C") == a1.Bounds(0, 0, None, 3)
    assert a1.parse_cells("2:5") == a1.Bounds(1, 0, 5, None)
    assert a1.parse_cells("A2:2") == a1.Bounds(1, 0, 2, None)
    assert a1.parse_cells("B3:A1") == a1.Bounds(0, 0, 3, 2)
    assert a1.quote_title("Sheet1") == "Sheet1"
    assert a1.quote_title("My Sheet") == "'My Sheet'"
    assert a1.quote_title("A1") == "'A1'"
    assert a1.index_to_col(27) == "AB"
    for bad in ("A", "1A", "A1:", ":B2"):
        with pytest.raises(ValueError):
            a1.parse_cells(bad)


def test_command_line_server_starts() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sheets.emulator", "--port", str(port), "--quota-reads", "7"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        config = requests.get(f"http://127.0.0.1:{port}/_admin/config", timeout=5).json()
        assert config["quota_reads"] == 7
    finally:
        proc.terminate()
        proc.wait(timeout=5)
