"""The weekly order-health workbook (.xlsx), streamed with XlsxWriter.

Sheets: Summary (every metric against its target, last week and the change, its state, and
two native Excel charts — the 12-week trend of the rates and the root-cause Pareto — drawn
from the Trend and Pareto sheets' cells), Trend, Pareto, then the week's detail sheets
(``weekly_report_data``). Every sheet has typed cells (numbers, dates, money, percentages),
a bold frozen header row, a filter over its table and column widths. Text from records that
a spreadsheet would evaluate is written as quoted text, as exports do (no cell is a formula).

XlsxWriter (``constant_memory`` mode) lays out the sheets, styles and charts; the rows are
streamed straight into each sheet's XML as they are made (``_Book._write_rows``): no cell
object per cell, a few microseconds a cell.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import IO, Any

from xlsxwriter import Workbook
from xlsxwriter.chart import Chart
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

from portal.services import service_levels as sl
from portal.services.exports import DANGEROUS_PREFIXES, DATE_FORMAT, DIGIT_PIXELS, MONEY_FORMAT
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
PARETO_COLUMNS = [
    Column("Cause", width=40),
    Column("Count", INT, 10),
    Column("Share", width=10),
    Column("Cumulative", width=12),
]
CHART_SIZE = {"width": 680, "height": 302}  # 18 × 8 cm at 96 pixels an inch

# A row's values and each value's number format (None: the value's own).
TableRow = tuple[Sequence[Any], Sequence[str | None]]
NUMBERS = (int, float, Decimal)
EXCEL_EPOCH = datetime(1899, 12, 30)
# what text needs beyond the plain case: XML escapes, control characters (_xHHHH_), and
# text that reads as such an escape already
SPECIAL_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f&<>\ufffe\uffff]|_x[0-9A-Fa-f]{4}_")


class _Book:
    """A workbook being written: XlsxWriter lays out its sheets, styles and charts; the
    cells are streamed as sheet XML rows (see ``_write_rows``)."""

    def __init__(self, target: IO[bytes], title: str) -> None:
        self.workbook = Workbook(target, {"constant_memory": True})
        self.workbook.set_properties({"title": title})
        self.bold = self._style({"bold": True})
        self.quoted = self._style({"quote_prefix": True})
        self.styles: dict[str | None, str] = {None: ""}

    def _style(self, properties: dict[str, Any]) -> str:
        """A cell format's ``s`` attribute (its index in the workbook's styles)."""
        return f' s="{self.workbook.add_format(properties)._get_xf_index()}"'

    def style(self, number_format: str | None) -> str:
        if number_format not in self.styles:
            self.styles[number_format] = self._style({"num_format": number_format})
        return self.styles[number_format]

    def table(
        self, title: str, columns: list[Column], rows: Iterable[TableRow], note: str | None = None
    ) -> tuple[Worksheet, int]:
        """A sheet of ``rows`` under a frozen bold header with a filter and widths; and the
        number of rows written. A ``note`` is written in the header row, one column right of
        the table (outside its filter, always in view)."""
        sheet = self.workbook.add_worksheet(title)
        for index, column in enumerate(columns):
            sheet.set_column_pixels(index, index, column.width * DIGIT_PIXELS)
        sheet.freeze_panes(1, 0)
        header = "".join(
            _inline(f"{xl_col_to_name(index)}1", self.bold, column.header)
            for index, column in enumerate(columns)
        )
        last = len(columns) - 1
        if note is not None:
            last = len(columns) + 1
            header += _inline(f"{xl_col_to_name(last)}1", self.bold, note)
        sheet.fh.write(f'<row r="1">{header}</row>')
        count = self._write_rows(sheet, rows, len(columns))
        sheet._check_dimensions(0, 0)  # the sheet's range: what XlsxWriter's writes keep
        sheet._check_dimensions(count, last)
        sheet.autofilter(0, 0, count, len(columns) - 1)
        return sheet, count

    def _write_rows(self, sheet: Worksheet, rows: Iterable[TableRow], width: int) -> int:
        """Write ``rows`` under the header as sheet XML, each value typed: text as inline
        text (quoted when a spreadsheet would evaluate it, never a formula), numbers as
        numbers, dates as date serials, None as no cell; the number of rows written.

        This is what XlsxWriter's ``constant_memory`` mode writes to the sheet's row file
        (``fh``), without its cell objects and per-cell calls: several times faster."""
        letters = [xl_col_to_name(col) for col in range(width)]
        write, quoted, cell = sheet.fh.write, self.quoted, self._cell
        count, last, styles = 0, None, []
        for count, (values, formats) in enumerate(rows, start=1):
            if formats is not last:  # a detail sheet's rows share their formats
                last, styles = formats, [self.style(f) for f in formats]
            number, cells = count + 1, []
            for col, value in enumerate(values):
                kind = value.__class__
                if kind is str:
                    s = quoted if value.startswith(DANGEROUS_PREFIXES) else ""
                    cells.append(_inline(f"{letters[col]}{number}", s, value))
                elif kind is int or kind is Decimal or kind is float:
                    cells.append(f'<c r="{letters[col]}{number}"{styles[col]}><v>{value}</v></c>')
                elif value is not None:
                    cells.append(cell(f"{letters[col]}{number}", value, formats[col]))
            write(f'<row r="{number}">{"".join(cells)}</row>')
        return count

    def _cell(self, ref: str, value: Any, number_format: str | None) -> str:
        """A cell of any other type: a date or time, a truth value, a subclass of text or
        number (an enum)."""
        if isinstance(value, str):
            quoted = self.quoted if value.startswith(DANGEROUS_PREFIXES) else ""
            return _inline(ref, quoted, str(value))
        if isinstance(value, bool):
            return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
        if isinstance(value, NUMBERS):
            return f'<c r="{ref}"{self.style(number_format)}><v>{value}</v></c>'
        if isinstance(value, date):
            style = self.style(number_format or DATE_FORMAT)
            return f'<c r="{ref}"{style}><v>{_serial(value)}</v></c>'
        raise TypeError(f"{type(value).__name__} in a workbook cell: {value!r}")

    def close(self) -> None:
        self.workbook.close()


def _inline(ref: str, style: str, value: str) -> str:
    """A cell of inline text: escaped for XML, control characters as ``_xHHHH_`` (as
    XlsxWriter writes them), leading or trailing spaces kept."""
    if SPECIAL_TEXT.search(value):
        value = Worksheet._escape_control_characters(value)
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    space = ' xml:space="preserve"' if value != value.strip() else ""
    return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{value}</t></is></c>'


def _serial(value: date) -> int | float:
    """A date or (naive UTC) time as Excel's serial number of days since 1899-12-30."""
    if isinstance(value, datetime):
        return (value.replace(tzinfo=None) - EXCEL_EPOCH) / timedelta(days=1)
    return (value - EXCEL_EPOCH.date()).days


def _detail_rows(sheet: Sheet) -> Iterable[TableRow]:
    """A detail sheet's rows: codes shown by their labels, each column's number format."""
    formats = [COLUMN_FORMATS.get(column.kind) for column in sheet.columns]
    if all(column.labels is None for column in sheet.columns):
        return ((row, formats) for row in sheet.rows)
    return (
        ([column.shown(v) for v, column in zip(row, sheet.columns, strict=True)], formats)
        for row in sheet.rows
    )


def _cut_note(sheet: Sheet) -> str | None:
    """What a sheet cut at its row limit says: that more rows matched than it shows."""
    if not sheet.cut:
        return None
    return f"Only the first {len(sheet.rows):,} rows are shown: more matched."


def _summary_rows(scorecard: list[Row]) -> Iterable[TableRow]:
    for row in scorecard:
        m, fmt = row.metric, KIND_FORMATS[row.metric.kind]
        measured = row.figure.den if m.kind == sl.RATE else row.figure.count
        values = [
            m.label,
            m.unit or "count",
            row.value,
            row.previous.value,
            row.change,
            row.target.target,
            row.target.amber,
            STATE_LABELS[row.state],
            row.figure.p90,
            measured,
        ]
        yield values, [None, None, fmt, fmt, fmt, fmt, fmt, None, DAYS_FORMAT, COUNT_FORMAT]


def _trend_series(scorecard: list[Row]) -> list[Row]:
    by_key = {row.metric.key: row for row in scorecard}
    return [by_key[key] for key in TREND_METRICS]


def _trend_rows(series: list[Row]) -> Iterable[TableRow]:
    formats = [None] + [RATE_FORMAT] * len(series)
    for index, (monday, _) in enumerate(series[0].trend):
        values = [row.trend[index][1].value for row in series]
        yield [sl.week_label(monday), *values], formats


def _pareto_rows(bars: list[Bar]) -> Iterable[TableRow]:
    formats = [None, COUNT_FORMAT, RATE_FORMAT, RATE_FORMAT]
    return (([bar.label, bar.count, bar.share, bar.cumulative], formats) for bar in bars)


def _trend_chart(book: _Book, weeks: int, series: int) -> Chart:
    chart = book.workbook.add_chart({"type": "line"})
    for col in range(1, series + 1):
        chart.add_series(
            {
                "name": ["Trend", 0, col],
                "categories": ["Trend", 1, 0, weeks, 0],
                "values": ["Trend", 1, col, weeks, col],
            }
        )
    chart.set_title({"name": "Service levels, weekly"})
    chart.set_y_axis({"name": "Rate", "num_format": "0%"})
    chart.set_size(CHART_SIZE)
    return chart


def _pareto_chart(book: _Book, bars: int) -> Chart:
    """Counts as columns, the cumulative share as a line on a secondary axis."""
    last = max(bars, 1)
    causes = ["Pareto", 1, 0, last, 0]
    chart = book.workbook.add_chart({"type": "column"})
    chart.add_series(
        {"name": ["Pareto", 0, 1], "categories": causes, "values": ["Pareto", 1, 1, last, 1]}
    )
    chart.set_title({"name": "Root causes (Pareto)"})
    chart.set_y_axis({"name": "Count"})
    cumulative = book.workbook.add_chart({"type": "line"})
    cumulative.add_series(
        {
            "name": ["Pareto", 0, 3],
            "categories": causes,
            "values": ["Pareto", 1, 3, last, 3],
            "y2_axis": True,
        }
    )
    cumulative.set_y2_axis({"num_format": "0%"})
    chart.combine(cumulative)
    chart.set_size(CHART_SIZE)
    return chart


def write(
    target: IO[bytes],
    week: sl.Period,
    scorecard: list[Row],
    bars: list[Bar],
    sheets: list[Sheet],
) -> None:
    """Write the workbook of ``week`` to ``target`` (a binary file or buffer)."""
    book = _Book(target, f"Order health {week.label}")
    summary, _ = book.table("Summary", SUMMARY_COLUMNS, _summary_rows(scorecard))
    series = _trend_series(scorecard)
    trend_columns = [Column("Week", width=10)] + [Column(row.metric.label) for row in series]
    _, weeks = book.table("Trend", trend_columns, _trend_rows(series))
    book.table("Pareto", PARETO_COLUMNS, _pareto_rows(bars))
    summary.insert_chart("L2", _trend_chart(book, weeks, len(series)))
    summary.insert_chart("L20", _pareto_chart(book, len(bars)))
    for sheet in sheets:
        book.table(sheet.title, sheet.columns, _detail_rows(sheet), _cut_note(sheet))
    book.close()


def build(week: sl.Period, scorecard: list[Row], bars: list[Bar], sheets: list[Sheet]) -> bytes:
    """The workbook's bytes for ``week``."""
    buffer = io.BytesIO()
    write(buffer, week, scorecard, bars, sheets)
    return buffer.getvalue()
