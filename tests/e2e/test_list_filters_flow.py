"""List filters in a real browser, as a Specialist, from the menu: the orders list filtered by
a product (an order "has a line with" it) and the shipments list by a customer, each chosen
with a search-as-you-type picker; the quick search then narrows the list and keeps the
filter. The rows shown are checked against the database.

With ``ORDERBRIDGE_SCREENSHOTS=docs/img`` the filtered lists are saved as
``list-filter-product.png`` and ``list-filter-customer.png`` for the user guide.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import add_filter
from tests.e2e.test_duties import LIST_ROWS, menu, snap
from tests.e2e.test_order_entry_flow import _pick, _query

pytestmark = pytest.mark.e2e


def _add_filter(page: Page, column: str):
    """Open the list's search form, add the ``column`` filter and return its picker."""
    add_filter(page, column)
    picker = page.locator("#filter_form input.ob-picker-input").last
    expect(picker).to_be_visible()
    return picker


def _show_filters(page: Page) -> None:
    """Open the search form, where the active filter shows its record by name."""
    page.get_by_role("link", name="Search").click()
    expect(page.locator("#filter_form input.ob-picker-input").last).to_be_visible()


def _numbers(page: Page) -> list[str]:
    cells = page.locator(f"{LIST_ROWS} td").all_inner_texts()
    return sorted(
        {
            found
            for cell in cells
            for found in re.findall(r"\b(?:SO|SH|INV|CM|DSP|RMA|GR)-\d{6}\b", cell)
        }
    )


def test_a_specialist_filters_orders_by_product_and_shipments_by_customer(
    page_as, portal_server
) -> None:
    url = portal_server.database_url
    product = _query(
        url,
        "SELECT p.id, p.sku FROM product p JOIN order_line l ON l.product_id = p.id"
        " GROUP BY p.id, p.sku HAVING count(DISTINCT l.order_id) BETWEEN 2 AND 40"
        " ORDER BY count(DISTINCT l.order_id) DESC, p.id LIMIT 1",
    )[0]
    with_product = {
        row.number
        for row in _query(
            url,
            "SELECT DISTINCT o.number FROM sales_order o JOIN order_line l ON l.order_id = o.id"
            " WHERE l.product_id = :product",
            product=product.id,
        )
    }
    page = page_as("specialist")
    menu(page, "Orders", "Sales orders")
    _pick(_add_filter(page, "product"), product.sku, product.sku)
    page.locator("#filter_form button[type=submit]").click()
    page.wait_for_url(re.compile(rf"_flt_\d+_product={product.id}"))
    expect(page.locator("#filter_form input.ob-picker-input").last).to_have_value(
        re.compile(re.escape(product.sku))
    )
    shown = _numbers(page)
    assert shown and set(shown) <= with_product, (shown, with_product)
    _show_filters(page)
    snap(page, "list-filter-product")

    customer = _query(
        url,
        "SELECT c.id, c.code FROM customer c JOIN sales_order o ON o.customer_id = c.id"
        " JOIN shipment s ON s.order_id = o.id GROUP BY c.id, c.code"
        " ORDER BY count(s.id) DESC, c.id LIMIT 1",
    )[0]
    theirs = {
        row.number
        for row in _query(
            url,
            "SELECT s.number FROM shipment s JOIN sales_order o ON o.id = s.order_id"
            " WHERE o.customer_id = :customer",
            customer=customer.id,
        )
    }
    menu(page, "Orders", "Shipments")
    _pick(_add_filter(page, "customer"), customer.code, customer.code)
    page.locator("#filter_form button[type=submit]").click()
    page.wait_for_url(re.compile(rf"_flt_\d+_customer={customer.id}"))
    shipments = [number for number in _numbers(page) if number.startswith("SH-")]
    assert shipments and set(shipments) <= theirs, (shipments, theirs)
    _show_filters(page)
    snap(page, "list-filter-customer")

    wanted = sorted(theirs)[0]
    quick = page.locator("#quick-search input[type=search]")
    quick.fill(wanted[-4:])
    quick.press("Enter")
    page.wait_for_url(re.compile(r"_flt_\d+_number="))
    assert re.search(rf"_flt_\d+_customer={customer.id}", page.url), page.url  # kept
    narrowed = [number for number in _numbers(page) if number.startswith("SH-")]
    assert wanted in narrowed and set(narrowed) <= theirs, (wanted, narrowed)
