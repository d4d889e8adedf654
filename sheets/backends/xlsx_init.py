"""Write a NEW tracker workbook with openpyxl (fine here: there is nothing of the user's to keep).

Bold filled header, frozen header row, autofilter, column widths, list validations for the
status/choice columns, and the key column locked by a sheet protection that still allows
sorting, filtering, formatting and inserting/deleting rows everywhere else.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill, Protection
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from sheets.grid import CellValue

_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="305496")
_UNLOCKED = Protection(locked=False)
_MAX_LIST_FORMULA = 255  # Excel's limit on an inline list validation


def _number_format(value: CellValue) -> str | None:
    if isinstance(value, datetime):
        return "yyyy-mm-dd hh:mm"
    if isinstance(value, date):
        return "yyyy-mm-dd"
    if isinstance(value, Decimal):
        return "0.00" if value.as_tuple().exponent == -2 else None
    return None


def write_new_tracker(
    path: Path | str,
    tab: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[CellValue]],
    *,
    key_header: str,
    status_header: str,
    status_choices: Mapping[str, Sequence[str]],
    widths: Mapping[str, float] | None = None,
) -> None:
    """Create ``path`` (atomically) with one tab holding ``headers`` and ``rows``.

    ``status_choices`` maps a header to its allowed values (a dropdown list); ``widths`` maps a
    header to a column width (default: fitted to the header and values, 10..60).
    """
    headers = list(headers)
    for name in (key_header, status_header, *status_choices, *(widths or {})):
        if name not in headers:
            raise ValueError(f"{name!r} is not one of the headers")
    wb = Workbook()
    ws = wb.active
    ws.title = tab
    ws.append(headers)
    for cell in ws[1]:
        cell.font, cell.fill = _HEADER_FONT, _HEADER_FILL
    key_col = headers.index(key_header) + 1
    _append_rows(ws, headers, rows, key_col)
    last_row = max(ws.max_row, 2)
    _size_columns(ws, headers, rows, key_col, widths or {})
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{last_row}"
    _add_list_validations(wb, ws, headers, status_choices, status_header)
    _protect(ws)
    _save_atomically(wb, Path(path))


def _append_rows(
    ws: Worksheet, headers: list[str], rows: Sequence[Sequence[CellValue]], key_col: int
) -> None:
    """The data rows: every cell but the key unlocked, dates and money formatted."""
    for values in rows:
        if len(values) != len(headers):
            raise ValueError(f"row {values!r} does not have {len(headers)} values")
        ws.append(list(values))  # openpyxl writes a Decimal as its digits ("%.16g")
        for col, (cell, value) in enumerate(zip(ws[ws.max_row], values, strict=True), start=1):
            if col != key_col:
                cell.protection = _UNLOCKED
            if (fmt := _number_format(value)) is not None:
                cell.number_format = fmt


def _size_columns(
    ws: Worksheet,
    headers: list[str],
    rows: Sequence[Sequence[CellValue]],
    key_col: int,
    widths: Mapping[str, float],
) -> None:
    """Column widths, and the column style that keeps rows added later editable."""
    # Rows added later by users: everything but the key column stays editable (column style).
    for col, header in enumerate(headers, start=1):
        letter = get_column_letter(col)
        dim = ws.column_dimensions[letter]
        if col != key_col:
            dim.protection = _UNLOCKED
        width = widths.get(header)
        if width is None:
            longest = max([len(str(header))] + [len(str(r[col - 1] or "")) for r in rows[:500]])
            width = min(max(longest + 2, 10), 60)
        dim.width = width


def _add_list_validations(
    wb: Workbook,
    ws: Worksheet,
    headers: list[str],
    status_choices: Mapping[str, Sequence[str]],
    status_header: str,
) -> None:
    """A dropdown list per column in ``status_choices``."""
    lists_used = 0
    for header, choices in status_choices.items():
        letter = get_column_letter(headers.index(header) + 1)
        listed = ",".join(str(c) for c in choices)
        if len(listed) + 2 <= _MAX_LIST_FORMULA and not any("," in str(c) for c in choices):
            formula = f'"{listed}"'
        else:  # long or comma-holding lists go to a hidden sheet
            lists = wb["Lists"] if "Lists" in wb.sheetnames else wb.create_sheet("Lists")
            lists.sheet_state = "hidden"
            lists_used += 1
            list_col = get_column_letter(lists_used)
            for i, choice in enumerate(choices, start=1):
                lists[f"{list_col}{i}"] = str(choice)
            formula = f"{quote_sheetname('Lists')}!${list_col}$1:${list_col}${len(choices)}"
        dv = DataValidation(type="list", formula1=formula, allow_blank=True)
        dv.error, dv.errorTitle = f"Pick one of the {header} values", header
        # The status column also carries the sync's notes: warn there instead of refusing.
        dv.errorStyle = "warning" if header == status_header else "stop"
        dv.add(f"{letter}2:{letter}1048576")
        ws.add_data_validation(dv)


def _protect(ws: Worksheet) -> None:
    """Protect the sheet (locking the key column) but allow sorting, filtering and the rest."""
    prot = ws.protection
    prot.sheet = True
    for flag in (
        "sort",
        "autoFilter",
        "insertRows",
        "deleteRows",
        "formatCells",
        "formatColumns",
        "formatRows",
        "insertColumns",
        "insertHyperlinks",
    ):
        setattr(prot, flag, False)  # False = the action is allowed while protected


def _save_atomically(wb: Workbook, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".~" + target.name, suffix=".tmp", dir=target.parent or ".")
    os.close(fd)
    try:
        wb.save(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
