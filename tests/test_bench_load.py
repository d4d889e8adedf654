"""bench/load.py: the benchmark loader's data obeys the services' own rules (PostgreSQL only).

A few thousand orders are loaded set-based into the suite's schema; the checks read them back
through the models and the services (line amounts, the price list's breaks, the numbering)
rather than repeating the loader's SQL.
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy import inspect, select, text

from portal.extensions import db
from portal.models import (
    Allocation,
    Customer,
    InventoryMovement,
    OrderLine,
    OrderStatus,
    Product,
    SalesOrder,
    StockLevel,
)
from portal.services import numbering, orders, pricing
from tests.conftest import REPO, actor, api_headers, login

pytestmark = pytest.mark.postgres  # bench/load.py fills PostgreSQL only

TODAY = date(2026, 6, 30)
ORDERS = 3000
CLOSED_HISTORY = {"closed", "invoiced", "cancelled", "delivered", "shipped"}
SHIPPED = {"shipped", "delivered", "invoiced", "closed"}
NOTHING_MOVED = {"quote", "draft", "on_hold", "confirmed"}


def _loader():
    spec = importlib.util.spec_from_file_location("bench_load", REPO / "bench" / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pg(clean_db: Flask) -> Flask:
    return clean_db  # bench/load.py fills PostgreSQL only: the module is marked ``postgres``


def _stored_totals() -> dict[int, Decimal]:
    rows = db.session.execute(text("SELECT id, total FROM sales_order")).all()
    return {order_id: total for order_id, total in rows}


def test_loaded_orders_follow_the_services_rules(pg: Flask) -> None:
    """Totals, statuses, prices, fulfilment quantities, allocations and the stock ledger.

    Without a stored ``total`` column in the schema, one is added inside this test's
    transaction (rolled back after it), so the loader's introspection is exercised either way.
    """
    load = _loader()
    conn = db.session.connection()
    columns = {column["name"] for column in inspect(conn).get_columns("sales_order")}
    if "total" not in columns:
        conn.execute(text("ALTER TABLE sales_order ADD COLUMN total numeric(14, 2) NOT NULL"))
    counts = load.fill(conn, ORDERS, customers=40, products=200, today=TODAY)
    assert counts["sales_order"] == ORDERS and counts["customer"] == 40
    assert 3 * ORDERS < counts["order_line"] < 7 * ORDERS  # 1 to 9 lines, 5 on average

    totals = _stored_totals()
    loaded = db.session.scalars(select(SalesOrder).order_by(SalesOrder.id)).all()
    statuses = {status.value for status in OrderStatus}
    seen = set()
    for order in loaded:
        amounts = sum((line.amount for line in order.lines), Decimal("0.00"))
        assert totals[order.id] == amounts, order.number
        assert order.status in statuses
        seen.add(order.status)
        assert (order.status == "on_hold") == bool(order.hold_reasons)
        assert order.ship_to.customer_id == order.customer_id
        assert order.payment_term_id == order.customer.payment_term_id
        assert order.number == f"SO-{order.id:06d}"
        if order.order_date < TODAY - timedelta(days=90):
            assert order.status in CLOSED_HISTORY, order.number
        _check_lines(order)
    assert {"draft", "on_hold", "allocated", "shipped", "closed", "cancelled"} <= seen
    _check_prices()
    _check_allocations_and_ledger()


def _check_lines(order: SalesOrder) -> None:
    assert [line.line_no for line in order.lines] == list(range(1, len(order.lines) + 1))
    for line in order.lines:
        assert line.quantity % line.product.pack_size == 0
        assert line.product.active
        assert line.list_price == line.product.list_price
        assert line.qty_shipped + line.qty_cancelled + line.qty_allocated <= line.quantity
        assert line.qty_delivered <= line.qty_shipped
        if order.status in SHIPPED:
            assert line.qty_shipped == line.quantity
        if order.status in {"delivered", "invoiced", "closed"}:
            assert line.qty_delivered == line.quantity
        if order.status == "cancelled":
            assert line.qty_cancelled == line.quantity and line.amount == 0
        if order.status in NOTHING_MOVED:
            assert line.qty_allocated == line.qty_shipped == line.qty_cancelled == 0
        if order.status == "allocated":
            assert line.qty_allocated == line.quantity
    if order.status == "partially_shipped":
        shipped = [line for line in order.lines if line.qty_shipped]
        assert 0 < len(shipped) < len(order.lines)


def _check_prices() -> None:
    """Every line's price is what ``pricing.price_for`` answers for its customer and quantity
    (the price list's highest break not above it); some lines reach the quantity break."""
    lines = db.session.execute(
        select(OrderLine, Customer)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .join(Customer, Customer.id == SalesOrder.customer_id)
        .order_by(OrderLine.id)
        .limit(600)
    ).all()
    breaks = 0
    for line, customer in lines:
        assert line.unit_price == pricing.price_for(customer, line.product, line.quantity)
        breaks += line.quantity >= line.product.pack_size * 20
    assert breaks > 0


def _check_allocations_and_ledger() -> None:
    allocated: dict[int, int] = defaultdict(int)
    per_stock: dict[tuple[int, int], int] = defaultdict(int)
    for allocation in db.session.scalars(select(Allocation)):
        allocated[allocation.order_line_id] += allocation.quantity
        per_stock[(allocation.order_line.product_id, allocation.warehouse_id)] += (
            allocation.quantity
        )
    lines = db.session.execute(select(OrderLine.id, OrderLine.qty_allocated)).all()
    assert {line_id: qty for line_id, qty in lines if qty} == dict(allocated)
    assert allocated
    ledger: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for movement in db.session.scalars(select(InventoryMovement)):
        sums = ledger[(movement.product_id, movement.warehouse_id)]
        sums[0] += movement.on_hand_delta
        sums[1] += movement.allocated_delta
    levels = db.session.scalars(select(StockLevel)).all()
    assert len(levels) == 200 * 3
    for level in levels:
        key = (level.product_id, level.warehouse_id)
        assert level.allocated == per_stock.get(key, 0)
        assert ledger[key] == [level.on_hand, level.allocated]
        assert level.available > 0


def test_loader_names_a_column_it_cannot_fill(pg: Flask) -> None:
    conn = db.session.connection()
    conn.execute(text("ALTER TABLE sales_order ADD COLUMN margin numeric(14, 2) NOT NULL"))
    load = _loader()
    with pytest.raises(load.LoadError, match=r"sales_order has NOT NULL columns .*margin"):
        load.fill(conn, 10, customers=5, products=10, today=TODAY)
    assert db.session.execute(text("SELECT count(*) FROM customer")).scalar() == 0


def test_portal_and_api_open_on_loaded_data_and_new_orders_follow(pg: Flask) -> None:
    app = pg
    load = _loader()
    load.fill(db.session.connection(), 500, customers=20, products=50, today=date.today())
    db.session.commit()
    order = db.session.scalars(
        select(SalesOrder).where(SalesOrder.status == "allocated").limit(1)
    ).one()
    browser = login(app, "specialist")
    listing = browser.get("/salesorderview/list/")
    assert listing.status_code == 200 and "SO-000500" in listing.text
    page = browser.get(f"/salesorderview/show/{order.id}")
    assert page.status_code == 200 and order.number in page.text
    assert order.lines[0].product.sku in page.text
    headers = api_headers(app, "auditor")
    listed = app.test_client().get("/api/v1/sales_order/", headers=headers)
    assert listed.status_code == 200 and listed.json["count"] == 500
    shown = app.test_client().get(f"/api/v1/sales_order/{order.id}", headers=headers)
    assert shown.status_code == 200 and shown.json["result"]["number"] == order.number

    # the id and number sequences continue after the loaded rows
    assert numbering.peek("sales_order") == 501
    product = db.session.scalars(select(Product).where(Product.active).limit(1)).one()
    made = orders.orders.create_with_lines(
        {"customer_id": order.customer_id, "requested_date": date.today() + timedelta(days=30)},
        [{"product_id": product.id, "quantity": product.pack_size}],
        actor("specialist"),
    )
    assert made.number == "SO-000501" and made.id == 501
