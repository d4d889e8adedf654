"""Attach Superstore's Orders sheet (9,994 rows, one row per order line, the team's own
Row ID and Order ID) from the CLI: dry run, first sync creating every order with its lines,
then a person's edits, each row's outcome checked, and the rest of the workbook untouched."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import OrderLine, SalesOrder
from sheets.backends.xlsx import XlsxBackend
from sheets.grid import CellWrite
from tests.attach_helpers import (
    SUPERSTORE,
    copy_book,
    db_state,
    members,
    seed_customers,
    seed_products,
    sheet_rows,
    write_mapping,
)

MAPPING = {
    "Row ID": "line_ref",
    "Order ID": "order_ref",
    "Order Date": "order_date",
    "Customer ID": "customer",
    "Customer Name": "customer_name",
    "Product ID": "sku",
    "Quantity": "quantity",
}
ORDERS_SHEET = "xl/worksheets/sheet1.xml"  # the Orders tab's part (checked below)


@pytest.fixture
def superstore(clean_db, tmp_path):  # type: ignore[no-untyped-def]
    book = copy_book(SUPERSTORE, tmp_path)
    rows = sheet_rows(book, "Orders")
    head = rows[0]
    cid, cname, pid, pname = (
        head.index(h) for h in ("Customer ID", "Customer Name", "Product ID", "Product Name")
    )
    seed_customers({r[cid]: r[cname] for r in rows[1:]})
    products: dict[str, str] = {}
    for r in rows[1:]:
        products.setdefault(r[pid], r[pname])
    seed_products(products)
    return book, rows


def _json(result) -> dict:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _by_row(doc: dict) -> dict[int, dict]:
    return {r["row"]: r for r in doc["rows"]}


def test_superstore_attach_first_sync_and_a_persons_edits(clean_db, superstore, tmp_path) -> None:
    book, rows = superstore
    runner = clean_db.test_cli_runner()
    mapping = write_mapping(tmp_path / "mapping.json", MAPPING)
    args = ["sheets", "attach", "superstore", "--kind", "order_lines", "--file", str(book)]
    args += ["--sheet", "Orders", "--mapping", str(mapping), "--may-create"]
    before_db, before_zip = db_state(), members(book)

    dry = _json(runner.invoke(args=[*args, "--dry-run", "--json"]))
    assert dry["dry_run"] is True and dry["header_row"] == 1
    assert dry["counts"] == {"created": 9994}
    assert len(dry["rows"]) == 9994 and dry["rows"][0]["row"] == 2
    assert db_state() == before_db  # nothing written: no order, no tracker, no audit event
    assert members(book) == before_zip  # the file's bytes are as they were

    started, cpu = time.monotonic(), time.process_time()
    first = _json(runner.invoke(args=[*args, "--json"]))
    took, cpu = time.monotonic() - started, time.process_time() - cpu
    assert first["status"] == "succeeded", first
    assert first["counts"] == {"created": 9994}
    print(f"attach + first sync of 9,994 rows: {took:.1f}s ({cpu:.1f}s CPU)")
    orders = {r[1] for r in rows[1:]}
    assert db.session.execute(select(func.count(SalesOrder.id))).scalar_one() == len(orders)
    assert db.session.execute(select(func.count(OrderLine.id))).scalar_one() == 9994
    order = db.session.execute(
        select(SalesOrder).where(SalesOrder.external_ref == "CA-2016-152156")
    ).scalar_one()
    assert order.order_date == date(2016, 11, 8)  # the sheet's date, not today's
    assert order.source == "tracker:superstore" and order.customer.code == "CG-12520"
    assert [(ln.external_ref, ln.product.sku, ln.quantity) for ln in order.lines] == [
        ("1", "FUR-BO-10001798", 2),
        ("2", "FUR-CH-10000454", 3),
    ]
    assert members(book) == before_zip  # nothing to write back: no portal record appended

    # A person's edits, saved into the Orders tab only (cell by cell, like Excel would).
    backend = XlsxBackend(book, "Orders")
    snap = backend.read()
    n = len(snap.rows)
    qty, date_col = rows[0].index("Quantity") + 1, rows[0].index("Order Date") + 1
    new_row = list(rows[1])
    new_row[0], new_row[1] = 10001, "CA-2018-990001"
    new_row[2] = "2018-01-05"  # a date typed as text
    new_row[rows[0].index("Quantity")] = 4
    edits = [
        CellWrite(2, qty, 5),  # a value: quantity of line 1
        CellWrite(3, qty, "three"),  # text in a number column
        CellWrite(6, 1, 4),  # a duplicated key: row 6 now says Row ID 4, like row 5
        *(CellWrite(n + 1, c, v) for c, v in enumerate(new_row, start=1)),
        *(CellWrite(n + 2, c, v) for c, v in enumerate(new_row, start=1)),
    ]
    edits[-len(new_row) :] = [
        CellWrite(n + 2, c, v)
        for c, v in enumerate([10002, "CA-2018-990002", "5 Jan", *new_row[3:]], start=1)
    ]
    backend.write(edits, snap)
    assert date_col == 3

    second = _json(runner.invoke(args=["sheets", "sync", "superstore", "--json"]))
    assert second["status"] == "succeeded", second
    got = _by_row(second)
    assert got[2]["outcome"] == "updated" and got[2]["key"] == "1"
    assert (
        got[3]["outcome"] == "refused"
        and "'three' is not a valid whole number" in got[3]["message"]
    )
    assert got[5]["outcome"] == got[6]["outcome"] == "refused"
    assert got[5]["key"] == got[6]["key"] == "4"
    assert got[6]["message"] == "key 4 is in rows 5, 6: neither row is synced until one is removed"
    assert got[n + 1]["outcome"] == "created", got[n + 1]
    assert (
        got[n + 2]["outcome"] == "refused"
        and got[n + 2]["message"] == "not created: Order Date: '5 Jan' is not a date"
    )
    assert second["counts"]["unchanged"] == 9994 - 4
    db.session.expire_all()
    line1 = db.session.execute(select(OrderLine).where(OrderLine.external_ref == "1")).scalar_one()
    line2 = db.session.execute(select(OrderLine).where(OrderLine.external_ref == "2")).scalar_one()
    assert (line1.quantity, line2.quantity) == (5, 3)  # the refused edit changed nothing
    new = db.session.execute(
        select(SalesOrder).where(SalesOrder.external_ref == "CA-2018-990001")
    ).scalar_one()
    assert new.order_date == date(2018, 1, 5) and [ln.external_ref for ln in new.lines] == ["10001"]
    assert (
        db.session.execute(
            select(SalesOrder.id).where(SalesOrder.external_ref == "CA-2018-990002")
        ).first()
        is None
    )
    after = members(book)
    changed = {m for m in after if after[m] != before_zip.get(m)}
    assert changed <= {ORDERS_SHEET}, changed  # every other part byte-identical
    for other in ("Returns", "People"):
        assert sheet_rows(book, other) == sheet_rows(shared_book(), other)


def shared_book():  # type: ignore[no-untyped-def]
    from tests.conftest import shared_path

    return shared_path(*SUPERSTORE)
