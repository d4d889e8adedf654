"""The Import page: upload, the suggested mapping, the dry run, the import as a job run by a
real RQ worker, its progress and the result workbook; only Specialists and Admins."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

from python_calamine import CalamineWorkbook
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import SalesOrder
from tests.conftest import REPO, login
from tests.import_files import LINE_HEADERS, LINE_ROWS, write_xlsx


def _upload(client, path, preset: str = ""):
    with open(path, "rb") as handle:
        data = {"file": (io.BytesIO(handle.read()), path.name), "preset": preset}
    return client.post("/import/", data=data, content_type="multipart/form-data")


def _mapping_form(page: str, **extra: str) -> dict[str, str]:
    """The mapping form as the page offers it: every select's selected option."""
    form = {"sheet": "Orders", "header_row": "1", **extra}
    for name, block in re.findall(r'<select name="(map_\d+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', block)
        form[name] = chosen.group(1) if chosen else ""
    return form


def test_upload_confirm_dry_run_and_import_as_a_job(clean_db, tmp_path) -> None:
    app = clean_db
    rows = [*LINE_ROWS, [5, "US-D4", *LINE_ROWS[0][2:17], "lots", 0]]
    path = write_xlsx(tmp_path / "history.xlsx", LINE_HEADERS, rows)
    # A Specialist may import, but not create customers or products (docs/import.md)
    specialist = login(app, "specialist")
    as_specialist = _upload(specialist, path).headers["Location"]
    form = _mapping_form(specialist.get(as_specialist).get_data(as_text=True))
    dry = specialist.post(as_specialist, data={**form, "action": "dry_run"}).get_data(as_text=True)
    assert "unknown product &#39;FUR-1&#39; (creating products is off)" in dry
    client = login(app, "admin")
    uploaded = _upload(client, path)
    assert uploaded.status_code == 302
    mapping_url = uploaded.headers["Location"]
    page = client.get(mapping_url).get_data(as_text=True)
    assert '<option value="Orders" selected>' in page
    form = _mapping_form(page)
    assert sorted(field for field in form.values() if field)[:3] == ["1", "Orders", "category"]
    dry = client.post(mapping_url, data={**form, "action": "dry_run"})
    assert dry.status_code == 200
    shown = dry.get_data(as_text=True)
    assert "<strong>3</strong> orders created</li><li><strong>0</strong> orders updated" in shown
    assert "<td>6</td><td></td><td>Quantity: &#39;lots&#39; is not a whole number</td>" in shown
    assert db.session.scalar(select(func.count()).select_from(SalesOrder)) == 0

    started = client.post(mapping_url, data={**form, "action": "import"})
    assert started.status_code == 302
    progress_url = started.headers["Location"]
    status_url = f"{progress_url}/status"
    assert client.get(status_url).json["status"] == "queued"
    assert login(app, "specialist2").get(status_url).status_code == 404  # not theirs
    worker = subprocess.run(
        [sys.executable, "-m", "portal.cli", "worker", "--burst", "--queue", "reports"],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr
    done = client.get(status_url).json
    assert (done["status"], done["progress"]) == ("finished", 100), done
    assert done["counts"]["orders_created"] == 3 and done["counts"]["rows_refused"] == 1
    assert done["counts_shown"][1:3] == ["3 orders created", "0 orders updated"]  # page order
    assert "1 row refused" in done["counts_shown"]
    assert db.session.scalar(select(func.count()).select_from(SalesOrder)) == 3
    result = client.get(f"{progress_url}/result.xlsx")
    assert result.status_code == 200
    assert "history-result.xlsx" in result.headers["Content-Disposition"]
    book = tmp_path / "result.xlsx"
    book.write_bytes(result.data)
    sheet = CalamineWorkbook.from_path(str(book)).get_sheet_by_name("Orders").to_python()
    assert [line[-2] for line in sheet[1:]] == ["created"] * 4 + ["refused"]


def test_a_bad_upload_or_mapping_is_refused_with_the_reason_and_the_input_kept(
    clean_db, tmp_path
) -> None:
    client = login(clean_db, "specialist")
    odd = tmp_path / "notes.txt"
    odd.write_text("hello")
    refused = _upload(client, odd)
    assert refused.status_code == 400
    assert "Choose a file: .xlsx .xlsm .xls .xlsb .ods .csv" in refused.get_data(as_text=True)
    path = write_xlsx(tmp_path / "orders.xlsx", LINE_HEADERS, LINE_ROWS)
    mapping_url = _upload(client, path, "superstore").headers["Location"]
    form = _mapping_form(client.get(mapping_url).get_data(as_text=True))
    quantity = next(name for name, field in form.items() if field == "quantity")
    answer = client.post(mapping_url, data={**form, quantity: "", "action": "dry_run"})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "no column is mapped to Quantity" in page
    assert f'<select name="{quantity}"' in page and '<option value="sales" selected>' in page


def test_only_specialists_and_admins_see_the_import_page(clean_db) -> None:
    for user, allowed in (("specialist", True), ("admin", True), ("supervisor", False)):
        answer = login(clean_db, user).get("/import/")
        assert (answer.status_code == 200) is allowed, user
    assert login(clean_db, "specialist").get("/import/AAAAAAAAAAAAAAAAAAAA/").status_code == 404


def test_the_teams_order_id_is_shown_and_searchable(clean_db, tmp_path) -> None:
    from portal.services import imports
    from portal.services.base import Actor
    from portal.services.imports_fields import preset_mapping
    from sheets.readers import read_table

    path = write_xlsx(tmp_path / "orders.xlsx", LINE_HEADERS, LINE_ROWS)
    table = read_table(path)
    options = imports.ImportOptions(preset_mapping("superstore", table.headers))
    imports.import_orders(path, table, Actor.system("system:cli"), options)
    order = db.session.scalar(select(SalesOrder).where(SalesOrder.external_ref == "DE-B2"))
    client = login(clean_db, "specialist")
    found = client.get("/salesorderview/list/?_flt_0_external_ref=DE-B2").get_data(as_text=True)
    assert order.number in found and "US-A1" not in found
    shown = client.get(f"/salesorderview/show/{order.id}").get_data(as_text=True)
    for text in ("Team&#39;s order id", "DE-B2", "Shipped on", "2024-02-14", "import:orders.xlsx"):
        assert text in shown, text
