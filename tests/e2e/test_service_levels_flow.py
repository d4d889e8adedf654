"""Service levels in a real browser: a Supervisor opens the page from the menu, clicks a KPI
through to the orders behind it, and downloads the weekly workbook."""

from __future__ import annotations

import re

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests.e2e.test_duties import snap

pytestmark = pytest.mark.e2e


def test_a_kpi_leads_to_its_orders_and_the_workbook_downloads(page_as, tmp_path) -> None:
    page = page_as("supervisor")
    page.locator(".navbar-nav > li > a.dropdown-toggle", has_text="Service levels").click()
    page.locator(".dropdown-menu a", has_text="Service levels").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Service levels — week"))).to_be_visible()
    tile = page.locator("#kpi-otif_order")
    for _ in range(8):  # back to a week in which some of the demo's orders fell due
        page.locator("#previous-week").click()
        page.wait_for_load_state()
        if not tile.locator(".kpi-count").inner_text().endswith(" of 0"):
            break
    counted = int(tile.locator(".kpi-count").inner_text().split(" of ")[1].replace(",", ""))
    assert counted > 0
    expect(tile.locator("svg")).to_have_count(1)
    expect(page.locator("#pareto svg, #pareto p")).to_have_count(1)
    snap(page, "service-levels")
    week = re.search(r"\d{4}-W\d{2}", page.locator("h3").inner_text())[0]
    tile.locator("a.kpi-value").click()
    expect(page.get_by_role("heading", name=f"OTIF (orders), {week}")).to_be_visible()
    expect(page.locator("#drilldown-orders tbody tr")).to_have_count(counted)
    page.go_back()
    with page.expect_download() as download:
        page.locator("#download-workbook").click()
    assert download.value.suggested_filename == f"order-health_{week}.xlsx"
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    book = load_workbook(saved)
    assert book.sheetnames[:3] == ["Summary", "Trend", "Pareto"]
    assert book["Trend"].cell(row=book["Trend"].max_row, column=1).value == week
