"""The weekly order-health workbook (.xlsx) written with openpyxl.

Sheets: Summary (every metric against its target, last week and the change, its state, and
two native Excel charts — the 12-week trend of the rates and the root-cause Pareto — drawn
from the Trend and Pareto sheets' cells), Trend, Pareto, then the week's detail sheets
(``weekly_report_data``). Every sheet has typed cells (numbers, dates, money, percentages),
a bold frozen header row, a filter over its table and column widths. Text from records that
a spreadsheet would evaluate is written as quoted text, as exports do (no cell is a formula).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from portal.services import service_levels as sl
from portal.services.exports import DANGEROUS_PREFIXES, DATE_FORMAT, MONEY_FORMAT
from portal.services.service_level_targets import Row
from portal.services.service_levels_causes import Bar
from portal.services.weekly_report_data import DATE, INT, MONEY, NUMBER, Column, Sheet

RATE_FORMAT = "0.0%"
DAYS_FORMAT = "0.0"
COUNT_FORMAT = "#,##0"
NUMBER_FORMAT = "0.####"
KIND_FORMATS = {
    sl.RATE: RATE_FORMAT,
    sl.DAYS: DAYS_FORMAT,
    sl.COUNT: COUNT_FORMAT,
    sl.MONEY: MONEY_FORMAT,
}
COLUMN_FORMATS = {DATE: DATE_FORMAT, MONEY: MONEY_FORMAT, NUMBER: NUMBER_FORMAT}
# The rates drawn on the trend chart.
TREND_METRICS = ("otif_order", "otif_line", "on_time_shipment", "line_fill_rate", "perfect_order")
STATE_LABELS = {"green": "Green", "amber": "Amber", "red": "Red", None: "No data"}
SUMMARY_COLUMNS = [
    Column("Metric", width=28),
    Column("Unit", width=8),
    Column("This week"),
    Column("Last week"),
    Column("Change"),
    Column("Target"),
    Column("Amber limit"),
    Column("State", width=10),
    Column("p90 (days)", width=11),
    Column("Measured", INT, 10),
]


class _Cells:
    """Typed, styled cells of one write-only sheet."""

    def __init__(self, sheet: Any) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font

        self.sheet, self.make, self.bold = sheet, WriteOnlyCell, Font(bold=True)

    def header(self, text: str) -> Any:
        cell = self.make(self.sheet, value=text)
        cell.font = self.bold
        return cell

    def value(self, value: Any, number_format: str | None = None) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            if not value.startswith(DANGEROUS_PREFIXES):
                return value  # plain text: written as it is (a cell object costs time)
            cell = self.make(self.sheet, value=value)
            cell.data_type = "s"  # text, never a formula
            cell.quotePrefix = True
            return cell
        if number_format is None and not isinstance(value, date):
            return value  # a whole number
        if isinstance(value, Decimal):
            value = float(value) if number_format != MONEY_FORMAT else value
        cell = self.make(self.sheet, value=value)
        if number_format is not None:
            cell.number_format = number_format
        elif isinstance(value, date):
            cell.number_format = DATE_FORMAT
        return cell


RowMaker = Callable[[_Cells], list[list[Any]]]


def _table(
    workbook: Any, title: str, columns: list[Column], make_rows: RowMaker
) -> tuple[Any, int]:
    """A sheet of rows under a frozen bold header with a filter and widths; and its row count."""
    from openpyxl.utils import get_column_letter

    sheet = workbook.create_sheet(title)
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.freeze_panes = "A2"
    cells = _Cells(sheet)
    sheet.append([cells.header(column.header) for column in columns])
    rows = make_rows(cells)
    for row in rows:
        sheet.append(row)
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    return sheet, len(rows)


def _detail(sheet: Sheet) -> RowMaker:
    def rows(cells: _Cells) -> list[list[Any]]:
        return [
            [
                cells.value(column.shown(value), COLUMN_FORMATS.get(column.kind))
                for value, column in zip(row, sheet.columns, strict=True)
            ]
            for row in sheet.rows
        ]

    return rows


def _summary_rows(scorecard: list[Row], cells: _Cells) -> list[list[Any]]:
    rows = []
    for row in scorecard:
        m, fmt = row.metric, KIND_FORMATS[row.metric.kind]
        measured = row.figure.den if m.kind == sl.RATE else row.figure.count
        rows.append(
            [
                cells.value(m.label),
                cells.value(m.unit or "count"),
                cells.value(row.value, fmt),
                cells.value(row.previous.value, fmt),
                cells.value(row.change, fmt),
                cells.value(row.target.target, fmt),
                cells.value(row.target.amber, fmt),
                cells.value(STATE_LABELS[row.state]),
                cells.value(row.figure.p90, DAYS_FORMAT),
                cells.value(measured, COUNT_FORMAT),
            ]
        )
    return rows


def _trend_series(scorecard: list[Row]) -> list[Row]:
    by_key = {row.metric.key: row for row in scorecard}
    return [by_key[key] for key in TREND_METRICS]


def _trend_rows(series: list[Row], cells: _Cells) -> list[list[Any]]:
    rows = []
    for index, (monday, _) in enumerate(series[0].trend):
        values = [row.trend[index][1].value for row in series]
        rows.append(
            [cells.value(sl.week_label(monday))] + [cells.value(v, RATE_FORMAT) for v in values]
        )
    return rows


def _pareto_rows(bars: list[Bar], cells: _Cells) -> list[list[Any]]:
    return [
        [
            cells.value(bar.label),
            cells.value(bar.count, COUNT_FORMAT),
            cells.value(bar.share, RATE_FORMAT),
            cells.value(bar.cumulative, RATE_FORMAT),
        ]
        for bar in bars
    ]


PARETO_COLUMNS = [
    Column("Cause", width=40),
    Column("Count", INT, 10),
    Column("Share", width=10),
    Column("Cumulative", width=12),
]


def _trend_chart(trend: Any, weeks: int, series: int) -> Any:
    from openpyxl.chart import LineChart, Reference

    chart = LineChart()
    chart.title = "Service levels, weekly"
    chart.y_axis.title = "Rate"
    chart.y_axis.number_format = "0%"
    chart.height, chart.width = 8, 18
    data = Reference(trend, min_col=2, max_col=series + 1, min_row=1, max_row=weeks + 1)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(trend, min_col=1, min_row=2, max_row=weeks + 1))
    return chart


def _pareto_chart(pareto: Any, bars: int) -> Any:
    from openpyxl.chart import BarChart, LineChart, Reference

    chart = BarChart()
    chart.type = "col"
    chart.title = "Root causes (Pareto)"
    chart.y_axis.title = "Count"
    chart.height, chart.width = 8, 18
    last = max(bars, 1) + 1
    chart.add_data(Reference(pareto, min_col=2, min_row=1, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(pareto, min_col=1, min_row=2, max_row=last))
    cumulative = LineChart()
    cumulative.add_data(
        Reference(pareto, min_col=4, min_row=1, max_row=last), titles_from_data=True
    )
    cumulative.y_axis.axId = 200
    cumulative.y_axis.number_format = "0%"
    cumulative.y_axis.crosses = "max"
    chart += cumulative
    return chart


def build(week: sl.Period, scorecard: list[Row], bars: list[Bar], sheets: list[Sheet]) -> bytes:
    """The workbook's bytes for ``week``."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    workbook.properties.title = f"Order health {week.label}"
    summary, _ = _table(
        workbook, "Summary", SUMMARY_COLUMNS, lambda cells: _summary_rows(scorecard, cells)
    )
    series = _trend_series(scorecard)
    trend_columns = [Column("Week", width=10)] + [Column(row.metric.label) for row in series]
    trend, weeks = _table(
        workbook, "Trend", trend_columns, lambda cells: _trend_rows(series, cells)
    )
    pareto, _ = _table(workbook, "Pareto", PARETO_COLUMNS, lambda cells: _pareto_rows(bars, cells))
    summary.add_chart(_trend_chart(trend, weeks, len(series)), "L2")
    summary.add_chart(_pareto_chart(pareto, len(bars)), "L20")
    for sheet in sheets:
        _table(workbook, sheet.title, sheet.columns, _detail(sheet))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
