"""The weekly order-health workbook: its sheets and figures (read back with openpyxl and
python-calamine), its native charts and the cells they point at, the CLI, the REST API and
the audit event of every report made. The orders are those of ``test_service_levels``."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook
from sqlalchemy import select

from portal.models import AuditEvent, ServiceLevelReport, utcnow
from portal.services import service_levels as sl
from portal.services import weekly_report
from portal.services.base import Actor, PermissionDenied
from tests.conftest import actor, api_headers, wipe_business_tables
from tests.test_service_levels import build

SHEETS = [
    "Summary",
    "Trend",
    "Pareto",
    "Late orders",
    "Open backorders",
    "At-risk orders",
    "Returns",
    "Credits",
    "Disputes",
    "Improvement log",
]


@pytest.fixture(scope="module")
def made(app) -> dict[str, Any]:
    """The scenario's orders and the workbook of their week, made once through the service."""
    from portal.extensions import db

    with app.app_context():
        wipe_business_tables()
        day = sl.week_of(utcnow().date() - timedelta(days=21)).start
        numbers = build(day)
        week = sl.week_of(day)
        report = weekly_report.make(actor("supervisor"), "web", week)
        result = {"week": week, "content": report.content, "id": report.id, **numbers}
        db.session.remove()
    return result


def _summary(content: bytes) -> dict[str, list[Any]]:
    sheet = load_workbook(io.BytesIO(content))["Summary"]
    return {row[0]: list(row[1:]) for row in sheet.iter_rows(min_row=2, values_only=True)}


def test_sheets_figures_and_types_match_the_metrics_service(ctx, made) -> None:
    book = load_workbook(io.BytesIO(made["content"]))
    assert book.sheetnames == SHEETS
    summary = _summary(made["content"])
    otif = sl.compute("otif_order", made["week"])[None]
    _unit, this_week, last_week, change, target, amber, state = summary["OTIF (orders)"][:7]
    assert (this_week, last_week, change) == (float(otif.value), None, None)
    assert (target, amber, state) == (0.95, 0.9, "Red")  # 40% against 95%, red below 90%
    assert summary["Unit fill rate"][1] == pytest.approx(134 / 194)
    assert summary["Credits"][1] == 7.5
    sheet = book["Summary"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:J{len(sl.METRICS) + 1}"
    assert sheet["C2"].number_format == "0.0%"
    assert sheet.column_dimensions["A"].width == 28
    late = [row[0] for row in book["Late orders"].iter_rows(min_row=2, values_only=True)]
    assert late == [made["b"], made["c"], made["f"]]
    assert book["Late orders"]["E4"].value == "partially allocated"  # F, by its label
    order_date = book["Late orders"]["C2"].value
    assert order_date.date() == made["week"].start  # a real date cell, not text
    backorders = list(book["Open backorders"].iter_rows(min_row=2, values_only=True))
    assert [(row[0], row[5]) for row in backorders] == [(made["f"], 60)]
    credits = list(book["Credits"].iter_rows(min_row=2, values_only=True))
    assert [(row[4], row[5]) for row in credits] == [("Goodwill", 7.5)]
    returns = list(book["Returns"].iter_rows(min_row=2, values_only=True))
    assert [(row[1], row[5], row[6]) for row in returns] == [(made["a"], "Damaged in transit", 2)]


def test_calamine_reads_the_same_workbook(ctx, made) -> None:
    book = CalamineWorkbook.from_filelike(io.BytesIO(made["content"]))
    assert book.sheet_names == SHEETS
    rows = book.get_sheet_by_name("Summary").to_python()
    assert rows[0][:3] == ["Metric", "Unit", "This week"]
    by_metric = {row[0]: row for row in rows[1:]}
    assert by_metric["OTIF (lines)"][2] == pytest.approx(3 / 7)
    trend = book.get_sheet_by_name("Trend").to_python()
    assert trend[-1][0] == made["week"].label and len(trend) == 13
    assert trend[-1][1] == pytest.approx(0.4)  # OTIF (orders) of the week
    pareto = book.get_sheet_by_name("Pareto").to_python()
    assert [row[1] for row in pareto[1:]] == [1.0] * 5


CHART = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"


def _series(plot: ElementTree.Element) -> list[dict[str, str]]:
    """A plot's series: the cells of their name (tx), categories (cat) and values (val),
    written without quotes or ``$`` (``Trend!B2:B13``)."""
    found = []
    for ser in plot.iter(f"{CHART}ser"):
        refs = {}
        for part in ("tx", "cat", "val"):
            ref = ser.find(f"{CHART}{part}//{CHART}f")
            assert ref is not None, part
            refs[part] = ref.text.replace("'", "").replace("$", "")
        found.append(refs)
    return found


def _axes(plot: ElementTree.Element) -> set[str]:
    return {axis.get("val") for axis in plot.findall(f"{CHART}axId")}


def test_charts_exist_and_point_at_the_trend_and_pareto_cells(ctx, made) -> None:
    with zipfile.ZipFile(io.BytesIO(made["content"])) as archive:
        names = archive.namelist()
        charts = sorted(name for name in names if name.startswith("xl/charts/chart"))
        xml = [ElementTree.fromstring(archive.read(name)) for name in charts]
        drawing_rels = [n for n in names if n.startswith("xl/drawings/_rels/")]
        sheet_rels = archive.read("xl/worksheets/_rels/sheet1.xml.rels").decode()
    assert len(charts) == 2 and len(drawing_rels) == 1  # both on the Summary sheet
    assert "drawing" in sheet_rels  # sheet1 is the Summary
    (trend,) = xml[0].iter(f"{CHART}lineChart")
    columns = "BCDEF"  # the five rates, the weeks as categories
    assert _series(trend) == [
        {"tx": f"Trend!{c}1", "cat": "Trend!A2:A13", "val": f"Trend!{c}2:{c}13"} for c in columns
    ]
    (bars,) = xml[1].iter(f"{CHART}barChart")
    (cumulative,) = xml[1].iter(f"{CHART}lineChart")
    # the counts of the five causes as bars, their cumulative share as a line
    assert _series(bars) == [{"tx": "Pareto!B1", "cat": "Pareto!A2:A6", "val": "Pareto!B2:B6"}]
    assert _series(cumulative) == [
        {"tx": "Pareto!D1", "cat": "Pareto!A2:A6", "val": "Pareto!D2:D6"}
    ]
    assert _axes(bars).isdisjoint(_axes(cumulative))  # the line on a secondary axis


def test_every_report_made_is_audited_and_kept(ctx, made) -> None:
    from portal.extensions import db

    kept = db.session.get(ServiceLevelReport, made["id"])
    assert (kept.week, kept.channel, kept.made_by) == (made["week"].label, "web", "supervisor")
    event = db.session.execute(
        select(AuditEvent).where(
            AuditEvent.entity == "service_level_report", AuditEvent.entity_id == str(made["id"])
        )
    ).scalar_one()
    assert event.action == "report" and made["week"].label in event.changes
    with pytest.raises(PermissionDenied):
        weekly_report.make(Actor("nobody", "web", user_id=999), "web", made["week"])


def test_cli_writes_the_workbook_and_refuses_a_bad_week_in_one_line(app, ctx, made, tmp_path):
    out = tmp_path / "health.xlsx"
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["report", "weekly", "--week", made["week"].label, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert made["week"].label in result.output
    assert load_workbook(out).sheetnames == SHEETS
    bad = runner.invoke(args=["report", "weekly", "--week", "2026-47", "--out", str(out)])
    assert bad.exit_code == 1
    assert bad.output.strip().splitlines() == [
        "Error: Invalid input — week: '2026-47' is not an ISO week such as 2026-W47"
    ]


def test_api_weekly_report_for_supervisors_specialists_and_auditors(app, ctx, made) -> None:
    client = app.test_client()
    week = made["week"].label
    for user in ("supervisor", "specialist", "auditor"):
        response = client.get(f"/api/v1/report/weekly?week={week}", headers=api_headers(app, user))
        assert response.status_code == 200, (user, response.json)
        assert response.headers["Content-Disposition"].endswith(f"order-health_{week}.xlsx")
        assert load_workbook(io.BytesIO(response.data)).sheetnames == SHEETS
    headers = api_headers(app, "auditor")
    bad = client.get("/api/v1/report/weekly?week=W47", headers=headers)
    assert bad.status_code == 422
    assert bad.json["errors"] == {"week": ["'W47' is not an ISO week such as 2026-W47"]}
    future = sl.week_of(utcnow().date() + timedelta(days=14)).label
    assert client.get(f"/api/v1/report/weekly?week={future}", headers=headers).status_code == 422
    assert client.get("/api/v1/report/weekly").status_code == 401


def test_improvement_action_rest_resource(app, ctx, made) -> None:
    client = app.test_client()
    headers = api_headers(app, "specialist")
    body = {
        "problem": "Backorders on SKU-3",
        "root_cause": "Reorder point too low",
        "action": "Raise the reorder point",
        "owner": "specialist",
        "due_date": (utcnow().date() + timedelta(days=10)).isoformat(),
        "metric": "backorder_rate",
        "cause_source": "backorder",
        "cause_code": "stock_shortage",
    }
    created = client.post("/api/v1/improvement_action/", json=body, headers=headers)
    assert created.status_code == 201, created.json
    record = created.json["result"]
    assert record["status"] == "open" and record["week_before"] == sl.last_complete_week().label
    pk = created.json["id"]
    started = client.post(f"/api/v1/improvement_action/{pk}/start", headers=headers)
    assert started.status_code == 200 and started.json["result"]["status"] == "in_progress"
    again = client.post(f"/api/v1/improvement_action/{pk}/start", headers=headers)
    assert again.status_code == 409
    refused = client.post(
        f"/api/v1/improvement_action/{pk}/drop", headers=api_headers(app, "auditor")
    )
    assert refused.status_code == 403
    wrong = client.post(
        "/api/v1/improvement_action/", json={**body, "metric": "speed"}, headers=headers
    )
    assert wrong.status_code == 422 and "metric" in wrong.json["errors"]
    listed = client.get("/api/v1/improvement_action/", headers=api_headers(app, "auditor"))
    assert [item["id"] for item in listed.json["result"]] == [pk]


def test_api_metric_breakdowns_by_dimension(app, ctx, made) -> None:
    client = app.test_client()
    headers = api_headers(app, "specialist")
    week = made["week"].label
    url = f"/api/v1/report/metrics?metric=otif_line&week={week}"
    by_product = client.get(f"{url}&by=product", headers=headers)
    assert by_product.status_code == 200, by_product.json
    # lines: P1 (A1 yes, B1 no, C1 yes), P2 (B2 no, E1 yes), P3 (C2 no, F1 no)
    assert [(f["name"], f["num"], f["den"]) for f in by_product.json["figures"]] == [
        ("SKU-1 Product 1", 2, 3),
        ("SKU-2 Product 2", 1, 2),
        ("SKU-3 Product 3", 0, 2),
    ]
    total = client.get(url, headers=headers).json["figures"]
    assert [(f["name"], f["value"]) for f in total] == [("all", pytest.approx(3 / 7))]
    weekly = client.get(
        f"/api/v1/report/metrics?metric=otif_order&week={week}&weeks=2&by=week", headers=headers
    ).json["figures"]
    assert [(f["name"], f["den"]) for f in weekly] == [(week, 5)]
    refused = client.get(f"{url}&by=carrier", headers=headers)
    assert refused.status_code == 422 and "not recorded by carrier" in refused.json["message"]
    assert client.get(f"{url}&weeks=0", headers=headers).status_code == 422
    # Auditors read the page and its workbook, so its figures too; without a sign-in, nothing.
    auditor = client.get(url, headers=api_headers(app, "auditor"))
    assert auditor.status_code == 200 and auditor.json == client.get(url, headers=headers).json
    assert client.get(url).status_code == 401


def test_text_that_looks_like_a_formula_stays_text(ctx, made) -> None:
    from portal.services import weekly_workbook
    from portal.services.service_level_targets import scorecard
    from portal.services.weekly_report_data import Column, Sheet

    hostile = Sheet("Returns", [Column("Reason"), Column("Units", "int")], [("=1+1", 2)])
    content = weekly_workbook.build(made["week"], scorecard(made["week"], weeks=2), [], [hostile])
    cell = load_workbook(io.BytesIO(content))["Returns"]["A2"]
    assert (cell.value, cell.data_type, cell.quotePrefix) == ("=1+1", "s", True)
    rows = CalamineWorkbook.from_filelike(io.BytesIO(content)).get_sheet_by_name("Returns")
    assert rows.to_python()[1] == ["=1+1", 2]


def test_cells_keep_their_text_types_and_formats(ctx, made) -> None:
    """Text that XML or a spreadsheet would change comes back as written; numbers, money,
    dates and times as typed cells; an empty value as no cell."""
    from datetime import date, datetime
    from decimal import Decimal

    from portal.services import weekly_workbook
    from portal.services.service_level_targets import scorecard
    from portal.services.weekly_report_data import DATE, INT, MONEY, Column, Sheet

    texts = ["A & B <c>", "  spaced ", "bell\x07", "_x0041_", "@SUM(A1)", "-1"]
    columns = [Column(f"T{n}") for n in range(len(texts))] + [
        Column("Units", INT),
        Column("Amount", MONEY),
        Column("Day", DATE),
        Column("At"),
        Column("Flag"),
        Column("Empty"),
    ]
    moment = datetime(2026, 11, 23, 18, 0)
    values = (*texts, 7, Decimal("1234.50"), date(2026, 11, 23), moment, True, None)
    sheet = Sheet("Credits", columns, [values])
    content = weekly_workbook.build(made["week"], scorecard(made["week"], weeks=2), [], [sheet])
    cells = load_workbook(io.BytesIO(content))["Credits"]
    row = [cell.value for cell in cells[2]]
    # openpyxl shows a control character and a literal "_xHHHH_" as Excel stores them
    escaped = ["A & B <c>", "  spaced ", "bell_x0007_", "_x005F_x0041_", "@SUM(A1)", "-1"]
    assert row[:6] == escaped and row[6:11] == [7, 1234.5, datetime(2026, 11, 23), moment, True]
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        xml = archive.read("xl/worksheets/sheet4.xml").decode()
    assert 'r="K2"' in xml and 'r="L2"' not in xml  # no cell for the empty value
    assert [cells.cell(2, n).quotePrefix for n in range(1, 7)] == [False] * 4 + [True] * 2
    assert (cells["H2"].number_format, cells["I2"].number_format) == ("#,##0.00", "yyyy-mm-dd")
    assert cells["G2"].data_type == "n" and cells["A1"].font.b
    calamine = CalamineWorkbook.from_filelike(io.BytesIO(content)).get_sheet_by_name("Credits")
    assert calamine.to_python()[1][:6] == texts  # read as Excel reads them


def test_a_sheet_cut_at_its_row_limit_says_so(ctx, made, monkeypatch) -> None:
    """More late orders than the row limit: the sheet holds the first ones and its header row
    says that more matched; a sheet within the limit says nothing."""
    from portal.services import weekly_report_data

    monkeypatch.setattr(weekly_report_data, "ROW_LIMIT", 2)
    content = weekly_report.workbook_bytes(made["week"])
    book = load_workbook(io.BytesIO(content))
    late = book["Late orders"]
    assert [row[0] for row in late.iter_rows(min_row=2, values_only=True)] == [
        made["b"],
        made["c"],
    ]
    assert late["K1"].value == "Only the first 2 rows are shown: more matched."
    assert late.auto_filter.ref == "A1:I3"
    backorders = book["Open backorders"]  # one row: not cut
    assert backorders.max_column == 9 and backorders.max_row == 2
