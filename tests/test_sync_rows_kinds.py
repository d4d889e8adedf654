"""New rows of order lines, stock receipts and shipments (preset and mapped columns), and the
first edit after
``sheets init`` on a stock tracker (issue 12: "order: is required; sku: is required" although
both were filled; a "changed on both sides" conflict although the portal had not changed)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from openpyxl import load_workbook

from jobs.sync import sync_tracker
from portal.extensions import db
from portal.models import StockLevel, SyncConflict
from portal.services import fulfillment, lifecycle, orders, sync_runs, trackers
from tests.factories import SETUP, make_catalog
from tests.sync_helpers import ADMIN, init_workbook, last_run, make_orders, order

LINE_TAB = "Lines"


def _lines_tracker(path: Path, columns: list[dict[str, str]] | None = None, **extra: str):
    data = {
        "name": "lines",
        "kind": "order_lines",
        "location": str(path),
        "tab": LINE_TAB,
        "may_create": True,
        **extra,
    }
    if columns is not None:
        data["columns"] = json.dumps(columns)
    return trackers.trackers.create(data, ADMIN)


def _type_row(path: Path, tab: str, values: dict[str, object]) -> int:
    wb = load_workbook(path)
    ws = wb[tab]
    headers = {str(c.value): c.column for c in ws[1] if c.value is not None}
    row = ws.max_row + 1
    for header, value in values.items():
        ws.cell(row, headers[header]).value = value
    wb.save(path)
    return row


def _cell(path: Path, tab: str, row: int, header: str) -> object:
    ws = load_workbook(path)[tab]
    headers = {str(c.value): c.column for c in ws[1] if c.value is not None}
    return ws.cell(row, headers[header]).value


def test_new_order_line_row_with_the_preset_columns_adds_the_line(clean_db, tmp_path) -> None:
    number = make_orders(1)[0].number
    path = tmp_path / "lines.xlsx"
    tracker = _lines_tracker(path)
    init_workbook(tracker)
    sync_tracker(tracker.id)
    # Product is the portal's and not set from a new row: what was typed there is replaced
    row = _type_row(
        path, LINE_TAB, {"Order No": number, "SKU": "SKU-2", "Product": "typed", "Qty": 4}
    )
    outcome = sync_tracker(tracker.id)
    assert outcome["errors"] == 0, sync_runs.run_rows(last_run(tracker.id).id)[0].message
    assert outcome["created"] == 1
    lines = order(number).lines
    assert [(ln.product.sku, ln.quantity) for ln in lines] == [("SKU-1", 1), ("SKU-2", 4)]
    assert _cell(path, LINE_TAB, row, "Line") == f"{number}/2"
    assert _cell(path, LINE_TAB, row, "Product") == "Product 2"  # filled in by the portal


def test_new_order_line_row_with_mapped_columns_adds_the_line(clean_db, tmp_path) -> None:
    number = make_orders(1)[0].number
    path = tmp_path / "lines.xlsx"
    columns = [
        {"header": "Order ID", "field": "order", "type": "text", "owner": "portal"},
        {"header": "Item", "field": "sku", "type": "text", "owner": "portal"},
        {"header": "Quantity", "field": "quantity", "type": "int", "owner": "both"},
    ]
    tracker = _lines_tracker(path, columns, key_header="Line ref")
    init_workbook(tracker)
    sync_tracker(tracker.id)
    _type_row(path, LINE_TAB, {"Order ID": number, "Item": "SKU-3", "Quantity": 2})
    outcome = sync_tracker(tracker.id)
    assert (outcome["created"], outcome["errors"]) == (1, 0)
    assert [ln.product.sku for ln in order(number).lines] == ["SKU-1", "SKU-3"]


def test_new_row_still_refused_with_the_reason_when_order_or_sku_is_blank(
    clean_db, tmp_path
) -> None:
    make_orders(1)
    path = tmp_path / "lines.xlsx"
    tracker = _lines_tracker(path)
    init_workbook(tracker)
    sync_tracker(tracker.id)
    _type_row(path, LINE_TAB, {"SKU": "SKU-2", "Qty": 4})
    sync_tracker(tracker.id)
    refused = sync_runs.run_rows(last_run(tracker.id).id, "refused")
    assert len(refused) == 1 and "order: is required" in refused[0].message
    assert "sku" not in refused[0].message


def test_first_edit_after_sheets_init_on_a_stock_tracker_is_not_a_conflict(
    clean_db, tmp_path
) -> None:
    make_orders(1)
    path = tmp_path / "stock.xlsx"
    runner = clean_db.test_cli_runner()
    args = ["--kind", "stock_levels", "--location", str(path), "--tab", "Stock"]
    assert runner.invoke(args=["sheets", "add", "stock", *args]).exit_code == 0
    init = runner.invoke(args=["sheets", "init", "stock"])
    assert init.exit_code == 0, init.output
    wb = load_workbook(path)
    ws = wb["Stock"]
    headers = {str(c.value): c.column for c in ws[1] if c.value is not None}
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == "SKU-1@W1")
    ws.cell(row, headers["On hand"]).value = 90  # the first edit: a count
    wb.save(path)
    tracker = trackers.by_name("stock")
    outcome = sync_tracker(tracker.id)
    assert (outcome["conflicts"], outcome["applied"], outcome["errors"]) == (0, 1, 0)
    assert db.session.query(SyncConflict).count() == 0
    db.session.expire_all()
    level = db.session.query(StockLevel).filter(StockLevel.on_hand == 90).one()
    assert level.product.sku == "SKU-1"


def _tracker(path: Path, name: str, kind: str, tab: str, columns=None, **extra):
    data = {"name": name, "kind": kind, "location": str(path), "tab": tab, "may_create": True}
    if columns is not None:
        data["columns"] = json.dumps(columns)
    tracker = trackers.trackers.create({**data, **extra}, ADMIN)
    init_workbook(tracker)
    sync_tracker(tracker.id)
    return tracker


def _on_hand(sku: str, code: str) -> int:
    db.session.expire_all()
    return next(
        level.on_hand
        for level in db.session.query(StockLevel)
        if level.product.sku == sku and level.warehouse.code == code
    )


def test_receipt_rows_with_preset_and_mapped_columns_receive_stock(clean_db, tmp_path) -> None:
    make_orders(1)
    preset = _tracker(tmp_path / "receipts.xlsx", "receipts", "stock_receipts", "Receipts")
    before = _on_hand("SKU-2", "W2")
    row = _type_row(
        tmp_path / "receipts.xlsx",
        "Receipts",
        {"SKU": "sku-2", "Warehouse": "W2", "Qty": 15, "Reference": "PO-77"},
    )
    bad = _type_row(tmp_path / "receipts.xlsx", "Receipts", {"SKU": "NOPE", "Qty": 1})
    outcome = sync_tracker(preset.id)
    assert (outcome["created"], outcome["errors"]) == (1, 1)
    assert _on_hand("SKU-2", "W2") == before + 15
    number = _cell(tmp_path / "receipts.xlsx", "Receipts", row, "Receipt")
    assert str(number).startswith("GR-")
    refused = sync_runs.run_rows(last_run(preset.id).id, "refused")
    assert [r.row for r in refused] == [bad]
    assert "no product with SKU NOPE" in refused[0].message
    assert "warehouse: is required" in refused[0].message

    columns = [
        {"header": "Item", "field": "sku", "type": "text", "owner": "portal"},
        {"header": "Location", "field": "warehouse", "type": "text", "owner": "portal"},
        {"header": "Units", "field": "quantity", "type": "int", "owner": "portal"},
    ]
    mapped = _tracker(
        tmp_path / "team.xlsx", "team-receipts", "stock_receipts", "In", columns, key_header="GR"
    )
    _type_row(tmp_path / "team.xlsx", "In", {"Item": "SKU-3", "Location": "W1", "Units": 4})
    assert sync_tracker(mapped.id)["created"] == 1
    assert _on_hand("SKU-3", "W1") == 104


def test_shipment_row_ships_what_the_order_has_allocated_there(clean_db, tmp_path) -> None:
    data = make_catalog()
    made = orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "requested_date": date.today() + timedelta(days=30),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [{"product_id": data.products[0].id, "quantity": 3}],
        SETUP,
    )
    lifecycle.confirm(made, SETUP)
    fulfillment.allocate(made, SETUP)
    path = tmp_path / "shipments.xlsx"
    tracker = _tracker(path, "shipments", "shipments", "Shipments")
    row = _type_row(
        path,
        "Shipments",
        {"Order No": made.number, "Warehouse": "W1", "Carrier": "DHL", "Tracking": "T-1"},
    )
    nothing = _type_row(path, "Shipments", {"Order No": made.number, "Warehouse": "W2"})
    outcome = sync_tracker(tracker.id)
    assert (outcome["created"], outcome["errors"]) == (1, 1)
    shipped = order(made.number)
    assert shipped.lines[0].qty_shipped == 3
    assert str(_cell(path, "Shipments", row, "Shipment")).startswith("SH")
    refused = sync_runs.run_rows(last_run(tracker.id).id, "refused")
    assert [r.row for r in refused] == [nothing]
    assert f"nothing of order {made.number} is allocated in W2" in refused[0].message
