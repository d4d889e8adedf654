"""Excel (.xlsx) tracker backend: read with python-calamine, write by patching the package.

``read()`` returns every cell from A1 (row 0 of ``rows`` is sheet row 1, the header). Values are
what calamine returns: str, float (numbers, integral ones too: ``7`` reads as ``7.0``), bool,
date/datetime (cells with a date format), time/timedelta for time formats; empty cells are None.

``write()`` rewrites only the target cells inside the worksheet XML; every other zip member is
copied as raw bytes, and the file is replaced atomically only if it still is the version read.
See docs/xlsx-backend.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import tempfile
import zipfile
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

from python_calamine import CalamineWorkbook, WorksheetNotFound

from sheets.backends.xlsx_files import check_workbook_bytes
from sheets.backends.xlsx_limits import (
    WorkbookTooLarge,
    XlsxLimits,
    check_file_size,
    check_package,
    inflate,
    scan_shared_strings,
    scan_tab,
)
from sheets.backends.xlsx_package import SheetParts, resolve_parts, rewrite
from sheets.backends.xlsx_scan import SEGMENT, fast_shared_strings, fast_tab
from sheets.backends.xlsx_sheet import Encoded, encode_value, patch_sheet
from sheets.backends.xlsx_styles import StyleBook
from sheets.grid import CellValue, CellWrite, SheetChangedError, SheetSnapshot

_CALC_CELL = re.compile(rb"""<(?:[\w.-]+:)?c\b([^>]*?)/>""")
_CALC_REF = re.compile(rb"""\br\s*=\s*["']([A-Z]+\d+)["']""")
_CALC_SHEET = re.compile(rb"""\si\s*=\s*["'](\d+)["']""")


def _fingerprint(data: bytes, st: os.stat_result) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}:{st.st_size}:{st.st_mtime_ns}"


def _load(path: Path, limits: XlsxLimits) -> tuple[bytes, str]:
    """The file's bytes and their fingerprint, consistent even if a save lands mid-read."""
    for _ in range(5):
        with open(path, "rb") as fh:
            before = os.fstat(fh.fileno())
            check_file_size(before.st_size, str(path), limits)
            data = fh.read()
            after = os.fstat(fh.fileno())
        same = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
        if same and len(data) == after.st_size:
            return data, _fingerprint(data, after)
    raise SheetChangedError(f"{path} kept changing while being read")


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """An exclusive flock on the directory: serialises check-and-replace among our writers."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _drop_calc_entries(xml: bytes, sheet_id: int, refs: set[str]) -> bytes:
    """Remove calcChain entries of cells that no longer hold formulas.

    An entry without ``i`` inherits the previous entry's sheet, so a kept entry that follows a
    removed one gets its ``i`` spelled out.
    """
    out, cursor, current, last_kept = [], 0, None, None
    for m in _CALC_CELL.finditer(xml):
        sheet = _CALC_SHEET.search(m.group(1))
        current = int(sheet.group(1)) if sheet else current
        ref = _CALC_REF.search(m.group(1))
        out.append(xml[cursor : m.start()])
        cursor = m.end()
        if current == sheet_id and ref is not None and ref.group(1).decode() in refs:
            continue
        tag = m.group(0)
        if sheet is None and current != last_kept and current is not None:
            tag = tag[:-2] + b' i="%d"/>' % current
        out.append(tag)
        last_kept = current
    out.append(xml[cursor:])
    return b"".join(out)


def check_read(data: bytes, tab: str, limits: XlsxLimits, segment_bytes: int = SEGMENT) -> None:
    """Raise WorkbookTooLarge unless reading ``tab`` of the package ``data`` fits ``limits``.

    Central directory first (nothing inflated), then the parts calamine reads are streamed in
    bounded chunks: sharedStrings and the worksheet through the fast scan (upper bounds, see
    ``xlsx_scan``), or through expat when a bound does not fit or the XML is unusual (expat
    then decides and words any refusal); the others are drained to prove they inflate to no
    more than they declare. Other worksheets are not opened.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        check_package(zf, limits)
        parts = resolve_parts(zf, tab)
        folder = parts.sheet.rpartition("/")[0] + "/"
        for info in zf.infolist():
            name = info.filename
            other_sheet = name.startswith(folder) and name.count("/") == folder.count("/")
            scanned = name in (parts.sheet, parts.shared_strings)
            if name.endswith((".xml", ".rels")) and not other_sheet and not scanned:
                for _ in inflate(data, info):
                    pass
        sheet, sst = zf.getinfo(parts.sheet), parts.shared_strings

        def sheet_xml() -> Iterator[bytes]:
            return inflate(data, sheet)

        def sst_xml() -> Iterator[bytes]:
            return inflate(data, zf.getinfo(sst))  # type: ignore[arg-type]

        shared = fast_shared_strings(sst_xml, limits, segment_bytes) if sst else array("q")
        fast = shared is not None and fast_tab(sheet_xml, shared, limits, len(data), segment_bytes)
        if fast:
            return
        exact = scan_shared_strings(sst_xml(), sst, limits) if sst else array("q")
        scan_tab(sheet_xml(), exact, parts.sheet, limits, len(data))


def patch_package(data: bytes, tab: str, cells: dict[tuple[int, int], CellValue]) -> bytes:
    """The package ``data`` with ``{(row, col): value}`` written into ``tab``."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        parts: SheetParts = resolve_parts(zf, tab)
        encoded: dict[tuple[int, int], Encoded] = {
            rc: encode_value(value, parts.date1904) for rc, value in cells.items()
        }
        sheet_xml = zf.read(parts.sheet)
        styles = StyleBook(zf.read(parts.styles)) if parts.styles else None
        calc_chain = zf.read(parts.calc_chain) if parts.calc_chain else None

    def date_style(index: int | None, kind: str) -> int:
        if styles is None:
            raise ValueError("the workbook has no styles part to give a date its format")
        return styles.date_style(index, kind)

    result = patch_sheet(sheet_xml, encoded, date_style)
    replacements = {parts.sheet: result.xml}
    if styles is not None and (styles_xml := styles.xml()) is not None:
        replacements[parts.styles] = styles_xml  # type: ignore[index]
    if calc_chain is not None and result.overwritten_formulas:
        chain = _drop_calc_entries(calc_chain, parts.sheet_id, set(result.overwritten_formulas))
        if _CALC_CELL.search(chain) is None:
            raise ValueError("overwriting the workbook's last formulas would empty calcChain.xml")
        replacements[parts.calc_chain] = chain  # type: ignore[index]
    return rewrite(data, replacements)


class XlsxBackend:
    """One tab of an .xlsx workbook on the local filesystem."""

    def __init__(self, path: Path | str, tab: str, *, limits: XlsxLimits | None = None) -> None:
        self.path = Path(path)
        self.tab = tab
        self.limits = limits or XlsxLimits()

    def read(self) -> SheetSnapshot:
        """All cells from A1; WorkbookTooLarge (a ValueError) if the read breaks a limit."""
        data, fingerprint = _load(self.path, self.limits)
        check_workbook_bytes(self.path, data)  # NotAWorkbook: one line saying what it is
        check_read(data, self.tab, self.limits)
        try:
            book = CalamineWorkbook.from_filelike(io.BytesIO(data))
            sheet = book.get_sheet_by_name(self.tab)
        except WorksheetNotFound as exc:
            raise KeyError(f"no worksheet named {self.tab!r} in {self.path}") from exc
        del data  # calamine holds its own copy
        # iter_rows, not to_python: one Python copy of the cells instead of two
        # (it pads rows from row 1 but starts columns at the range's first one)
        rows: list[list[CellValue]] = [
            [None if v == "" else v for v in row] for row in sheet.iter_rows()
        ]
        lead: list[CellValue] = [None] * (sheet.start[1] if sheet.start else 0)
        if lead:
            for row in rows:
                row[:0] = lead
        return SheetSnapshot(rows, fingerprint, {"path": str(self.path), "tab": self.tab})

    def write(self, writes: Sequence[CellWrite], expected: SheetSnapshot) -> None:
        """Set the cells, or raise SheetChangedError (file untouched) if it changed since read."""
        if not writes:
            return
        cells: dict[tuple[int, int], CellValue] = {}
        for w in writes:
            if w.row < 1 or w.col < 1 or w.row > 1_048_576 or w.col > 16_384:
                raise ValueError(f"cell ({w.row}, {w.col}) is outside a worksheet")
            where = f"{self.tab} cell ({w.row}, {w.col})"
            if w.row > self.limits.max_rows:
                raise WorkbookTooLarge("max_rows", where, w.row, self.limits.max_rows)
            if w.col > self.limits.max_columns:
                raise WorkbookTooLarge("max_columns", where, w.col, self.limits.max_columns)
            cells[w.row, w.col] = w.value
        target = Path(os.path.realpath(self.path))
        data, fingerprint = _load(target, self.limits)
        if expected.fingerprint is None or fingerprint != expected.fingerprint:
            raise SheetChangedError(f"{target} changed since it was read")
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            check_package(zf, self.limits)  # before inflating anything
        new = patch_package(data, self.tab, cells)
        fd, tmp = tempfile.mkstemp(prefix=".~" + target.name, suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(new)
                fh.flush()
                os.fchmod(fh.fileno(), os.stat(target).st_mode & 0o7777)
                os.fsync(fh.fileno())
            with _directory_lock(target.parent):
                if _load(target, self.limits)[1] != expected.fingerprint:
                    raise SheetChangedError(f"{target} was saved by someone else meanwhile")
                os.replace(tmp, target)
                dir_fd = os.open(target.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
