"""A Specialist's tracker in a real browser: Sync → My trackers, Sync now, a refused row's
reason in the run history, download of the workbook and upload of an edited copy."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests.e2e.conftest import REPO, PortalServer, _orderbridge, sync_done
from tests.e2e.test_duties import snap

pytestmark = pytest.mark.e2e
TAB = "Orders"


def _cli(server: PortalServer, *args: str) -> str:
    done = subprocess.run(
        [*_orderbridge(), *args],
        env=server.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"orderbridge {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _set_cell(path: Path, row: int, header: str, value: object) -> str:
    """Type ``value`` under ``header`` in data row ``row``; that row's key."""
    wb = load_workbook(path)
    ws = wb[TAB]
    headers = {str(c.value): c.column for c in ws[1] if c.value is not None}
    ws.cell(row, headers[header]).value = value
    wb.save(path)
    return str(ws.cell(row, 1).value)


def test_a_specialist_syncs_reads_a_refused_row_and_uploads_a_fixed_copy(
    page_as, portal_server: PortalServer, sync_worker, tmp_path: Path
) -> None:
    book = tmp_path / "e2e-orders.xlsx"
    _cli(portal_server, "sheets", "add", "e2e-orders", "--kind", "orders", "--filter", "open",
         "--location", str(book), "--tab", TAB, "--owner", "specialist")  # fmt: skip
    _cli(portal_server, "sheets", "init", "e2e-orders")
    key = _set_cell(book, 2, "Incoterm", "XYZ")  # an incoterm the portal refuses

    page = page_as("specialist")
    page.locator(".navbar-nav > li > a.dropdown-toggle", has_text="Sync").click()
    page.get_by_role("link", name="My trackers").click()
    expect(page.get_by_role("link", name="e2e-orders")).to_be_visible()
    snap(page, "my-trackers")
    page.get_by_role("link", name="e2e-orders").click()
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator(".alert")).to_contain_text("sync queued as job")
    sync_done(portal_server, page)

    page.reload()
    page.locator("#tracker-runs").get_by_role("link", name="Rows").first.click()
    page.locator("#outcome-filter").get_by_role("link", name="Refused").click()
    refused = page.locator("#run-rows tr.outcome-refused")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text(key)
    expect(refused).to_contain_text(re.compile("incoterm", re.IGNORECASE))
    expect(refused).to_contain_text("not applied")

    page.get_by_role("link", name="Back to e2e-orders").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the workbook").click()
    copy = tmp_path / "my-copy.xlsx"
    download.value.save_as(copy)
    assert download.value.suggested_filename == "e2e-orders.xlsx"
    assert _set_cell(copy, 2, "Incoterm", "FOB") == key  # fixed in the copy
    page.locator("#file").set_input_files(str(copy))
    page.get_by_role("button", name="Upload and sync").click()
    expect(page.locator(".alert").first).to_contain_text("your copy is in place")
    sync_done(portal_server, page)

    page.reload()
    page.locator("#tracker-runs").get_by_role("link", name="Rows").first.click()
    updated = page.locator("#run-rows tr.outcome-updated")
    expect(updated).to_have_count(1)
    expect(updated).to_contain_text(key)
    assert load_workbook(book)[TAB].cell(2, 1).value == key
