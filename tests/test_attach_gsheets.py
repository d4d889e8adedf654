"""Attach a Google Sheet by its address (real gspread against the emulator over HTTP): the
first sheet, headers found on row 2 under a title, the team's rows created or refused, the
title and the unmapped column never written; an edit of a column left alone changes nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from flask import current_app

from portal.extensions import db
from portal.models import SalesOrder
from sheets.emulator import Config
from sheets.emulator.testing import gspread_client, start_emulator, write_service_account_file
from tests.attach_helpers import seed_customers

DAY = (date.today() - timedelta(days=4)).isoformat()


@pytest.fixture
def google(clean_db, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    url, _, stop = start_emulator(config=Config(quota_reads=10_000, quota_writes=10_000))
    sa = write_service_account_file(str(tmp_path / "sa.json"), url)
    monkeypatch.setitem(current_app.config, "GOOGLE_SERVICE_ACCOUNT_FILE", sa)
    monkeypatch.setitem(current_app.config, "SHEETS_API_URL", url)
    yield gspread_client(url)
    stop()


def test_a_google_sheet_attached_by_its_address(clean_db, google) -> None:
    seed_customers({"ACME": "Acme Ltd"})
    book = google.create("West team")
    ws = book.sheet1
    ws.update_title("Open orders")
    ws.update(
        [
            ["West team - open orders", "", "", ""],
            ["Order ID", "Order Date", "Customer", "Ship Mode"],
            ["G-1", DAY, "ACME", "Air"],
            ["G-2", DAY, "GLOBEX", "Sea"],
        ],
        "A1:D4",
    )
    address = f"https://docs.google.com/spreadsheets/d/{book.id}/edit#gid=0"
    runner = clean_db.test_cli_runner()
    args = ["sheets", "attach", "west", "--kind", "orders", "--url", address, "--may-create"]
    result = runner.invoke(args=[*args, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["sheet"], doc["header_row"]) == ("Open orders", 2)
    assert [(r["row"], r["key"], r["outcome"], r["message"]) for r in doc["rows"]] == [
        (3, "G-1", "created", doc["rows"][0]["message"]),
        (4, "G-2", "refused", "not created: no customer 'GLOBEX' (creating customers is off)"),
    ]
    order = db.session.query(SalesOrder).filter_by(external_ref="G-1").one()
    assert doc["rows"][0]["message"] == f"added as order {order.number}"
    assert order.order_date.isoformat() == DAY
    assert ws.get_all_values()[:2] == [
        ["West team - open orders", "", "", ""],
        ["Order ID", "Order Date", "Customer", "Ship Mode"],
    ]

    ws.update([["G-1", DAY, "ACME", "Rail"]], "A3:D3")  # an unmapped column: not ours
    dry = json.loads(runner.invoke(args=["sheets", "sync", "west", "--dry-run", "--json"]).output)
    assert {r["row"]: r["outcome"] for r in dry["rows"]} == {3: "unchanged", 4: "refused"}


def test_an_address_of_no_spreadsheet_is_one_line(clean_db, google) -> None:
    address = "https://docs.google.com/spreadsheets/d/NoSuchSpreadsheet123/edit"
    args = ["sheets", "attach", "x", "--kind", "orders", "--url", address]
    result = clean_db.test_cli_runner().invoke(args=args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = result.output.strip().splitlines()[-1]
    assert (
        line == "error: cannot read the sheets of NoSuchSpreadsheet123: Google Sheets answered 404"
    )
