"""Order entry in a real browser: a Specialist enters an order with two lines from the menu
(search-as-you-type pickers, price and availability per line), validates it and reads the
checklist; a Supervisor approves a price override request from the menu."""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, text

from tests.e2e.conftest import E2E_PASSWORD, add_filter
from tests.e2e.test_duties import snap

pytestmark = pytest.mark.e2e


def _query(database_url: str, sql: str, **params) -> list:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def _customer_and_products(database_url: str):
    customer = _query(
        database_url,
        "SELECT c.id, c.code, c.name FROM customer c"
        " WHERE c.active AND NOT c.credit_hold"
        " AND EXISTS (SELECT 1 FROM customer_address a WHERE a.customer_id = c.id)"
        " ORDER BY c.credit_limit DESC, c.id LIMIT 1",
    )[0]
    products = _query(
        database_url,
        "SELECT p.id, p.sku, p.pack_size FROM product p JOIN stock_level s ON s.product_id = p.id"
        " WHERE p.active GROUP BY p.id, p.sku, p.pack_size"
        " ORDER BY sum(s.on_hand - s.allocated) DESC, p.id LIMIT 2",
    )
    return customer, products


def _open_menu(page: Page, category: str, entry: str) -> None:
    page.locator(".navbar-nav > li > a.dropdown-toggle", has_text=category).click()
    page.locator(".navbar-nav .dropdown-menu a", has_text=re.compile(rf"^\s*{entry}\s*$")).click()


def _pick(field, typed: str, option: str) -> None:
    """Type into a picker and choose the offered match containing ``option``."""
    field.press_sequentially(typed, delay=20)
    choice = field.locator("xpath=..").locator(".ob-picker-list li[role=option]", has_text=option)
    choice.first.click()


def test_a_specialist_enters_validates_and_reads_the_checklist(page_as, portal_server) -> None:
    customer, products = _customer_and_products(portal_server.database_url)
    page = page_as("specialist")
    _open_menu(page, "Orders", "Enter order")
    expect(page.get_by_role("heading", name="Enter order")).to_be_visible()
    _pick(page.get_by_label(re.compile("^Customer \\(")), customer.code, customer.code)
    expect(page.locator("#customer_id")).to_have_value(str(customer.id))
    ship_to = page.get_by_label(re.compile("^Ship to"))
    ship_to.click()  # lists the chosen customer's addresses without typing
    ship_to.locator("xpath=..").locator(".ob-picker-list li[role=option]").first.click()
    expect(page.locator("#ship_to_id")).not_to_have_value("")
    po = f"E2E-ENTRY-{date.today():%j}"
    page.get_by_label("Customer PO").fill(po)
    page.get_by_label("Requested date").fill((date.today() + timedelta(days=150)).isoformat())
    for n, product in enumerate(products, start=1):
        row = page.locator(f"tr.entry-line[data-row='{n}']")
        _pick(page.get_by_label(f"Product of line {n}"), product.sku, product.sku)
        page.get_by_label(f"Quantity of line {n}").fill(str(product.pack_size * 2))
        expect(row.locator(".availability")).to_contain_text("— enough")
        expect(row.locator(".unit-price")).to_contain_text(re.compile(r"^[A-Z]{3} [\d,]+\.\d{2}"))
        expect(row.locator(".price-from")).not_to_be_empty()
        expect(row.locator(".line-total")).to_contain_text(re.compile(r"^[A-Z]{3} [\d,]+\.\d{2}$"))
    snap(page, "order-entry")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(r"/salesorderview/show/(\d+)$"))
    order_id = int(page.url.rpartition("/")[2])
    expect(page.locator(".alert-success")).to_contain_text("saved as a draft with 2 line(s)")
    expect(page.locator("#order-lines tr.order-line")).to_have_count(2)
    expect(page.locator("#order-checklist")).to_contain_text("not run yet")
    page.locator("#action-confirm").click()
    page.wait_for_url(re.compile(rf"/salesorderview/show/{order_id}$"))
    rows = page.locator("#order-checklist tr.check-row")
    expect(rows).to_have_count(9)
    for index in range(9):
        expect(rows.nth(index).locator(".check-result")).to_have_text(re.compile("^(pass|fail)$"))
        expect(rows.nth(index).locator(".check-detail")).not_to_be_empty()
    expect(rows.filter(has_text="Ship-to address complete").locator(".check-result")).to_have_text(
        "pass"
    )
    page.locator("#order-checklist").scroll_into_view_if_needed()
    snap(page, "order-checklist")
    stored = _query(
        portal_server.database_url,
        "SELECT o.customer_po, o.status, count(DISTINCT l.id), count(DISTINCT c.id)"
        " FROM sales_order o JOIN order_line l ON l.order_id = o.id"
        " JOIN order_check c ON c.order_id = o.id WHERE o.id = :id"
        " GROUP BY o.customer_po, o.status",
        id=order_id,
    )[0]
    assert stored[0] == po and stored[2:] == (2, 9)
    if stored[1] == "on_hold":  # a hold is a warning, never a green success
        expect(page.locator(".alert-warning").first).to_contain_text("on hold")
    else:
        assert stored[1] == "confirmed"


def _api(base: str, path: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_a_supervisor_approves_a_price_override_request(page_as, portal_server) -> None:
    customer, products = _customer_and_products(portal_server.database_url)
    address = _query(
        portal_server.database_url,
        "SELECT min(id) FROM customer_address WHERE customer_id = :id",
        id=customer.id,
    )[0][0]
    base = portal_server.base_url
    token = _api(
        base,
        "/api/v1/security/login",
        {"username": "specialist", "password": E2E_PASSWORD, "provider": "db", "refresh": False},
    )["access_token"]
    order = _api(
        base,
        "/api/v1/sales_order/",
        {
            "customer_id": customer.id,
            "ship_to_id": address,
            "requested_date": (date.today() + timedelta(days=150)).isoformat(),
            "lines": [{"product_id": products[0].id, "quantity": products[0].pack_size}],
        },
        token,
    )
    line = _query(
        portal_server.database_url,
        "SELECT id, unit_price FROM order_line WHERE order_id = :id",
        id=order["id"],
    )[0]
    asked = f"{float(line.unit_price) * 0.9:.2f}"
    _api(
        base,
        f"/api/v1/sales_order/{order['id']}/lines/{line.id}/price_override",
        {"unit_price": asked, "reason": "e2e: matching a competitor"},
        token,
    )
    page = page_as("supervisor")
    _open_menu(page, "Orders", "Price overrides")
    row = page.locator("#price-requests tbody tr", has_text=order["result"]["number"])
    expect(row).to_contain_text("e2e: matching a competitor")
    snap(page, "price-overrides")
    row.get_by_placeholder("Reason (required)").fill("long-standing customer")
    row.get_by_role("button", name="Approve").click()
    expect(page.locator(".alert-success")).to_contain_text("approved")
    expect(
        page.locator("#price-requests tbody tr", has_text=order["result"]["number"])
    ).to_have_count(0)
    stored = _query(
        portal_server.database_url,
        "SELECT l.unit_price, l.price_override_by, r.status, r.decision_reason"
        " FROM order_line l JOIN price_override_request r ON r.order_line_id = l.id"
        " WHERE l.id = :id",
        id=line.id,
    )[0]
    assert (f"{float(stored[0]):.2f}", stored[1], stored[2], stored[3]) == (
        asked,
        "supervisor",
        "approved",
        "long-standing customer",
    )


def test_the_orders_list_filters_by_a_customer_picked_as_you_type(page_as, portal_server) -> None:
    customer, _ = _customer_and_products(portal_server.database_url)
    page = page_as("specialist")
    _open_menu(page, "Orders", "Sales orders")
    add_filter(page, "customer")
    picker = page.locator("#filter_form input.ob-picker-input")
    _pick(picker, customer.code, customer.code)
    page.locator("#filter_form button[type=submit]").click()
    page.wait_for_url(re.compile(rf"_flt_\d+_customer={customer.id}"))
    expect(page.locator("#filter_form input.ob-picker-input")).to_have_value(
        re.compile(re.escape(customer.code))
    )
    rows = page.locator("table.table-bordered.table-hover > tbody > tr")
    expect(rows.first).to_contain_text(customer.code)
    for row in rows.all():
        expect(row).to_contain_text(customer.code)
