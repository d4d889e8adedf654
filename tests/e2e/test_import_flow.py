"""The Import page in a real browser: a Specialist uploads a file, confirms the suggested
mapping, reads the dry run, starts the import, watches the progress bar (through a reload)
while a real worker runs it, and downloads the result workbook."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date

import pytest
from playwright.sync_api import expect
from python_calamine import CalamineWorkbook
from sqlalchemy import create_engine, text

from tests.conftest import REPO
from tests.e2e.test_duties import snap
from tests.import_files import write_xlsx

pytestmark = pytest.mark.e2e


def _customer_and_products(database_url: str) -> tuple[str, list[str]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            customer = conn.execute(text("SELECT code FROM customer ORDER BY id LIMIT 1"))
            skus = conn.execute(text("SELECT sku FROM product WHERE active ORDER BY id LIMIT 2"))
            return customer.scalar_one(), list(skus.scalars())
    finally:
        engine.dispose()


def test_a_specialist_imports_order_history_from_the_import_page(
    page_as, portal_server, tmp_path
) -> None:
    customer, (sku_1, sku_2) = _customer_and_products(portal_server.database_url)
    headers = ["Order No", "Order Date", "Customer", "SKU", "Qty", "Unit Price"]
    rows = [
        ["E2E-1", date(2024, 3, 1), customer, sku_1, 2, 10.5],
        ["E2E-1", date(2024, 3, 1), customer, sku_2, 1, 4],
        ["E2E-2", date(2024, 3, 2), customer, sku_1, "many", 10.5],
    ]
    path = write_xlsx(tmp_path / "history.xlsx", headers, rows)
    page = page_as("specialist")
    page.locator(".navbar-nav > li > a.dropdown-toggle", has_text="Orders").click()
    page.get_by_role("link", name="Import orders").click()
    page.get_by_label("File").set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("heading", name="Import orders from history.xlsx")).to_be_visible()
    expect(page.locator('select[data-header="Order No"]')).to_have_value("order_ref")
    expect(page.locator('select[data-header="SKU"]')).to_have_value("product_code")
    expect(page.locator('select[data-header="Customer"]')).to_have_value("customer_code")
    page.get_by_role("button", name="Dry run").click()
    expect(page.locator("#dry-run-counts")).to_contain_text("1 order created")
    expect(page.locator("#refused-rows")).to_contain_text("Qty: 'many' is not a whole number")
    snap(page, "import-orders")
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r"/import/job/[\w-]+$"))
    expect(page.locator("#import-state")).to_contain_text("Waiting for a worker")
    page.reload()  # the job's state lives in Redis, not in the page
    expect(page.locator("#import-state")).to_contain_text("Waiting for a worker")
    worker = subprocess.run(
        [sys.executable, "-m", "portal.cli", "worker", "--burst", "--queue", "reports"],
        cwd=REPO,
        env=portal_server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr
    expect(page.locator("#import-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#import-state")).to_contain_text("Done (3 of 3 rows)")
    expect(page.locator("#import-counts")).to_contain_text("1 order created")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the result workbook").click()
    saved = tmp_path / "result.xlsx"
    download.value.save_as(saved)
    sheet = CalamineWorkbook.from_path(str(saved)).get_sheet_by_name("Orders").to_python()
    assert [line[-2:] for line in sheet[1:]] == [
        ["created", ""],
        ["created", ""],
        ["refused", "Qty: 'many' is not a whole number"],
    ]
