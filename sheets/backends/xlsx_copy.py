"""Copies of a tracker workbook: the fingerprint a downloaded copy came from, and putting an
edited copy in place of the file, atomically and only if the file did not change meanwhile."""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from pathlib import Path

from python_calamine import CalamineWorkbook

from sheets.backends.xlsx import XlsxBackend, _load
from sheets.backends.xlsx_files import NotAWorkbook, check_workbook_bytes
from sheets.backends.xlsx_init import _replace_file
from sheets.backends.xlsx_limits import XlsxLimits, check_file_size, check_package
from sheets.grid import CellValue


def fingerprint(path: Path | str, limits: XlsxLimits | None = None) -> str:
    """The fingerprint of the workbook as it is now (what a sync's snapshot records)."""
    return _load(Path(path), limits or XlsxLimits())[1]


def read_copy(path: Path | str, limits: XlsxLimits | None = None) -> tuple[bytes, str]:
    """The workbook's bytes (a copy to hand out) and their fingerprint, read consistently."""
    return _load(Path(path), limits or XlsxLimits())


def has_content(data: bytes, fingerprint: str) -> bool:
    """Whether ``data`` are the bytes the workbook had when it had ``fingerprint``."""
    return fingerprint.startswith(f"sha256:{hashlib.sha256(data).hexdigest()}:")


def tab_rows(data: bytes, tab: str, limits: XlsxLimits | None = None) -> list[list[CellValue]]:
    """The rows of ``tab`` in the workbook ``data``, read as a sync reads them."""
    with tempfile.TemporaryDirectory(prefix="ob-copy-") as tmp:
        path = Path(tmp) / "copy.xlsx"
        path.write_bytes(data)
        return [list(r) for r in XlsxBackend(path, tab, limits=limits).read().rows]


def replace_with_copy(
    path: Path | str,
    tab: str,
    data: bytes,
    expected: str,
    limits: XlsxLimits | None = None,
) -> None:
    """Put ``data`` (an edited copy) in place of ``path`` if the file still has the fingerprint
    ``expected``; ``SheetChangedError`` if not, ``NotAWorkbook`` if ``data`` is not an .xlsx
    package or lacks the tab ``tab``, ``WorkbookTooLarge`` past the limits."""
    limits = limits or XlsxLimits()
    target = Path(path)
    check_file_size(len(data), "the uploaded copy", limits)
    check_workbook_bytes(target.name, data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        check_package(zf, limits)  # sizes and ratios before anything is inflated
    try:
        names = CalamineWorkbook.from_filelike(io.BytesIO(data)).sheet_names
    except Exception as exc:  # calamine raises its own errors for damaged packages
        raise NotAWorkbook(f"the uploaded copy cannot be read as a workbook: {exc}") from None
    if tab not in names:
        raise NotAWorkbook(
            f"the uploaded copy has no tab {tab!r} (it has {', '.join(map(repr, names))}); "
            "upload the tracker's workbook"
        )
    _replace_file(target, data, expected, limits)
