"""Goods receipt in a real browser: a Specialist receives stock from the Inventory menu."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.e2e


def _a_product_sku(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT sku FROM product WHERE active ORDER BY id LIMIT 1")
            ).scalar_one()
    finally:
        engine.dispose()


def test_a_specialist_receives_stock_from_the_menu(page_as, portal_server) -> None:
    sku = _a_product_sku(portal_server.database_url)
    page = page_as("specialist")
    page.locator(".navbar-nav > li > a.dropdown-toggle", has_text="Inventory").click()
    page.get_by_role("link", name="Receive stock").click()
    expect(page.get_by_role("heading", name="Receive stock")).to_be_visible()
    # Type part of the SKU; the search offers matching products; take the one offered.
    # (Chromium's datalist popup is not scriptable: the test uses the offered option's value.)
    product = page.get_by_label(re.compile("^Product"))
    product.press_sequentially(sku[:-1], delay=30)
    offered = page.locator(f'#product-options option[value="{sku}"]')
    expect(offered).to_have_count(1)
    product.fill(offered.get_attribute("value"))
    expect(page.locator("#product-unit")).to_contain_text("Counted in:")
    page.get_by_label("Quantity").fill("120")
    page.get_by_label(re.compile("^Purchase reference")).fill("PO-E2E-1")
    page.get_by_role("button", name="Save receipt").click()
    page.wait_for_url(re.compile(r"/stockreceiptview/show/\d+$"))
    expect(page.locator(".alert").filter(has_text="Received 120")).to_contain_text(sku)
    expect(page.locator("body")).to_contain_text("PO-E2E-1")
    expect(page.locator("body")).to_contain_text(re.compile(r"GR-\d{6}"))
