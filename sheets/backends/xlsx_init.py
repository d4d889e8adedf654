"""Write a tracker tab: into a new workbook, or into an existing one without touching the rest.

The tab (bold filled header, frozen header row, autofilter, column widths, list validations
for the status/choice columns, and the key column locked by a sheet protection that still
allows sorting, filtering, formatting and inserting/deleting rows) is generated as worksheet
XML (:mod:`sheets.backends.xlsx_tracker`, linear in the rows) and put into the package by
:mod:`sheets.backends.xlsx_book`: an existing workbook keeps every other sheet, defined name,
formula, style, chart and part byte for byte. A new workbook starts as openpyxl's empty one.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from openpyxl import Workbook

from sheets.backends.xlsx import _directory_lock, _load
from sheets.backends.xlsx_book import check_tab_name, open_book
from sheets.backends.xlsx_files import check_workbook_bytes
from sheets.backends.xlsx_limits import XlsxLimits
from sheets.backends.xlsx_tracker import (
    TrackerStyles,
    list_validations,
    lists_sheet_xml,
    tracker_sheet_xml,
)
from sheets.grid import CellValue, SheetChangedError


class TabExists(ValueError):
    """The workbook already has the tracker's tab (refresh it with ``replace=True``)."""


def _empty_workbook(tab: str) -> bytes:
    wb = Workbook()
    wb.active.title = tab
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def lists_sheet_name(tab: str) -> str:
    """The hidden sheet holding a tab's long dropdown lists."""
    return f"{tab} lists"[:31]


def write_tracker(
    path: Path | str,
    tab: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[CellValue]],
    *,
    key_header: str,
    status_header: str,
    status_choices: Mapping[str, Sequence[str]],
    widths: Mapping[str, float] | None = None,
    replace: bool = False,
    limits: XlsxLimits | None = None,
) -> str:
    """Put the tracker tab ``tab`` into ``path``: ``"created"``, ``"added"`` or ``"replaced"``.

    A missing file becomes a new workbook holding the tab. An existing workbook (checked to be
    an .xlsx package first: :class:`~sheets.backends.xlsx_files.NotAWorkbook` otherwise) gets
    the tab added, or, if it has it and ``replace`` is true, only that tab rewritten
    (:class:`TabExists` without ``replace``). ``status_choices`` maps a header to its allowed
    values (a dropdown list); ``widths`` maps a header to a column width (default: fitted to
    the header and the first 500 values, 10..60). The file is replaced atomically, and only
    if nobody saved it meanwhile (:class:`~sheets.grid.SheetChangedError`).
    """
    headers = list(headers)
    for name in (key_header, status_header, *status_choices, *(widths or {})):
        if name not in headers:
            raise ValueError(f"{name!r} is not one of the headers")
    check_tab_name(tab)
    target = Path(os.path.realpath(path))
    limits = limits or XlsxLimits()
    fingerprint = None
    if target.exists():
        data, fingerprint = _load(target, limits)
        check_workbook_bytes(path, data)
    else:
        data = _empty_workbook(tab)
    book = open_book(data, limits)
    if fingerprint is not None and tab in book.sheets and not replace:
        raise TabExists(f"{path} already has a tab {tab!r}")
    if book.styles_xml is None:
        raise ValueError(f"{path} has no styles part (not a workbook Excel wrote)")
    styles = TrackerStyles(book.styles_xml)
    lists = lists_sheet_name(tab)
    validations, list_columns = list_validations(headers, status_choices, status_header, lists)
    xml = tracker_sheet_xml(
        headers,
        rows,
        key_col=headers.index(key_header) + 1,
        validations=validations,
        widths=widths or {},
        styles=styles,
        date1904=book.date1904,
    )
    outcome = book.put_sheet(tab, xml)
    if list_columns:
        book.put_sheet(lists, lists_sheet_xml(list_columns), hidden=True)
    book.set_styles(styles.xml)
    _replace_file(target, book.package(), fingerprint, limits)
    return "created" if fingerprint is None else outcome


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
    """Create (or overwrite) ``path`` as a new workbook holding only the tracker tab."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    write_tracker(
        path,
        tab,
        headers,
        rows,
        key_header=key_header,
        status_header=status_header,
        status_choices=status_choices,
        widths=widths,
    )


def _replace_file(target: Path, new: bytes, expected: str | None, limits: XlsxLimits) -> None:
    """Atomic replace; refused if the file changed (or appeared) since it was read."""
    fd, tmp = tempfile.mkstemp(prefix=".~" + target.name, suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(new)
            fh.flush()
            mode = os.stat(target).st_mode & 0o7777 if expected is not None else 0o644
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        with _directory_lock(target.parent):
            now = _load(target, limits)[1] if target.exists() else None
            if now != expected:
                raise SheetChangedError(f"{target} was saved by someone else meanwhile")
            os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
