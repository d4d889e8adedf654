"""Auditor exports: CSV and XLSX (typed cells, frozen header, filter, widths), filters,
formula-injection neutralised (read back with openpyxl and python-calamine), each export
audited, and a large export as a real RQ job with progress and a download link."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal

import openpyxl
import python_calamine
from flask import Flask

from portal.extensions import db
from portal.models import AuditEvent
from portal.services import audit, catalog, credits, disputes, exports, invoices, payments
from tests.conftest import REPO, actor, api_headers
from tests.factories import SETUP, make_catalog
from tests.test_finance import issued_invoice, shipped_order

TODAY = datetime.now(UTC).date()
PAYLOADS = [
    '=HYPERLINK("http://evil.test","x")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,2)",
]
WHITESPACE_PAYLOADS = ["\t=1+1", "\r=1+1"]  # services strip these, so test the writers


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def _export(app: Flask, path: str, who: str = "auditor"):
    return app.test_client().get(path, headers=api_headers(app, who))


def test_formula_payloads_stay_text_in_csv_and_xlsx(clean_db, tmp_path) -> None:
    app: Flask = clean_db
    data = make_catalog()
    catalog.customers.update(data.customer, {"name": PAYLOADS[0]}, SETUP)
    invoice = issued_invoice((1, 7), data=data)
    for payload in PAYLOADS[1:]:
        credits.request_credit(
            invoice, actor("specialist"), reason_code="other", amount="1.00", reason_text=payload
        )
    rows = _csv(_export(app, "/api/v1/credit_memo/export?format=csv"))
    texts = [row[5] for row in rows[1:]]
    assert texts == ["'" + p for p in PAYLOADS[1:]]
    invoice_rows = _csv(_export(app, "/api/v1/invoice/export?format=csv"))
    assert invoice_rows[1][3] == "'" + PAYLOADS[0]
    assert invoice_rows[1][12] == "142.50"  # money stays a plain number

    for kind, column, expected in (
        ("credit_memo", 6, PAYLOADS[1:]),
        ("invoice", 4, PAYLOADS[:1]),
    ):
        response = _export(app, f"/api/v1/{kind}/export?format=xlsx")
        assert response.status_code == 200
        path = tmp_path / f"{kind}.xlsx"
        path.write_bytes(response.data)
        sheet = openpyxl.load_workbook(path).active
        cells = [sheet.cell(row=r, column=column) for r in range(2, sheet.max_row + 1)]
        assert [cell.value for cell in cells] == expected
        assert all(cell.data_type == "s" and cell.quotePrefix for cell in cells)
        read = python_calamine.CalamineWorkbook.from_path(str(path))
        values = read.get_sheet_by_index(0).to_python()
        assert [row[column - 1] for row in values[1:]] == expected


def test_the_writers_neutralise_every_dangerous_prefix(tmp_path) -> None:
    kind = exports.KINDS["audit_event"]
    payloads = PAYLOADS + WHITESPACE_PAYLOADS
    data = [(n, None, p, "", "", "", "", "", "", "") for n, p in enumerate(payloads, 1)]
    text = b"".join(exports.csv_chunks(kind, data)).decode("utf-8-sig")
    assert [row[2] for row in csv.reader(io.StringIO(text))][1:] == ["'" + p for p in payloads]
    path = tmp_path / "payloads.xlsx"
    assert exports.write_xlsx(kind, data, path) == len(payloads)
    # XlsxWriter writes a bare CR as Excel's escape _x000D_: calamine decodes it, openpyxl
    # leaves inline text's escapes as written
    sheet = openpyxl.load_workbook(path).active
    cells = [sheet.cell(row=r, column=3) for r in range(2, sheet.max_row + 1)]
    assert [cell.value for cell in cells] == [*payloads[:-1], "_x000D_=1+1"]
    assert {cell.data_type for cell in cells} == {"s"}
    values = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
    assert [row[2] for row in values.to_python()[1:]] == payloads


def test_xlsx_has_typed_cells_frozen_header_filter_and_widths(clean_db, tmp_path) -> None:
    app: Flask = clean_db
    issued_invoice((1, 7))
    response = _export(app, "/api/v1/invoice/export?format=xlsx&status=issued")
    path = tmp_path / "invoices.xlsx"
    path.write_bytes(response.data)
    assert "invoice_issued.xlsx" in response.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(path).active
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:T2"
    assert sheet.column_dimensions["D"].width == 28
    assert sheet["A1"].value == "Invoice" and sheet["A1"].font.b
    total = sheet["M2"]
    assert total.value == 142.5 and total.data_type == "n" and total.number_format == "#,##0.00"
    assert sheet["G2"].is_date and sheet["G2"].value.date() == TODAY
    read = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
    assert read.to_python()[1][12] == 142.5


def test_the_xlsx_writer_keeps_the_files_contract_read_by_openpyxl_and_calamine(tmp_path):
    """Sheet name, bold frozen header, filter over the rows, exact widths; money a number in
    the money format, dates and UTC times as Excel dates, text as text, None as no cell and
    a formula-like text quoted text (never a formula) — as both readers see the file."""
    kind = exports.KINDS["invoice"]
    issued = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    full = ["INV-0000001", "issued", "C-1", PAYLOADS[0], "SO-1", "SH-1", date(2026, 3, 4)]
    full += [date(2026, 4, 3), "USD", Decimal("100.25"), Decimal("0.2"), Decimal("20.05")]
    full += [Decimal("120.30"), Decimal("0"), Decimal("0.00"), Decimal("120.30"), "sam", issued]
    full += [None, None]
    bare = ["INV-0000002", "void", "C-1", "Plain Co", "SO-1", None, date(2026, 3, 5)]
    bare += [date(2026, 4, 4), "USD"] + [Decimal("1.00")] * 7 + [None, None, "ann", "-x"]
    path = tmp_path / "contract.xlsx"
    progress: list[int] = []
    assert exports.write_xlsx(kind, [tuple(full), tuple(bare)], path, progress.append) == 2
    assert progress == [2]

    sheet = openpyxl.load_workbook(path)["Invoices"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:T3"
    header = sheet[1]
    assert [c.value for c in header] == [column.header for column in kind.columns]
    assert all(c.font.b for c in header) and not any(c.font.b for c in sheet[2])
    widths = {
        index: dimension.width
        for dimension in sheet.column_dimensions.values()
        for index in range(dimension.min, dimension.max + 1)
    }
    assert [widths[i] for i in range(1, 21)] == [column.width for column in kind.columns]
    row = {column.field: cell for column, cell in zip(kind.columns, sheet[2], strict=True)}
    for field in ("subtotal", "tax", "total", "paid", "credited", "balance"):
        assert row[field].data_type == "n" and row[field].number_format == "#,##0.00"
    assert row["total"].value == 120.3 and row["paid"].value == 0
    assert row["tax_rate"].value == 0.2 and row["tax_rate"].number_format == "General"
    assert row["issue_date"].is_date and row["issue_date"].number_format == "yyyy-mm-dd"
    assert row["issue_date"].value == datetime(2026, 3, 4)
    assert row["issued_at"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert row["issued_at"].value == issued.replace(tzinfo=None)
    assert row["invoice"].data_type == "s" and not row["invoice"].quotePrefix
    formula = row["customer"]
    assert formula.value == PAYLOADS[0] and formula.data_type == "s" and formula.quotePrefix
    assert row["voided_by"].value is None and sheet["F3"].value is None
    assert sheet["T3"].value == "-x" and sheet["T3"].quotePrefix

    read = python_calamine.CalamineWorkbook.from_path(str(path))
    assert read.sheet_names == ["Invoices"]
    values = read.get_sheet_by_name("Invoices").to_python()
    assert values[0] == [column.header for column in kind.columns]
    assert values[1] == [
        *full[:6],
        date(2026, 3, 4),
        date(2026, 4, 3),
        "USD",
        100.25,
        0.2,
        20.05,
        120.3,
        0.0,
        0.0,
        120.3,
        "sam",
        datetime(2026, 3, 4, 5, 6, 7),
        "",
        "",
    ]
    assert values[2][5] == "" and values[2][-1] == "-x"


def test_filters_by_date_and_status_and_refuses_bad_parameters(clean_db) -> None:
    app: Flask = clean_db
    invoice = issued_invoice((1, 7))
    payments.record_payment(invoice, actor("specialist"), amount="142.50")
    day = TODAY.isoformat()
    assert len(_csv(_export(app, f"/api/v1/invoice/export?from={day}&to={day}"))) == 2
    assert len(_csv(_export(app, "/api/v1/invoice/export?from=2000-01-01&to=2000-12-31"))) == 1
    assert len(_csv(_export(app, "/api/v1/invoice/export?status=paid"))) == 2
    assert len(_csv(_export(app, "/api/v1/invoice/export?status=issued"))) == 1
    bad = _export(app, "/api/v1/invoice/export?format=pdf&from=yesterday&status=lost")
    assert bad.status_code == 422
    assert set(bad.json["errors"]) == {"format", "from", "status"}
    assert _export(app, "/api/v1/invoice/export", who="specialist").status_code == 403


def test_every_export_is_audited_and_disputes_carry_their_history(clean_db) -> None:
    app: Flask = clean_db
    invoice = issued_invoice((1, 7))
    dispute = disputes.open_dispute(
        invoice, actor("specialist"), dispute_type="late_delivery", amount="5.00"
    )
    disputes.investigate(dispute, actor("supervisor"))
    rows = _csv(_export(app, "/api/v1/dispute/export?format=csv", who="supervisor"))
    history = rows[1][-1].splitlines()
    assert [line.split(" ", 2)[2] for line in history] == [
        "specialist open",
        "supervisor investigate",
    ]
    audit_rows = _csv(_export(app, "/api/v1/audit_event/export?format=csv"))
    exported = [row for row in audit_rows if row[6] == "export"]
    # The audit export's own event is committed before it streams, so it lists itself.
    assert [(row[2], row[4]) for row in exported] == [
        ("supervisor", "dispute"),
        ("auditor", "audit_event"),
    ]
    detail = json.loads(exported[0][7])["detail"]
    assert detail["format"] == "csv" and detail["rows"] == 1 and detail["mode"] == "stream"
    events = db.session.query(AuditEvent).filter_by(action="export").all()
    assert [(e.actor, e.entity) for e in events] == [
        ("supervisor", "dispute"),
        ("auditor", "audit_event"),
    ]
    assert audit.verify().ok


def test_a_large_export_runs_as_a_job_with_progress_and_a_download_link(clean_db, tmp_path):
    app: Flask = clean_db
    data = make_catalog()
    for quantities in ((1, 0), (0, 2), (3, 3)):
        _, shipment = shipped_order(data, quantities)
        invoices.invoice_shipment(shipment, actor("specialist"))
    client = app.test_client()
    headers = api_headers(app, "auditor")
    queued = client.get("/api/v1/invoice/export?format=xlsx&async=1", headers=headers)
    assert queued.status_code == 202, queued.json
    status_url = queued.json["status_url"]
    pending = client.get(status_url, headers=headers).json
    assert pending["status"] == "queued" and pending["rows"] == 3
    assert client.get(status_url, headers=api_headers(app, "supervisor")).status_code == 404
    worker = subprocess.run(
        [sys.executable, "-m", "portal.cli", "worker", "--burst", "--queue", "reports"],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr
    done = client.get(status_url, headers=headers).json
    assert done["status"] == "finished" and done["progress"] == 100, done
    download = client.get(done["download_url"], headers=headers)
    assert download.status_code == 200
    path = tmp_path / done["download_name"]
    path.write_bytes(download.data)
    sheet = openpyxl.load_workbook(path).active
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == [
        "INV-000001",
        "INV-000002",
        "INV-000003",
    ]
    assert sum(Decimal(str(row[12])) for row in sheet.iter_rows(min_row=2, values_only=True)) == (
        Decimal("9.50") + Decimal("38.00") + Decimal("85.50")
    )
    job_events = db.session.query(AuditEvent).filter_by(action="export").all()
    assert json.loads(job_events[-1].changes)["detail"]["mode"] == "job"


def test_lxml_is_a_dependency_and_openpyxl_writes_through_it() -> None:
    """openpyxl uses lxml when it is installed (issue 18: a third faster; the exports have
    since moved to XlsxWriter, the tracker workbooks still load and save with openpyxl):
    lxml is declared, and openpyxl's cells go through lxml's incremental writer, not the
    standard library's."""
    import re
    import tomllib

    from openpyxl.cell import _writer
    from openpyxl.xml import functions

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(re.match(r"lxml\b", spec) for spec in project["dependencies"])
    assert _writer.write_cell is _writer.lxml_write_cell
    assert functions.xmlfile.__module__.startswith("lxml")


def test_text_longer_than_an_excel_cell_is_cut_with_a_note_never_silently(tmp_path) -> None:
    """Excel cells hold 32,767 characters: a longer text (a long audit change, say) is cut
    there with a note giving its length and pointing at the CSV, which has it whole."""
    kind = exports.KINDS["invoice"]
    long_name = "Acme " * 10_000  # 50,000 characters
    row = ["INV-0000001", "issued", "C-1", long_name, "SO-1", None, date(2026, 3, 4)]
    row += [date(2026, 4, 3), "USD"] + [Decimal("1.00")] * 7 + [None, None, "ann", None]
    path = tmp_path / "long.xlsx"
    assert exports.write_xlsx(kind, [tuple(row)], path) == 1
    shown = openpyxl.load_workbook(path)["Invoices"]["D2"].value
    assert len(shown) == exports.XLSX_CELL_LIMIT
    assert shown.startswith("Acme Acme") and long_name.startswith(shown.split(" … [cut")[0])
    assert shown.endswith("50,000 characters in all; the CSV export has them all]")
    csv_text = b"".join(exports.csv_chunks(kind, [tuple(row)])).decode("utf-8-sig")
    assert long_name.strip() in csv_text
