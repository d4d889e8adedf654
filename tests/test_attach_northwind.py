"""Attach Northwind's Orders sheet (one row per order, the team's OrderID, CamelCase headers)
from the CLI: the suggested mapping, unmatched rows without "may create", the 1996 orders
created through the import's history path with their dates as given (and never overwritten
by the next sync), a refusal per row with the services' reason, a matched order's differing
value flagged with both values, a status column only where allowed, and the workbook's
other sheets untouched."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Customer, ImportRun, SalesOrder, SyncConflict
from portal.services import orders
from tests.attach_helpers import (
    NORTHWIND,
    copy_book,
    db_state,
    members,
    seed_customers,
    sheet_rows,
)
from tests.factories import SETUP


def _attach(runner, book, name: str, *extra: str) -> dict:  # type: ignore[no-untyped-def]
    args = ["sheets", "attach", name, "--kind", "orders", "--file", str(book), "--sheet", "Orders"]
    result = runner.invoke(args=[*args, *extra, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_northwind_orders_attach(clean_db, tmp_path) -> None:
    book = copy_book(NORTHWIND, tmp_path)
    seed_customers({r[0]: r[1] for r in sheet_rows(book, "Customers")[1:]})
    customer = db.session.execute(select(Customer).where(Customer.code == "WILMK")).scalar_one()
    known = orders.orders.create(
        {
            "customer_id": customer.id,
            "external_ref": "10248",
            "order_date": date.today() - timedelta(days=3),
        },
        SETUP,
    )
    runner = clean_db.test_cli_runner()
    before_db, before_zip = db_state(), members(book)

    dry = _attach(runner, book, "nw", "--dry-run")
    mapping = {m["header"]: m["field"] for m in dry["mapping"]}
    assert mapping["OrderID"] == "order_ref" and mapping["CustomerID"] == "customer"
    assert mapping["OrderDate"] == "order_date" and mapping["RequiredDate"] == "requested_date"
    assert mapping["ShipCity"] is None and mapping["Freight"] is None
    # without --may-create the team's orders unknown to the portal are listed as unmatched
    assert dry["counts"] == {"conflict": 1, "refused": 1, "unmatched": 829}
    ours = [r for r in dry["rows"] if r["key"] == "10248"]
    assert ours[0]["header"] == "OrderDate" and ours[0]["sheet_value"] == "1996-07-04"
    # the blank RequiredDate: rehearsed through the services, refused as the sync refuses it
    assert ours[1]["message"].startswith("not applied: Invalid input — requested_date: must be")
    assert db_state() == before_db and members(book) == before_zip

    would = _attach(runner, book, "nw", "--dry-run", "--may-create")
    assert would["counts"] == {"created": 829, "refused": 1, "conflict": 1}
    assert [r for r in would["rows"] if r["row"] == 3] == [
        {"row": 3, "key": "10249", "outcome": "created", "message": "would be added as order 10249"}
    ]
    assert db_state() == before_db and _runs() == 0 and members(book) == before_zip

    first = _attach(runner, book, "nw", "--may-create", "--status-column", "Sync status")
    assert first["status"] == "succeeded"
    assert first["counts"] == {"created": 829, "refused": 1, "conflict": 1}
    rows = {r["row"]: r for r in first["rows"] if r["outcome"] != "conflict"}
    assert rows[2]["message"].startswith("not applied: Invalid input — requested_date: must be")
    made = _order("10249")  # created through the import service: history kept as given
    assert rows[3] == {
        "row": 3,
        "key": "10249",
        "outcome": "created",
        "message": f"added as order {made.number}",
    }
    assert (made.order_date, made.requested_date) == (date(1996, 7, 5), date(1996, 8, 16))
    head, third = sheet_rows(book, "Orders")[0], sheet_rows(book, "Orders")[2]
    assert made.customer.code == third[head.index("CustomerID")]  # found by its code
    assert made.status == "draft" and not made.lines  # open: the team edits it from the sheet
    assert made.source == "tracker:nw" and _runs() == 1
    conflicts = [r for r in first["rows"] if r["outcome"] == "conflict"]
    assert [(c["key"], c["header"]) for c in conflicts] == [("10248", "OrderDate")]
    flagged = db.session.execute(
        select(SyncConflict).where(SyncConflict.header == "OrderDate")
    ).scalar_one()
    assert flagged.key == "10248" and "1996-07-04" in flagged.sheet_value
    assert db.session.execute(select(func.count(SalesOrder.id))).scalar_one() == 830
    db.session.refresh(known)
    assert known.order_date == date.today() - timedelta(days=3)  # the portal kept its value

    after = sheet_rows(book, "Orders")
    assert after[0][-1] == "Sync status"  # added because the user allowed it
    assert after[2][-1] == f"Note: added as order {made.number}"
    again = json.loads(runner.invoke(args=["sheets", "sync", "nw", "--json"]).output)
    assert again["counts"] == {"unchanged": 829, "refused": 1, "conflict": 1}
    db.session.expire_all()  # the next sync overwrote no historical value
    assert _order("10249").order_date == date(1996, 7, 5)
    changed = {m for m, h in members(book).items() if before_zip.get(m) != h}
    assert changed <= {"xl/worksheets/sheet6.xml", "xl/sharedStrings.xml"}, changed
    for other in ("Customers", "Orders Details", "Shipments", "Product"):
        assert sheet_rows(book, other) == sheet_rows(_shared(), other)
    # the Orders sheet's own cells are as they were: only the status column is new
    shared_orders = sheet_rows(_shared(), "Orders")
    assert [r[: len(shared_orders[0])] for r in after] == shared_orders


def _order(ref: str) -> SalesOrder:
    return db.session.execute(select(SalesOrder).where(SalesOrder.external_ref == ref)).scalar_one()


def _runs() -> int:
    return db.session.execute(select(func.count(ImportRun.id))).scalar_one()


def _shared():  # type: ignore[no-untyped-def]
    from tests.conftest import shared_path

    return shared_path(*NORTHWIND)
