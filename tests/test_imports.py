"""Importing order history from a team's files (issue 13): formats, history kept as given,
every row's fate, dry runs, corrected files and undo."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    AuditEvent,
    Customer,
    ImportRun,
    InventoryMovement,
    OrderLine,
    Product,
    SalesOrder,
)
from portal.services import changes, imports
from portal.services.base import Actor, ConflictError
from portal.services.imports_fields import preset_mapping
from sheets.readers import read_table
from tests.conftest import actor
from tests.factories import make_catalog
from tests.import_files import LINE_HEADERS, LINE_ROWS, WRITERS, write_xlsx

CLI = Actor.system("system:cli")


def _import(path: Path, **options) -> imports.ImportResult:
    table = read_table(path)
    settings = imports.ImportOptions(preset_mapping("superstore", table.headers), **options)
    return imports.import_orders(path, table, CLI, settings)


def _snapshot() -> list[tuple]:
    """Every order as stored, field by field, with its lines."""
    orders = db.session.scalars(select(SalesOrder).order_by(SalesOrder.external_ref))
    return [
        (
            order.external_ref,
            order.order_date,
            order.ship_date,
            order.status,
            order.ship_mode,
            order.customer.code,
            order.customer.name,
            order.customer.segment,
            order.customer.region,
            order.ship_to_text,
            order.source,
            [
                (
                    line.external_ref,
                    line.product.sku,
                    line.product.name,
                    line.product.category,
                    line.quantity,
                    line.unit_price,
                    line.list_price,
                    line.discount_pct,
                    line.qty_shipped,
                    line.qty_allocated,
                )
                for line in order.lines
            ],
            order.total,
        )
        for order in orders
    ]


def test_a_line_list_keeps_its_history_as_given(clean_db, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "orders.xlsx", LINE_HEADERS, LINE_ROWS)
    result = _import(path, today=date(2025, 1, 1))
    assert result.counts["orders_created"] == 3
    assert [row.outcome for row in result.rows] == ["created"] * 4
    b2, a1, c3 = _snapshot()  # by order id
    assert a1[:11] == (
        "US-A1",
        date(2024, 1, 5),
        date(2024, 1, 8),
        "shipped",
        "Second Class",
        "CG-1",
        "Claire Gute",
        "Consumer",
        "South",
        "Henderson Kentucky 42420, United States",
        "import:orders.xlsx",
    )
    price_1, price_2, no_discount = Decimal("130.9800"), Decimal("243.9800"), Decimal("0.00")
    assert a1[11] == [
        (
            "US-A1/1",
            "FUR-1",
            "Bücherregal Bush",
            "Furniture",
            2,
            price_1,
            price_1,
            no_discount,
            2,
            0,
        ),
        ("US-A1/2", "FUR-2", "Hon Chairs", "Furniture", 3, price_2, price_2, no_discount, 3, 0),
    ]
    assert a1[12] == Decimal("993.90")
    # a line amount after a 20 % discount: net 7.31 a unit, 9.1375 before the discount
    assert b2[11][0][5:8] == (Decimal("7.3100"), Decimal("9.1375"), Decimal("20.00"))
    assert b2[6] == "Zoë Müller"
    # no ship date: an open order, confirmed, taking no stock (docs/import.md)
    assert c3[3] == "confirmed" and c3[11][0][8:] == (0, 0)
    assert db.session.scalar(select(func.count()).select_from(InventoryMovement)) == 0


@pytest.mark.parametrize("suffix", [".xls", ".ods", ".csv", ".xlsb"])
def test_every_format_imports_the_same_as_the_xlsx(clean_db, tmp_path: Path, suffix) -> None:
    _import(write_xlsx(tmp_path / "orders.xlsx", LINE_HEADERS, LINE_ROWS))
    expected = [entry[:10] + entry[11:] for entry in _snapshot()]
    from tests.conftest import wipe_business_tables

    wipe_business_tables()
    path = WRITERS[suffix](tmp_path / f"orders{suffix}", LINE_HEADERS, LINE_ROWS)
    result = _import(path)
    assert result.counts["rows_refused"] == 0, result.to_json()
    assert [entry[:10] + entry[11:] for entry in _snapshot()] == expected


def test_the_same_file_again_changes_nothing_and_a_corrected_one_only_what_differs(
    clean_db, tmp_path: Path
) -> None:
    path = write_xlsx(tmp_path / "orders.xlsx", LINE_HEADERS, LINE_ROWS)
    first = _import(path)
    before = _snapshot()
    again = _import(path)
    assert again.counts["orders_unchanged"] == 3 and again.counts["orders_created"] == 0
    assert {row.outcome for row in again.rows} == {"unchanged"}
    assert _snapshot() == before
    rows = [list(row) for row in LINE_ROWS]
    rows[2][16:18] = [21.93, 3]  # DE-B2: 3 units, not 2
    corrected = _import(write_xlsx(tmp_path / "orders.xlsx", LINE_HEADERS, rows))
    assert corrected.counts["orders_updated"] == 1
    assert corrected.counts["orders_unchanged"] == 2
    versions = dict(db.session.execute(select(OrderLine.external_ref, OrderLine.version)).all())
    assert versions == {"US-A1/1": 1, "US-A1/2": 1, "DE-B2/3": 2, "US-C3/4": 1}
    assert set(db.session.scalars(select(SalesOrder.version))) == {1}
    b2 = db.session.scalar(select(SalesOrder).where(SalesOrder.external_ref == "DE-B2"))
    assert b2.lines[0].quantity == 3 and b2.total == Decimal("21.93")

    imports.undo(corrected.run_id, CLI)  # the correction taken back
    db.session.expire_all()
    assert _snapshot() == before
    imports.undo(first.run_id, CLI)  # and the import itself
    assert db.session.scalar(select(func.count()).select_from(SalesOrder)) == 0
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 0
    assert db.session.scalar(select(func.count()).select_from(Product)) == 0
    assert db.session.get(ImportRun, first.run_id).status == "undone"


def test_an_import_whose_order_moved_on_cannot_be_undone(clean_db, tmp_path: Path) -> None:
    result = _import(write_xlsx(tmp_path / "orders.xlsx", LINE_HEADERS, LINE_ROWS))
    open_order = db.session.scalar(select(SalesOrder).where(SalesOrder.external_ref == "US-C3"))
    changes.cancel_order(open_order, actor("specialist"), "customer_request")
    with pytest.raises(ConflictError, match=f"1 of its orders moved on since .{open_order.number}"):
        imports.undo(result.run_id, CLI)
    assert db.session.scalar(select(func.count()).select_from(SalesOrder)) == 3
    line_changed = _import(write_xlsx(tmp_path / "other.xlsx", LINE_HEADERS, LINE_ROWS[:1]))
    assert line_changed.counts["orders_unchanged"] == 1
    a1 = db.session.scalar(select(SalesOrder).where(SalesOrder.external_ref == "US-A1"))
    orders_lines = db.session.scalars(select(OrderLine).where(OrderLine.order_id == a1.id))
    edited = next(iter(orders_lines))
    from portal.services.base import save_versioned

    edited.discount_pct = Decimal("5.00")  # a line changed (as an amendment would)
    save_versioned(db.session, [edited], ["discount_pct"])
    db.session.commit()
    with pytest.raises(ConflictError, match=f"2 of its orders moved on since .{a1.number}"):
        imports.undo(result.run_id, CLI)
    # and a re-import leaves the order the portal changed as it is, saying so
    again = _import(tmp_path / "orders.xlsx")
    refused = [row for row in again.rows if row.outcome == "refused"]
    assert [row.number for row in refused] == [2, 3, 5]  # US-A1's line and US-C3 changed
    assert "changed since its import; left as it is" in refused[0].reason


def test_a_dry_run_decides_every_row_and_writes_nothing(clean_db, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "orders.xlsx", LINE_HEADERS, LINE_ROWS)
    result = _import(path, dry_run=True)
    assert result.counts["orders_created"] == 3 and result.counts["customers_created"] == 2
    assert [row.outcome for row in result.rows] == ["created"] * 4
    for model in (SalesOrder, OrderLine, Customer, Product, ImportRun, AuditEvent):
        assert db.session.scalar(select(func.count()).select_from(model)) == 0, model


def test_orders_whose_rows_disagree_are_refused_with_the_reason(clean_db, tmp_path) -> None:
    rows = [list(row) for row in LINE_ROWS]
    rows[1][2] = date(2024, 1, 6)  # US-A1's second line gives another order date
    result = _import(write_xlsx(tmp_path / "orders.xlsx", LINE_HEADERS, rows))
    outcomes = {row.number: (row.outcome, row.reason) for row in result.rows}
    reason = "rows 2 and 3 of order US-A1 disagree on order_date: 2024-01-05 and 2024-01-06"
    assert outcomes[2] == outcomes[3] == ("refused", reason)
    assert outcomes[4][0] == outcomes[5][0] == "created"


INVOICE_HEADERS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate"]
INVOICE_HEADERS += ["UnitPrice", "CustomerID", "Country"]


def test_cancellation_invoices_become_returns_of_the_order_they_refer_to(
    clean_db, tmp_path: Path
) -> None:
    rows = [
        ["536365", "85123A", "WHITE HANGING HEART", 6, "2010-12-01 08:26", 2.55, 17850, "UK"],
        ["536365", "71053", "WHITE METAL LANTERN", 6, "2010-12-01 08:26", 3.39, 17850, "UK"],
        ["C536379", "85123A", "WHITE HANGING HEART", -2, "2010-12-02 09:41", 2.55, 17850, "UK"],
        ["C536380", "99999", "NEVER SOLD", -1, "2010-12-02 09:41", 1.00, 17850, "UK"],
    ]
    path = write_xlsx(tmp_path / "invoices.xlsx", INVOICE_HEADERS, rows)
    table = read_table(path)
    mapping = preset_mapping("invoice-lines", table.headers)
    settings = imports.ImportOptions(mapping, cancel_prefix="C", default_status="invoiced")
    result = imports.import_orders(path, table, CLI, settings)
    outcomes = [(row.number, row.outcome, row.reason) for row in result.rows]
    assert outcomes[2] == (4, "created", "return of 2 on order 536365")
    assert outcomes[3][1] == "refused" and "no earlier order of this file" in outcomes[3][2]
    order = db.session.scalar(select(SalesOrder))
    assert (order.external_ref, order.status, order.customer.code) == (
        "536365",
        "invoiced",
        "17850",
    )
    assert [(line.quantity, line.qty_returned) for line in order.lines] == [(6, 2), (6, 0)]


def test_the_cli_imports_reports_every_bad_row_and_writes_the_result_workbook(
    app, clean_db, tmp_path: Path
) -> None:
    make_catalog()  # customer C1, products SKU-1..3
    headers = ["Line", "Order", "Date", "Delivered", "Customer", "SKU", "Qty", "Price"]
    rows = [
        ["1", "T-1", date(2024, 5, 1), date(2024, 5, 3), "C1", "SKU-1", 2, 9.5],
        ["2", "T-1", date(2024, 5, 1), date(2024, 5, 3), "C1", "SKU-2", 1, 19],
        ["3", "T-2", date(2024, 5, 2), None, "C1", "SKU-404", 1, 5],
        ["4", "T-3", date(2024, 5, 2), None, "C1", "SKU-1", "two", 9.5],
        ["5", "T-4", date(2024, 5, 2), date(2099, 1, 1), "C1", "SKU-3", 1, 28.5],
        ["1", "T-1", date(2024, 5, 1), date(2024, 5, 3), "C1", "SKU-1", 2, 9.5],
    ]
    path = write_xlsx(tmp_path / "broken.xlsx", headers, rows)
    mapping = tmp_path / "mapping.json"
    fields = ["line_ref", "order_ref", "order_date", "delivered_date", "customer_code"]
    fields += ["product_code", "quantity", "unit_price"]
    mapping.write_text(json.dumps(dict(zip(headers, fields, strict=True))))
    result_book = tmp_path / "result.xlsx"
    args = ["import", "orders", str(path), "--mapping", str(mapping), "--no-new-products"]
    done = app.test_cli_runner().invoke(args=[*args, "--json", "--result", str(result_book)])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["counts"]["orders_created"] == 1 and report["counts"]["rows_refused"] == 4
    assert [(row["row"], row["outcome"], row["reason"]) for row in report["rows"]] == [
        (2, "created", ""),
        (3, "created", ""),
        (4, "refused", "unknown product 'SKU-404' (creating products is off)"),
        (5, "refused", "Qty: 'two' is not a whole number"),
        (6, "refused", "the delivery date 2099-01-01 is in the future"),
        (7, "refused", "duplicate of row 2"),
    ]
    order = db.session.scalar(select(SalesOrder).where(SalesOrder.external_ref == "T-1"))
    assert (order.status, order.delivered_date, order.total) == (
        "delivered",
        date(2024, 5, 3),
        Decimal("38.00"),
    )
    book = CalamineWorkbook.from_path(str(result_book)).get_sheet_by_name("Orders").to_python()
    assert book[0] == [*headers, "Outcome", "Reason"]
    assert [line[-2:] for line in book[1:]] == [
        [row["outcome"], row["reason"]] for row in report["rows"]
    ]
    assert [line[:2] for line in book[1:]] == [row[:2] for row in rows]
    undo = app.test_cli_runner().invoke(args=["import", "undo", str(report["import_id"])])
    assert undo.output.strip() == (
        f"import {report['import_id']} undone: orders removed 1, orders restored 0, "
        "customers removed 0, products removed 0"
    )
    assert db.session.scalar(select(func.count()).select_from(SalesOrder)) == 0


def test_the_cli_says_what_is_wrong_in_one_line(app, clean_db, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    odd = tmp_path / "orders.pdf"
    odd.write_bytes(b"%PDF")
    outcome = runner.invoke(args=["import", "orders", str(odd), "--preset", "superstore"])
    assert outcome.exit_code == 1
    assert outcome.output.strip() == (
        "Error: orders.pdf: cannot read .pdf; supported: .xlsx .xlsm .xls .xlsb .ods .csv"
    )
    missing = runner.invoke(args=["import", "orders", str(tmp_path / "gone.csv")])
    assert missing.output.strip() == "Error: gone.csv: no such file"
    path = write_xlsx(tmp_path / "o.xlsx", ["Order ID", "Qty"], [["A", 1]])
    outcome = runner.invoke(args=["import", "orders", str(path), "--preset", "superstore"])
    assert outcome.output.strip().splitlines() == [
        "Error: no column is mapped to Order date, Quantity, Customer id or Customer name, "
        "Product id or Product name"
    ]


def _invoices(path: Path, rows: list[list]) -> imports.ImportResult:
    path = write_xlsx(path, INVOICE_HEADERS, rows)
    table = read_table(path)
    mapping = preset_mapping("invoice-lines", table.headers)
    settings = imports.ImportOptions(mapping, cancel_prefix="C", default_status="invoiced")
    return imports.import_orders(path, table, CLI, settings)


def test_a_later_files_cancellations_return_units_of_the_stored_order(
    clean_db, tmp_path: Path
) -> None:
    first = [
        ["536365", "85123A", "WHITE HANGING HEART", 6, "2010-12-01 08:26", 2.55, 17850, "UK"],
        ["536365", "71053", "WHITE METAL LANTERN", 6, "2010-12-01 08:26", 3.39, 17850, "UK"],
    ]
    november = _invoices(tmp_path / "november.xlsx", first)
    assert november.counts["orders_created"] == 1
    second = [
        ["C536379", "85123A", "WHITE HANGING HEART", -2, "2010-12-02 09:41", 2.55, 17850, "UK"],
        ["C536390", "71053", "WHITE METAL LANTERN", -1, "2010-12-03 10:00", 3.39, 17850, "UK"],
        ["C536391", "71053", "WHITE METAL LANTERN", -9, "2010-12-03 10:00", 3.39, 17850, "UK"],
    ]
    path = write_xlsx(tmp_path / "december.xlsx", INVOICE_HEADERS, second)
    table = read_table(path)
    dry = imports.ImportOptions(
        preset_mapping("invoice-lines", table.headers), dry_run=True, cancel_prefix="C"
    )
    dry_run = imports.import_orders(path, table, CLI, dry)
    assert [row.outcome for row in dry_run.rows] == ["updated", "updated", "refused"]
    db.session.expire_all()
    assert [ln.qty_returned for ln in db.session.scalar(select(SalesOrder)).lines] == [0, 0]
    result = _invoices(tmp_path / "december.xlsx", second)
    order = db.session.scalar(select(SalesOrder))
    outcomes = [(row.outcome, row.reason) for row in result.rows]
    assert outcomes[0] == ("updated", f"return of 2 on stored order 536365 ({order.number})")
    assert outcomes[1] == ("updated", f"return of 1 on stored order 536365 ({order.number})")
    assert outcomes[2][0] == "refused" and "nor any stored order" in outcomes[2][1]
    assert [(line.quantity, line.qty_returned) for line in order.lines] == [(6, 2), (6, 1)]
    versions = [line.version for line in order.lines]

    again = _invoices(tmp_path / "december.xlsx", second)  # the same file again
    assert [row.outcome for row in again.rows] == ["unchanged", "unchanged", "refused"]
    first_again = _invoices(tmp_path / "november.xlsx", first)  # and the first one
    assert first_again.counts["orders_unchanged"] == 1
    db.session.expire_all()
    order = db.session.scalar(select(SalesOrder))
    assert [(line.qty_returned, line.version) for line in order.lines] == [
        (2, versions[0]),
        (1, versions[1]),
    ]
    with pytest.raises(ConflictError):  # the first run's order moved on with the second
        imports.undo(november.run_id, CLI)
    imports.undo(result.run_id, CLI)
    db.session.expire_all()
    assert [line.qty_returned for line in db.session.scalar(select(SalesOrder)).lines] == [0, 0]


def test_a_cancellation_row_cancels_units_of_an_open_order_entered_in_the_portal(
    clean_db, tmp_path: Path
) -> None:
    make_catalog()  # customer C1, products SKU-1..3
    first = [["O-9", "C1", "SKU-1", 4, date(2024, 5, 1), 9.5]]
    headers = ["Order", "Customer", "SKU", "Qty", "Date", "Price"]
    fields = ["order_ref", "customer_code", "product_code", "quantity", "order_date"]
    mapping = dict(zip(headers, [*fields, "unit_price"], strict=True))
    path = write_xlsx(tmp_path / "open.xlsx", headers, first)
    imports.import_orders(path, read_table(path), CLI, imports.ImportOptions(mapping))
    order = db.session.scalar(select(SalesOrder))
    assert order.status == "confirmed"
    path = write_xlsx(
        tmp_path / "cancel.xlsx", headers, [["O-9", "C1", "SKU-1", -4, date(2024, 5, 2), 9.5]]
    )
    result = imports.import_orders(path, read_table(path), CLI, imports.ImportOptions(mapping))
    assert result.rows[0].reason == f"cancellation of 4 on stored order O-9 ({order.number})"
    db.session.expire_all()
    order = db.session.scalar(select(SalesOrder))
    assert (order.status, order.lines[0].qty_cancelled) == ("cancelled", 4)
