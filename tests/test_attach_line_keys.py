"""A sheet of one row per order line without a line id: each line keyed on its order id and
its line number (the team's column, or the row's position in its order), created with the
order through the import, edited from the sheet, and the derived key never written."""

from __future__ import annotations

import json
from datetime import date, timedelta

from openpyxl import Workbook
from sqlalchemy import select

from portal.extensions import db
from portal.models import OrderLine, Tracker
from portal.sync import attach
from sheets.backends.xlsx import XlsxBackend
from sheets.grid import CellWrite
from sheets.line_keys import POSITION, LineKeyBackend
from tests.attach_helpers import members, seed_customers, seed_products, write_mapping

DAY = date.today() - timedelta(days=4)
MAPPING = {"Order ID": "order_ref", "Date": "order_date", "Customer": "customer"}


def _book(path):  # type: ignore[no-untyped-def]
    wb = Workbook()
    ws = wb.active
    ws.title = "Lines"
    ws.append(["Order ID", "Date", "Customer", "SKU", "Qty"])
    ws.append(["O-1", DAY, "ACME", "BOLT-1", 4])
    ws.append(["O-2", DAY, "ACME", "BOLT-1", 1])
    ws.append(["O-1", DAY, "ACME", "NUT-1", 2])  # the second line of O-1, below O-2
    numbered = wb.create_sheet("Numbered")
    numbered.append(["Order ID", "Line", "Date", "Customer", "SKU", "Qty"])
    numbered.append(["N-1", 20, DAY, "ACME", "NUT-1", 3])
    numbered.append(["N-1", 10, DAY, "ACME", "BOLT-1", 6])
    wb.save(path)
    return path


def _lines() -> dict[str, tuple[str, int]]:
    db.session.expire_all()
    found = db.session.execute(select(OrderLine)).scalars()
    return {line.external_ref: (line.product.sku, line.quantity) for line in found}


def test_lines_keyed_by_order_and_position_or_line_number(clean_db, tmp_path) -> None:
    seed_customers({"ACME": "Acme Ltd"})
    seed_products({"BOLT-1": "Hex bolt M8", "NUT-1": "Wing nut"})
    book = _book(tmp_path / "lines.xlsx")
    mapping = write_mapping(tmp_path / "m.json", {**MAPPING, "SKU": "sku", "Qty": "quantity"})
    runner = clean_db.test_cli_runner()
    base = ["sheets", "attach"]
    args = ["--kind", "order_lines", "--file", str(book), "--mapping", str(mapping)]
    before = members(book)

    result = runner.invoke(
        args=[
            *base,
            "pos",
            *args,
            "--sheet",
            "Lines",
            "--line-number",
            "position",
            "--may-create",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [(r["row"], r["key"], r["outcome"]) for r in doc["rows"]] == [
        (2, "O-1/1", "created"),
        (3, "O-2/1", "created"),
        (4, "O-1/2", "created"),
    ]
    assert _lines() == {"O-1/1": ("BOLT-1", 4), "O-2/1": ("BOLT-1", 1), "O-1/2": ("NUT-1", 2)}
    tracker = db.session.query(Tracker).filter_by(name="pos").one()
    assert (tracker.key_header, tracker.line_key) == ("Line key", "#")
    assert members(book) == before  # the derived key is never written to the sheet

    backend = XlsxBackend(book, "Lines")
    backend.write([CellWrite(4, 5, 5)], backend.read())  # O-1's second line: quantity 5
    again = json.loads(runner.invoke(args=["sheets", "sync", "pos", "--json"]).output)
    got = {r["key"]: r["outcome"] for r in again["rows"]}
    assert got == {"O-1/1": "unchanged", "O-2/1": "unchanged", "O-1/2": "updated"}
    assert _lines()["O-1/2"] == ("NUT-1", 5)
    assert XlsxBackend(book, "Lines").read().rows[0] == [
        "Order ID",
        "Date",
        "Customer",
        "SKU",
        "Qty",
    ]

    numbered = runner.invoke(
        args=[
            *base,
            "num",
            *args,
            "--sheet",
            "Numbered",
            "--line-number",
            "Line",
            "--may-create",
            "--json",
        ]
    )
    assert numbered.exit_code == 0, numbered.output
    keys = [(r["key"], r["outcome"]) for r in json.loads(numbered.output)["rows"]]
    assert keys == [("N-1/20", "created"), ("N-1/10", "created")]
    assert {k: v for k, v in _lines().items() if k.startswith("N-")} == {
        "N-1/20": ("NUT-1", 3),
        "N-1/10": ("BOLT-1", 6),
    }


def test_line_number_needs_lines_and_an_order_id(clean_db, tmp_path) -> None:
    book = _book(tmp_path / "lines.xlsx")
    runner = clean_db.test_cli_runner()

    def error(kind: str, number: str, *extra: str) -> str:
        args = ["sheets", "attach", "x", "--kind", kind, "--file", str(book)]
        result = runner.invoke(args=[*args, "--line-number", number, *extra])
        assert result.exit_code == 1 and "Traceback" not in result.output
        return result.output.strip().splitlines()[-1]

    assert error("orders", "position") == (
        "error: --line-number is for a sheet of order lines (--kind order_lines)"
    )
    mapping = write_mapping(tmp_path / "m.json", {"Date": "order_date", "SKU": "sku"})
    assert error("order_lines", "position", "--mapping", str(mapping)) == (
        "error: lines keyed by their order need the team's order id column mapped"
    )
    assert error("order_lines", "Line No") == "error: no column 'Line No' on row 1"
    assert db.session.query(Tracker).count() == 0


def test_the_derived_key_column_is_never_written(tmp_path) -> None:
    book = _book(tmp_path / "lines.xlsx")
    backend = LineKeyBackend(XlsxBackend(book, "Lines"), "Line key", "Order ID", POSITION)
    snap = backend.read()
    assert [row[5] for row in snap.rows] == ["Line key", "O-1/1", "O-2/1", "O-1/2"]
    # the engine writing the key column is dropped; a status header right of it lands in F
    backend.write([CellWrite(2, 6, "X"), CellWrite(1, 7, "Sync status")], snap)
    rows = XlsxBackend(book, "Lines").read().rows
    assert rows[0] == ["Order ID", "Date", "Customer", "SKU", "Qty", "Sync status"]
    assert all(len(row) <= 6 and "X" not in row for row in rows)


def test_the_suggested_line_key_follows_the_sheet(tmp_path) -> None:
    """The portal's default for lines without a line id: a line number column when there is
    one (or the column mapped as line id whose values repeat), else the row's position; none
    when the mapped line id is unique per row, or for a sheet of orders."""
    book = _book(tmp_path / "lines.xlsx")
    wb = Workbook()
    ws = wb.active
    ws.title = "Ids"
    ws.append(["Row ID", "Order ID", "SKU", "Qty"])
    ws.append([1, "O-1", "BOLT-1", 4])
    ws.append([2, "O-1", "NUT-1", 2])
    repeats = wb.create_sheet("Repeats")  # "Line No" reads as a line id, but repeats
    repeats.append(["Order ID", "Line No", "SKU", "Qty"])
    repeats.append(["O-1", 1, "BOLT-1", 4])
    repeats.append(["O-2", 1, "NUT-1", 2])
    wb.save(tmp_path / "ids.xlsx")

    def suggested(path, sheet, kind="order_lines", **mapped):  # type: ignore[no-untyped-def]
        proposal = attach.propose(attach.Source("xlsx", str(path)), kind, sheet, None)
        mapping = {**attach.mapping_of(proposal), **mapped}
        return attach.suggest_line_number(kind, proposal, mapping)

    assert suggested(book, "Lines") == POSITION
    assert suggested(book, "Numbered") == "Line"
    assert suggested(tmp_path / "ids.xlsx", "Repeats") == "Line No"
    assert suggested(tmp_path / "ids.xlsx", "Ids") is None  # Row ID: one per row
    assert suggested(tmp_path / "ids.xlsx", "Ids", **{"Row ID": "order_ref"}) == POSITION
    assert suggested(book, "Lines", kind="orders") is None
