"""The real workbooks of ../shared/data imported through ``orderbridge import orders``:
Superstore (all 9,994 lines) and Northwind (orders with their details), checked against
the files read independently here (calamine's own rows)."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal

from python_calamine import CalamineWorkbook
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, Customer, OrderLine, Product, SalesOrder
from tests.conftest import shared_path


def _sheet(path, name: str) -> list[dict]:
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(name).to_python()
    return [dict(zip(rows[0], row, strict=False)) for row in rows[1:]]


def _money(value: float) -> Decimal:
    return Decimal(repr(value))


def _import(app, path, preset: str) -> dict:
    args = ["import", "orders", str(path), "--preset", preset, "--json"]
    done = app.test_cli_runner().invoke(args=args)
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_superstore_imports_every_line_as_the_file_has_it_and_again_changes_nothing(
    app, clean_db
) -> None:
    path = shared_path("data", "superstore", "Sample - Superstore.xlsx")
    lines = _sheet(path, "Orders")
    report = _import(app, path, "superstore")
    by_order: dict[str, list[dict]] = defaultdict(list)
    for line in lines:
        by_order[line["Order ID"]].append(line)
    counts = report["counts"]
    assert (counts["rows"], counts["rows_refused"]) == (9994, 0)
    assert counts["orders_created"] == len(by_order) == _count(SalesOrder) == 5009
    assert counts["customers_created"] == len({line["Customer ID"] for line in lines})
    assert counts["products_created"] == len({line["Product ID"] for line in lines})
    assert _count(OrderLine) == 9994
    orders = {order.external_ref: order for order in db.session.scalars(select(SalesOrder))}
    for ref in ("CA-2016-152156", "US-2015-108966", "CA-2017-118640", "CA-2014-143336"):
        order, given = orders[ref], by_order[ref]
        first = given[0]
        assert order.order_date == first["Order Date"] and order.ship_date == first["Ship Date"]
        assert (order.ship_mode, order.status, order.source) == (
            first["Ship Mode"],
            "shipped",
            "import:Sample - Superstore.xlsx",
        )
        customer = order.customer
        assert (customer.code, customer.name, customer.segment) == (
            first["Customer ID"],
            first["Customer Name"],
            first["Segment"],
        )
        assert [
            (line.external_ref, line.product.sku, line.quantity, line.discount_pct, line.amount)
            for line in order.lines
        ] == [
            (
                f"{ref}/{int(row['Row ID'])}",
                row["Product ID"],
                int(row["Quantity"]),
                (_money(row["Discount"]) * 100).quantize(Decimal("0.01")),
                _money(row["Sales"]).quantize(Decimal("0.01")),
            )
            for row in given
        ]
    for ref, given in by_order.items():  # every order's total, to the cent per line
        expected = sum(_money(row["Sales"]) for row in given)
        assert abs(orders[ref].total - expected) <= Decimal("0.006") * len(given), ref
    returned = {row["Order ID"] for row in _sheet(path, "Returns") if row["Returned"] == "Yes"}
    assert returned and all(
        line.qty_returned == line.quantity for ref in returned for line in orders[ref].lines
    )
    assert not any(
        line.qty_returned for ref in set(orders) - returned for line in orders[ref].lines
    )
    categories = dict(db.session.execute(select(Product.sku, Product.category)).all())
    assert categories["FUR-BO-10001798"] == "Furniture"

    events = _count(AuditEvent)
    again = _import(app, path, "superstore")
    assert again["counts"]["orders_unchanged"] == 5009
    assert {row["outcome"] for row in again["rows"]} == {"unchanged"}
    assert _count(SalesOrder) == 5009 and _count(Customer) == counts["customers_created"]
    assert set(db.session.scalars(select(SalesOrder.version))) == {1}
    assert _count(AuditEvent) == events + 1  # the second run's own record, nothing else


def test_northwind_orders_with_their_details(app, clean_db) -> None:
    path = shared_path("data", "northwind", "Northwind.xlsx")
    heads = {int(row["OrderID"]): row for row in _sheet(path, "Orders")}
    details = _sheet(path, "Orders Details")
    report = _import(app, path, "northwind")
    assert report["counts"]["rows_refused"] == 0
    assert report["counts"]["orders_created"] == len(heads) == _count(SalesOrder)
    assert _count(OrderLine) == len(details)
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for row in details:
        gross = _money(row["UnitPrice"]) * int(row["Quantity"])
        expected[str(int(row["OrderID"]))] += gross * (1 - _money(row["Discount"]))
    line_counts = defaultdict(int)
    for row in details:
        line_counts[str(int(row["OrderID"]))] += 1
    for order in db.session.scalars(select(SalesOrder)):
        head = heads[int(order.external_ref)]
        assert order.customer.code == head["CustomerID"]
        assert order.order_date == head["OrderDate"]
        assert order.requested_date == head["RequiredDate"]
        shipped = head["ShippedDate"] or None
        assert order.ship_date == shipped
        assert order.status == ("shipped" if shipped else "confirmed")
        assert head["ShipCity"] in order.ship_to_text
        slack = Decimal("0.006") * line_counts[order.external_ref]
        assert abs(order.total - expected[order.external_ref]) <= slack, order.external_ref
    assert _count(SalesOrder) - db.session.scalar(
        select(func.count()).where(SalesOrder.status == "shipped")
    ) == sum(1 for head in heads.values() if not head["ShippedDate"])
