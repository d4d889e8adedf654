"""Files for the import tests, written at test time in every format the import reads.

.xlsx with openpyxl, .xls with xlwt, .ods with odfpy, .xlsb with pyxlsbwriter, and .csv as a
European export would be: semicolons, Latin-1, day.month.year dates and decimal commas.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

LINE_HEADERS = [
    "Row ID",
    "Order ID",
    "Order Date",
    "Ship Date",
    "Ship Mode",
    "Customer ID",
    "Customer Name",
    "Segment",
    "City",
    "State",
    "Postal Code",
    "Country",
    "Region",
    "Product ID",
    "Category",
    "Product Name",
    "Sales",
    "Quantity",
    "Discount",
]
_A = [date(2024, 1, 5), date(2024, 1, 8), "Second Class", "CG-1", "Claire Gute", "Consumer"]
_A += ["Henderson", "Kentucky", "42420", "United States", "South"]
_B = [date(2024, 2, 10), date(2024, 2, 14), "Standard Class", "ZM-2", "Zoë Müller", "Corporate"]
_B += ["Köln", "NRW", "50667", "Germany", "Central"]
_C = [date(2024, 3, 1), None, "First Class", "CG-1", "Claire Gute", "Consumer"]
_C += ["Henderson", "Kentucky", "42420", "United States", "South"]
LINE_ROWS: list[list[Any]] = [
    [1, "US-A1", *_A, "FUR-1", "Furniture", "Bücherregal Bush", 261.96, 2, 0],
    [2, "US-A1", *_A, "FUR-2", "Furniture", "Hon Chairs", 731.94, 3, 0],
    [3, "DE-B2", *_B, "OFF-3", "Office Supplies", "Etiketten", 14.62, 2, 0.2],
    [4, "US-C3", *_C, "FUR-1", "Furniture", "Bücherregal Bush", 130.98, 1, 0],
]


def write_xlsx(path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]], sheet="Orders"):
    from openpyxl import Workbook

    book = Workbook()
    out = book.active
    out.title = sheet
    out.append(list(headers))
    for row in rows:
        out.append(list(row))
    book.save(path)
    return path


def write_xls(path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    out = book.add_sheet("Orders")
    as_date = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for r, row in enumerate([headers, *rows]):
        for c, value in enumerate(row):
            if isinstance(value, date):
                out.write(r, c, value, as_date)
            elif value is not None:
                out.write(r, c, value)
    book.save(str(path))
    return path


def write_ods(path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    table = Table(name="Orders")
    for row in [headers, *rows]:
        out = TableRow()
        for value in row:
            if value is None:
                out.addElement(TableCell())
                continue
            if isinstance(value, date):
                cell = TableCell(valuetype="date", datevalue=value.isoformat())
            elif isinstance(value, int | float):
                cell = TableCell(valuetype="float", value=value)
            else:
                cell = TableCell(valuetype="string")
            cell.addElement(P(text=str(value)))
            out.addElement(cell)
        table.addElement(out)
    document.spreadsheet.addElement(table)
    document.save(str(path))
    return path


def write_xlsb(path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    from pyxlsbwriter import XlsbWriter

    with XlsbWriter(str(path)) as book:
        book.add_sheet("Orders")
        book.write_sheet([list(headers), *[list(row) for row in rows]])
    return path


def write_csv_latin1(path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """Semicolons, Latin-1, dates as 05.01.2024 and decimal commas (a European export)."""

    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, date):
            return value.strftime("%d.%m.%Y")
        if isinstance(value, float):
            return repr(value).replace(".", ",")
        return str(value)

    with open(path, "w", encoding="latin-1", newline="") as handle:
        out = csv.writer(handle, delimiter=";")
        out.writerow(headers)
        for row in rows:
            out.writerow([text(value) for value in row])
    return path


WRITERS = {
    ".xlsx": write_xlsx,
    ".xls": write_xls,
    ".ods": write_ods,
    ".xlsb": write_xlsb,
    ".csv": write_csv_latin1,
}
