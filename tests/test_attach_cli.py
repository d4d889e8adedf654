"""`orderbridge sheets attach` on a small team workbook: an Excel table whose headers are on
row 3 under a title, found without being named; rows numbered as the sheet numbers them;
rows above the headers and the other sheets untouched; bad input as one line, never a
traceback."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from openpyxl.worksheet.table import Table

from portal.extensions import db
from portal.models import Customer, SalesOrder, Tracker
from portal.services import orders
from sheets.backends.xlsx import XlsxBackend
from sheets.grid import CellWrite
from tests.attach_helpers import (
    db_state,
    members,
    seed_customers,
    seed_products,
    sheet_rows,
    write_mapping,
)
from tests.factories import SETUP

DAY = date.today() - timedelta(days=10)
HEADERS = ["SO#", "Order Date", "Customer", "PO", "Comment"]


def _book(path: Path) -> Path:
    wb = Workbook()
    cover = wb.active
    cover.title = "Cover"
    cover["A1"] = "Read me: the West team's open orders"
    ws = wb.create_sheet("Open orders")
    ws["A1"] = "West team - open orders"
    ws["A2"] = "updated every Monday"
    ws.append(HEADERS)
    for n in range(3):
        ws.append([f"W-{100 + n}", DAY, "ACME", f"PO-{n}", f"note {n}"])
    ws["H1"] = "=COUNTA(A4:A6)"
    ws.add_table(Table(displayName="OpenOrders", ref="A3:E6"))
    plain = wb.create_sheet("Plain")
    plain["A1"] = "Exported from the old system"
    plain.append(HEADERS)
    plain.append(["P-1", DAY, "ACME", "PO-9", None])
    plain.append(["P-1", DAY, "ACME", "PO-10", None])  # a doubled key
    wb.save(path)
    return path


def _run(runner, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(args=["sheets", *args])


@pytest.fixture
def team_book(clean_db, tmp_path) -> Path:
    seed_customers({"ACME": "Acme Ltd"})
    return _book(tmp_path / "west.xlsx")


def test_a_table_under_a_title_is_found_and_only_its_rows_sync(clean_db, team_book) -> None:
    customer = db.session.query(Customer).filter_by(code="ACME").one()
    orders.orders.create({"customer_id": customer.id, "external_ref": "OTHER-1"}, SETUP)
    runner = clean_db.test_cli_runner()
    before = members(team_book)
    args = ["attach", "west", "--kind", "orders", "--file", str(team_book), "--may-create"]
    result = _run(runner, *args, "--status-column", "Sync status", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["sheet"], doc["header_row"], doc["table"]) == ("Open orders", 3, "OpenOrders")
    assert {m["header"]: m["field"] for m in doc["mapping"]} == {
        "SO#": "order_ref",
        "Order Date": "order_date",
        "Customer": "customer",
        "PO": "customer_po",
        "Comment": "notes",
    }
    assert [(r["row"], r["key"], r["outcome"]) for r in doc["rows"]] == [
        (4, "W-100", "created"),
        (5, "W-101", "created"),
        (6, "W-102", "created"),
    ]
    tracker = db.session.query(Tracker).filter_by(name="west").one()
    assert (tracker.tab, tracker.header_row, tracker.append_records) == ("Open orders", 3, False)
    order = db.session.query(SalesOrder).filter_by(external_ref="W-101").one()
    assert (order.order_date, order.customer_po, order.notes) == (DAY, "PO-1", "note 1")
    rows = sheet_rows(team_book, "Open orders")
    assert len(rows) == 6  # the portal's other order was not appended to the team's sheet
    assert rows[0][0] == "West team - open orders" and rows[1][0] == "updated every Monday"
    assert rows[2][:6] == [*HEADERS, "Sync status"]
    assert rows[4][5] == f"Note: added as order {order.number}"
    assert sheet_rows(team_book, "Cover")[0][0] == "Read me: the West team's open orders"
    after = members(team_book)
    assert {m for m in after if after[m] != before.get(m)} <= {
        "xl/worksheets/sheet2.xml",
        "xl/sharedStrings.xml",
    }

    backend = XlsxBackend(team_book, "Open orders")
    blank_key = [CellWrite(7, c, v) for c, v in enumerate([None, DAY, "ACME", "PO-X"], 1)]
    backend.write([CellWrite(5, 4, "PO-NEW"), *blank_key], backend.read())  # row 5: W-101's PO
    result = _run(runner, "sync", "west", "--json")
    doc = json.loads(result.output)
    got = {r["row"]: r for r in doc["rows"]}
    assert got[5]["outcome"] == "updated" and got[5]["key"] == "W-101"
    assert got[4]["outcome"] == got[6]["outcome"] == "unchanged"
    assert got[7]["outcome"] == "refused"  # no order id: the team gives it, never the portal
    assert got[7]["message"] == (
        "not created: no order id: type the team's order id in the key column"
    )
    db.session.expire_all()
    assert (
        db.session.query(SalesOrder).filter_by(external_ref="W-101").one().customer_po == "PO-NEW"
    )

    dry = json.loads(_run(runner, "sync", "west", "--dry-run", "--json").output)
    assert dry["dry_run"] is True and dry["counts"] == {"unchanged": 3, "refused": 1}
    asked = _run(runner, "attach", "again", "--kind", "orders", "--file", str(team_book),
                 "--append-records", "--dry-run", "--json")  # fmt: skip
    appended = [r for r in json.loads(asked.output)["rows"] if r["outcome"] == "appended"]
    assert [(r["row"], r["key"]) for r in appended] == [(8, "OTHER-1")]  # only when asked
    twice = _run(runner, "attach", "west", "--kind", "orders", "--file", str(team_book))
    assert _one_line(twice) == "error: name: west is already used"


def test_header_row_found_without_a_table(clean_db, team_book) -> None:
    runner = clean_db.test_cli_runner()
    args = ["attach", "plain", "--kind", "orders", "--file", str(team_book), "--sheet", "Plain"]
    result = _run(runner, *args, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["header_row"], doc["table"]) == (2, None)
    doubled = "key P-1 is in rows 3, 4: neither row is synced until one is removed"
    assert doc["rows"] == [
        {"row": 3, "key": "P-1", "outcome": "refused", "message": doubled},
        {"row": 4, "key": "P-1", "outcome": "refused", "message": doubled},
    ]  # rows named as the sheet numbers them, below its title
    explicit = _run(runner, *args, "--header-row", "1", "--dry-run")
    assert explicit.exit_code == 1
    assert explicit.output.strip().splitlines()[-1] == (
        "error: no column holds the Order ID (the team's); name it with --key HEADER"
    )


def _one_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error: ")
    return line


def test_bad_input_is_one_line(clean_db, team_book, tmp_path) -> None:
    runner = clean_db.test_cli_runner()
    state = db_state()
    base = ["attach", "t", "--kind", "orders"]
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    assert "Excel 97-2003 workbook (.xls)" in _one_line(_run(runner, *base, "--file", str(old)))
    missing = _one_line(_run(runner, *base, "--file", str(tmp_path / "none.xlsx")))
    assert missing.endswith("none.xlsx does not exist")
    assert _one_line(_run(runner, *base, "--file", str(team_book), "--sheet", "Nope")) == (
        "error: no sheet named 'Nope' (sheets: Cover, Open orders, Plain)"
    )
    mapping = write_mapping(tmp_path / "m.json", {"Order No": "order_ref"})
    line = _one_line(_run(runner, *base, "--file", str(team_book), "--mapping", str(mapping)))
    assert line.endswith("no column 'Order No' in the sheet")
    wrong = write_mapping(tmp_path / "w.json", {"SO#": "order_ref", "PO": "colour"})
    assert _one_line(_run(runner, *base, "--file", str(team_book), "--mapping", str(wrong))) == (
        "error: PO: orders have no field 'colour'"
    )
    both = _one_line(_run(runner, *base, "--file", str(team_book), "--url", "x"))
    assert both == "error: give the workbook as --file PATH or --url URL (one of them)"
    assert db_state() == state


def test_line_rows_find_customer_and_product_by_name_and_grow_an_order(clean_db, tmp_path) -> None:
    seed_customers({"ACME": "Acme Ltd"})
    seed_products({"BOLT-1": "Hex bolt M8"})
    wb = Workbook()
    ws = wb.active
    ws.title = "Lines"
    ws.append(["Line ID", "Order ID", "Date", "Client", "Item", "Qty"])
    ws.append(["L-1", "O-1", DAY, "acme ltd", "Hex bolt M8", 4])
    ws.append(["L-2", "O-2", DAY, "Acme Ltd", "Wing nut", 1])
    path = tmp_path / "lines.xlsx"
    wb.save(path)
    runner = clean_db.test_cli_runner()
    args = ["attach", "lines", "--kind", "order_lines", "--file", str(path), "--may-create"]
    doc = json.loads(_run(runner, *args, "--json").output)
    assert {m["header"]: m["field"] for m in doc["mapping"]}["Client"] == "customer_name"
    assert [(r["key"], r["outcome"], r.get("header")) for r in doc["rows"]] == [
        ("L-1", "conflict", "Client"),  # found by name, but the sheet spells it differently
        ("L-1", "created", None),
        ("L-2", "refused", None),
    ]
    assert (
        doc["rows"][2]["message"]
        == "not created: unknown product 'Wing nut' (creating products is off)"
    )
    order = db.session.query(SalesOrder).filter_by(external_ref="O-1").one()
    assert order.customer.code == "ACME" and [ln.product.sku for ln in order.lines] == ["BOLT-1"]

    backend = XlsxBackend(path, "Lines")
    snap = backend.read()
    backend.write(
        [
            CellWrite(4, c, v)
            for c, v in enumerate(["L-3", "O-1", DAY, "Acme Ltd", "Hex bolt M8", 2], 1)
        ],
        snap,
    )
    doc = json.loads(_run(runner, "sync", "lines", "--json").output)
    got = {r["key"]: r for r in doc["rows"]}
    assert got["L-3"]["outcome"] == "created"
    assert got["L-3"]["message"] == f"added as a line of order {order.number}"
    db.session.expire_all()
    assert [(ln.external_ref, ln.quantity) for ln in order.lines] == [("L-1", 4), ("L-3", 2)]
