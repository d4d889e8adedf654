"""``orderbridge sheets init`` of a Google tracker: the tab on the emulator (real gspread over
HTTP) with date and money formats, in the same three requests whatever the number of rows."""

from __future__ import annotations

import json
from typing import Any

import gspread
import pytest
import requests
from flask import current_app
from sqlalchemy import select

from portal.extensions import db
from portal.models import SalesOrder
from portal.services import orders, trackers
from sheets.emulator import Config
from sheets.emulator.testing import gspread_client, start_emulator, write_service_account_file
from tests.factories import SETUP
from tests.sync_helpers import ADMIN, COLUMNS, make_orders

FORMATTED = {"value_render_option": "FORMATTED_VALUE"}


@pytest.fixture
def emulator(clean_db, tmp_path, monkeypatch):
    url, _, stop = start_emulator(config=Config(quota_reads=100_000, quota_writes=100_000))
    account = write_service_account_file(str(tmp_path / "sa.json"), url)
    monkeypatch.setitem(current_app.config, "GOOGLE_SERVICE_ACCOUNT_FILE", account)
    monkeypatch.setitem(current_app.config, "SHEETS_API_URL", url)
    yield url, gspread_client(url)
    stop()


def _tracker(gc: gspread.Client, name: str) -> tuple[Any, str]:
    key = gc.create(f"{name} book").id
    tracker = trackers.trackers.create(
        {"name": name, "kind": "orders", "backend": "gsheets", "location": key,
         "tab": "Orders", "columns": json.dumps(COLUMNS)},
        ADMIN,
    )  # fmt: skip
    return tracker, key


def _more_orders(count: int) -> None:
    first = db.session.execute(select(SalesOrder)).scalars().first()
    line = {"product_id": first.lines[0].product_id, "quantity": 1}
    orders.orders.create_many([({"customer_id": first.customer_id}, [line])] * count, SETUP)


def _counters(url: str) -> dict[str, int]:
    return requests.get(f"{url}/_admin/requests", timeout=10).json()["counters"]


def test_init_writes_the_google_tab_with_date_and_money_formats(app, emulator) -> None:
    url, gc = emulator
    numbers = [o.number for o in make_orders(3)]
    tracker, key = _tracker(gc, "orders-google")
    requests.delete(f"{url}/_admin/requests", timeout=10)
    result = app.test_cli_runner().invoke(args=["sheets", "init", tracker.name])
    assert result.exit_code == 0, result.output
    assert f"added the tab [Orders] to Google spreadsheet {key} with 3 rows" in result.output
    few = _counters(url)

    values = gc.open_by_key(key).worksheet("Orders").get_all_values(**FORMATTED)
    header, first = values[0], values[1]
    assert first[0] == numbers[0]
    requested = first[header.index("Requested")]
    assert len(requested) == 10 and requested[4] == "-"  # yyyy-mm-dd, not a serial number
    assert first[header.index("Total")].endswith(".50")  # money: two decimals
    again = app.test_cli_runner().invoke(args=["sheets", "init", tracker.name])
    assert again.exit_code == 1
    assert "already has a tab named 'Orders'" in again.output
    assert "Traceback" not in again.output

    _more_orders(120)  # many more rows cost no more requests: one write for all of them
    more, _ = _tracker(gc, "orders-google-2")
    requests.delete(f"{url}/_admin/requests", timeout=10)
    result = app.test_cli_runner().invoke(args=["sheets", "init", more.name])
    assert result.exit_code == 0, result.output
    assert "with 123 rows" in result.output
    assert _counters(url) == few
