"""Attach a workbook in a real browser: a Specialist uploads the team's .xlsx from Sync →
Attach workbook, confirms the suggested mapping, reads the dry run (and downloads it), then
attaches and syncs (the first sync a background job run by a real worker), and reads a
refused row's reason on the run's page in My trackers."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from openpyxl import Workbook
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from tests.e2e.conftest import sync_done
from tests.e2e.test_duties import snap
from tests.e2e.test_receipt_flow import _a_product_sku

pytestmark = pytest.mark.e2e
NOT_FOUND = "not created: no customer 'NO-SUCH-CUSTOMER' (creating customers is off)"


def _a_customer_code(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT code FROM customer WHERE active ORDER BY id LIMIT 1")
            ).scalar_one()
    finally:
        engine.dispose()


def test_a_specialist_attaches_a_workbook(page_as, portal_server, sync_worker, tmp_path) -> None:
    code = _a_customer_code(portal_server.database_url)
    book = tmp_path / "west-orders.xlsx"
    wb = Workbook()
    ws = wb.active
    ws.title = "Open orders"
    ws.append(["West team - open orders"])
    ws.append(["SO#", "Order Date", "Customer", "Region"])
    ws.append(["E2E-W-1", date.today() - timedelta(days=2), code, "West"])
    ws.append(["E2E-W-2", date.today() - timedelta(days=1), "NO-SUCH-CUSTOMER", "West"])
    wb.save(book)

    page = page_as("specialist")
    page.locator(".navbar-nav > li > a.dropdown-toggle", has_text="Sync").click()
    page.get_by_role("link", name="Attach workbook").click()
    expect(page.get_by_role("heading", name="Attach workbook")).to_be_visible()
    page.get_by_label("Tracker name").fill("west-e2e")
    page.get_by_label("Upload an Excel workbook (.xlsx)").set_input_files(str(book))
    page.get_by_role("button", name="Next: map the columns").click()
    page.wait_for_url(re.compile(r"/attach/mapping$"))

    expect(page.get_by_label("Header row")).to_have_value("2")  # found below the title
    expect(page.get_by_label("Field for SO#")).to_have_value("order_ref")
    expect(page.get_by_label("Field for Customer")).to_have_value("customer")
    expect(page.get_by_label("Field for Region")).to_have_value("")  # left alone
    page.get_by_label(re.compile("Rows naming no portal record create one")).check()
    page.get_by_role("button", name="Show the dry run").click()
    expect(page.locator("#dry-run-title")).to_be_visible()
    dry = page.locator("#dry-run")
    expect(dry).to_contain_text("would be added as order E2E-W-1")
    expect(dry).to_contain_text(NOT_FOUND)
    snap(page, "attach-workbook")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    saved = tmp_path / "dry-run.csv"
    download.value.save_as(saved)
    assert NOT_FOUND in saved.read_text(encoding="utf-8-sig")

    page.get_by_role("button", name="Attach and sync").click()
    # the first sync is the normal background job: the page is the tracker's, in My trackers
    expect(page.get_by_role("heading", name="Tracker west-e2e")).to_be_visible()
    expect(page.locator(".alert", has_text="west-e2e attached")).to_contain_text(
        "its first sync runs in the background"
    )
    sync_done(portal_server, page)
    page.reload()
    runs = page.locator("#tracker-runs tbody tr")
    # the attach's sync is the oldest run (newest first): a scheduled sync may follow it
    # before the page is read, on a slow machine
    expect(runs.first).to_be_visible()
    runs.last.get_by_role("link", name="Rows").click()
    refused = page.locator("#run-rows tr", has_text="E2E-W-2")
    expect(refused).to_contain_text("Refused")
    expect(refused).to_contain_text(NOT_FOUND)
    expect(page.locator("#run-rows tr", has_text="E2E-W-1")).to_contain_text("added as order")


def test_a_specialist_keys_lines_by_order_and_line_number(
    page_as, portal_server, sync_worker, tmp_path
) -> None:
    """A sheet of lines without a line id: the attach page suggests keying each line on its
    order id and the team's line number column (the CLI's ``--line-number``), the dry run and
    the first sync key the lines ``<order id>/<n>``."""
    code = _a_customer_code(portal_server.database_url)
    sku = _a_product_sku(portal_server.database_url)
    day = date.today() - timedelta(days=3)
    book = tmp_path / "west-lines.xlsx"
    wb = Workbook()
    ws = wb.active
    ws.title = "Lines"
    ws.append(["Order ID", "Line", "Order Date", "Customer", "SKU", "Qty"])
    ws.append(["E2E-L-1", 1, day, code, sku, 2])
    ws.append(["E2E-L-2", 1, day, code, sku, 1])
    ws.append(["E2E-L-1", 2, day, code, sku, 3])
    wb.save(book)

    page = page_as("specialist")
    page.goto(f"{portal_server.base_url}/attach/")
    page.get_by_label("Tracker name").fill("lines-e2e")
    page.get_by_label("The sheet holds").select_option("order_lines")
    page.get_by_label("Upload an Excel workbook (.xlsx)").set_input_files(str(book))
    page.get_by_role("button", name="Next: map the columns").click()
    page.wait_for_url(re.compile(r"/attach/mapping$"))

    expect(page.get_by_label("Field for Order ID")).to_have_value("order_ref")
    choice = page.get_by_label("Lines without a line id")
    expect(choice).to_have_value("Line")  # the suggestion: the team's line number column
    page.get_by_label(re.compile("Rows naming no portal record create one")).check()
    page.get_by_role("button", name="Show the dry run").click()
    dry = page.locator("#dry-run")
    for key in ("E2E-L-1/1", "E2E-L-2/1", "E2E-L-1/2"):
        expect(dry.locator("tr", has_text=key)).to_contain_text("would be added")
    expect(page.get_by_label("Lines without a line id")).to_have_value("Line")
    snap(page, "attach-line-number")

    page.get_by_role("button", name="Attach and sync").click()
    expect(page.get_by_role("heading", name="Tracker lines-e2e")).to_be_visible()
    sync_done(portal_server, page)
    page.reload()
    page.locator("#tracker-runs tbody tr").get_by_role("link", name="Rows").click()
    expect(page.locator("#run-rows tr", has_text="E2E-L-1/2")).to_contain_text("added")
