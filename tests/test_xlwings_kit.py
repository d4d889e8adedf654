"""The xlwings client kit (CLI and the tracker page's download) and desktop Excel: the
``excel`` queue, refused on Linux with the reason (docs/xlwings.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import xlwings

from jobs.queue import get_queue
from sheets.backends import BackendSettings, BackendUnavailable, open_backend
from tests.conftest import login
from tests.sync_helpers import make_orders
from tests.test_xlwings_sync import make_xlwings_tracker

KIT = {
    "vba": ("orderbridge-orders-excel.bas", 'RunServerPython ORDERBRIDGE_URL, include:="Orders"'),
    "officescripts": ("orderbridge-orders-excel.ts", "async function main(workbook"),
    "officejs": ("orderbridge-orders-excel.js", 'client: "Office.js"'),
    "appsscript": ("orderbridge-orders-excel.gs", "function syncWithOrderbridge()"),
}


@pytest.fixture
def tracker(clean_db):
    make_orders(1)
    made = make_xlwings_tracker()
    yield clean_db, made
    for name in ("excel", "sync"):
        get_queue(name).empty()


@pytest.mark.parametrize("kind", list(KIT))
def test_the_cli_writes_each_client_configured_for_the_tracker(
    tracker, kind: str, tmp_path: Path, monkeypatch
) -> None:
    app, made = tracker
    monkeypatch.chdir(tmp_path)
    result = app.test_cli_runner().invoke(
        args=["xlwings", "client", "--tracker", made.name, "--kind", kind,
              "--url", "https://portal.example.com/"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    filename, marker = KIT[kind]
    code = (tmp_path / filename).read_text()
    assert "https://portal.example.com/xlwings/sync/orders-excel" in code
    assert marker in code
    if kind != "vba":  # VBA takes the version from the xlwings add-in
        assert f'"{xlwings.__version__}"' in code
    assert "obt_" in code and "xlwings.conf" in code  # where the token goes


def test_the_cli_needs_the_portal_address_and_an_xlwings_tracker(tracker, tmp_path) -> None:
    app, made = tracker
    runner = app.test_cli_runner()
    no_url = runner.invoke(args=["xlwings", "client", "--tracker", made.name])
    assert no_url.exit_code != 0 and "PORTAL_URL" in no_url.output
    unknown = runner.invoke(
        args=["xlwings", "client", "--tracker", "nope", "--url", "https://p.example"]
    )
    assert unknown.exit_code != 0 and "no tracker named 'nope'" in unknown.output


def test_the_tracker_page_offers_the_download_to_those_who_work_with_it(tracker) -> None:
    app, made = tracker
    client = login(app, "specialist")
    page = client.get(f"/my-trackers/tracker/{made.id}").get_data(as_text=True)
    assert 'id="xlwings-vba"' in page and 'id="xlwings-officescripts"' in page
    got = client.get(f"/xlwings/client/{made.name}?kind=officescripts")
    assert got.status_code == 200
    assert "attachment" in got.headers["Content-Disposition"]
    assert "http://localhost/xlwings/sync/orders-excel" in got.get_data(as_text=True)
    assert client.get(f"/xlwings/client/{made.name}?kind=cobol").status_code == 400
    assert login(app, "specialist2").get(f"/xlwings/client/{made.name}").status_code == 403


def test_sync_now_of_an_xlwings_tracker_goes_to_the_excel_queue(tracker) -> None:
    app, made = tracker
    login(app, "specialist").post(f"/my-trackers/sync/{made.id}")
    assert get_queue("excel").count == 1
    assert get_queue("sync").count == 0


def test_desktop_excel_is_refused_on_linux_with_the_reason(tracker) -> None:
    app, made = tracker
    with pytest.raises(BackendUnavailable, match="Windows or macOS"):
        open_backend(made, BackendSettings())
    result = app.test_cli_runner().invoke(args=["worker", "--queue", "excel", "--burst"])
    assert result.exit_code != 0
    assert "excel queue cannot run here" in result.output
    assert "Windows or macOS" in result.output
