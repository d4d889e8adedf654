"""xlwings tracker backend: one tab of an ``xlwings.Book``, read and written like the others.

Two kinds of book (docs/xlwings.md):

- a **remote book** built from the JSON a client inside Excel posted (Office.js add-in,
  Office Scripts, VBA, or Apps Script in Google Sheets): :func:`remote_book` checks the
  payload's xlwings version and the license key, then ``xw.Book(json=payload)``. Writes
  become the book's actions (``book.json()``), which the client applies to the open
  workbook after the answer arrives;
- a **desktop book** opened in Microsoft Excel on a Windows or macOS worker
  (:func:`desktop_book`, ``xw.Book(path)``), written cell block by cell block while the
  workbook may be open in front of a person.

:class:`XlwingsBackend` gives the sync job the same ``read``/``write`` as the xlsx and
gsheets backends. It writes only the cells it is given (the engine's changed cells and status
cells), as runs of adjacent cells: never a whole row or the sheet, and never a format.
Nothing here imports the portal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sheets.backends import BackendUnavailable
from sheets.grid import CellValue, CellWrite, SheetChangedError, SheetSnapshot, cell_blocks

LICENSE_ENV = "XLWINGS_LICENSE_KEY"
DESKTOP_PLATFORMS = ("win32", "darwin")


class PayloadRefused(ValueError):
    """A posted workbook the server will not sync; the message is shown in Excel."""


class VersionMismatch(PayloadRefused):
    """The client's xlwings version is not the server's."""


class LicenseMissing(BackendUnavailable):
    """No (valid) xlwings license key: the xlwings Server protocol is xlwings PRO."""


def server_version() -> str:
    """The xlwings version installed here (a client must send the same one)."""
    import xlwings

    return str(xlwings.__version__)


def _remote_engine(license_key: str | None) -> Any:
    """The ``remote`` engine, registered once the license key is known (xlwings registers
    its PRO engines at import time only when the key is already in the environment)."""
    if not license_key:
        raise LicenseMissing(
            "the server has no xlwings license key: set XLWINGS_LICENSE_KEY (the key "
            "'noncommercial' for noncommercial use; commercial use needs a commercial key "
            "from xlwings.org)"
        )
    if os.environ.get(LICENSE_ENV) != license_key:
        os.environ[LICENSE_ENV] = license_key
    import xlwings as xw
    from xlwings.pro.utils import LicenseHandler

    try:
        LicenseHandler.validate_license("pro")
    except xw.LicenseError as error:
        raise LicenseMissing(f"the server's xlwings license key is refused: {error}") from None
    if "remote" not in [engine.name for engine in xw.engines]:
        from xlwings.pro import _xlremote

        xw.engines.add(xw.Engine(impl=_xlremote.engine))
    return xw


def check_payload(payload: object) -> dict[str, Any]:
    """``payload`` if it is a workbook as the xlwings clients post it, else PayloadRefused."""
    if not isinstance(payload, dict):
        raise PayloadRefused("the request is not an xlwings workbook (a JSON object)")
    version = payload.get("version")
    if not isinstance(version, str) or not version:
        raise PayloadRefused("the workbook does not say its xlwings version (version)")
    if version != server_version():
        raise VersionMismatch(
            f"the workbook's xlwings client is version {version}, the server's xlwings is "
            f"{server_version()}: download the client again from the tracker's page"
        )
    sheets = payload.get("sheets")
    if not isinstance(sheets, list) or not all(isinstance(s, dict) for s in sheets):
        raise PayloadRefused("the workbook has no sheets (sheets)")
    if not isinstance(payload.get("book"), dict):
        raise PayloadRefused("the workbook has no book part (book)")
    for sheet in sheets:
        values = sheet.get("values")
        if not isinstance(sheet.get("name"), str) or not isinstance(values, list):
            raise PayloadRefused("a sheet of the workbook has no name or values")
        if not all(isinstance(row, list) for row in values):
            raise PayloadRefused(f"sheet {sheet['name']!r}: values must be rows (lists)")
    return payload


def remote_book(payload: Mapping[str, Any], license_key: str | None) -> Any:
    """``xw.Book(json=payload)`` after :func:`check_payload` and the license check."""
    data = check_payload(payload)
    xw = _remote_engine(license_key)
    data.setdefault("client", "unknown")
    data.setdefault("names", [])
    for sheet in data["sheets"]:
        sheet.setdefault("pictures", [])
        sheet.setdefault("tables", [])
    return xw.Book(json=data)


def excel_problem() -> str | None:
    """Why Microsoft Excel cannot be driven on this machine (None: it can be tried)."""
    if sys.platform.startswith(DESKTOP_PLATFORMS):
        return None
    return (
        "the xlwings desktop backend drives Microsoft Excel and runs only on a Windows or "
        f"macOS machine with Excel (orderbridge worker --queue excel there); this machine is "
        f"{sys.platform}. Sync the workbook from inside Excel with the xlwings client "
        "(docs/xlwings.md), or use the xlsx backend for .xlsx files."
    )


def desktop_book(path: str) -> Any:
    """``xw.Book(path)`` in Microsoft Excel (found if open, else opened); BackendUnavailable
    with the reason on a machine without Excel (Linux)."""
    problem = excel_problem()
    if problem:
        raise BackendUnavailable(problem)
    import xlwings as xw

    return xw.Book(os.path.expanduser(path))


def excel_value(value: CellValue) -> Any:
    """What xlwings writes for ``value``: money and other decimals as numbers (exact text
    when a double would lose digits), aware datetimes in UTC, nothing as an empty cell."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value!r} cannot be stored in a cell")
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else format(value, "f")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be stored in a cell")
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _remote_value(value: Any) -> Any:
    """A value as xlwings' remote engine sends it to the clients (dates as ISO text)."""
    from xlwings.pro._xlremote import Engine

    return Engine.prepare_xl_data_element(value, {})


def _fingerprint(rows: list[list[CellValue]]) -> str:
    text = json.dumps(rows, default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class XlwingsBackend:
    """One tab of an ``xlwings.Book`` (remote or desktop).

    ``live`` (a desktop book): the tab is read again before a write and the write is refused
    with SheetChangedError if a person changed it meanwhile (the sync merges again). A remote
    book is the payload as posted: it cannot change under the sync.
    """

    def __init__(self, book: Any, tab: str, *, live: bool = False) -> None:
        self.book = book
        self.tab = tab
        self.live = live

    def _sheet(self) -> Any:
        try:
            return self.book.sheets[self.tab]
        except (KeyError, ValueError):
            names = ", ".join(repr(s.name) for s in self.book.sheets)
            raise KeyError(
                f"the workbook has no sheet named {self.tab!r} (it has {names})"
            ) from None

    def read(self) -> SheetSnapshot:
        """Every cell from A1 to the used range's last cell: str, float/int, bool, datetime
        (cells the client sent as dates) or None."""
        sheet = self._sheet()
        last = sheet.used_range.last_cell
        grid = sheet.range((1, 1), (last.row, last.column))
        rows = grid.options(ndim=2, empty=None).value or []
        rows = [[None if v == "" else v for v in row] for row in rows]
        meta = {"book": self.book.name, "tab": self.tab}
        return SheetSnapshot(rows, _fingerprint(rows) if self.live else None, meta)

    def write(self, writes: Sequence[CellWrite], expected: SheetSnapshot) -> None:
        """Set exactly these cells, as runs of adjacent cells (one setValues action each on
        a remote book)."""
        if not writes:
            return
        cells: dict[tuple[int, int], Any] = {}
        for w in writes:
            if w.row < 1 or w.col < 1 or w.row > 1_048_576 or w.col > 16_384:
                raise ValueError(f"cell ({w.row}, {w.col}) is outside a worksheet")
            cells[w.row, w.col] = excel_value(w.value)
        if self.live and self.read().fingerprint != expected.fingerprint:
            raise SheetChangedError(f"{self.tab!r} of {self.book.name} changed since it was read")
        sheet = self._sheet()
        for block in cell_blocks(cells):  # no gap bridged: the clients would clear it
            end = (block.row + len(block.values) - 1, block.col + block.width - 1)
            target = sheet.range((block.row, block.col), end)
            if self.live:
                target.value = block.values
            else:  # one setValues action, without xlwings' per-write copy of the whole tab
                target.raw_value = [[_remote_value(v) for v in row] for row in block.values]
