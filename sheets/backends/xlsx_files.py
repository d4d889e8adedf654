"""What a file is, by its bytes: refuse anything that is not an .xlsx/.xlsm package in one line.

A tracker's file is identified by its magic bytes, not only its name: an OLE2 compound file
(``D0 CF 11 E0``: an Excel 97-2003 .xls, or a password-protected workbook), a zip (an .xlsx /
.xlsm, or an .xlsb, .ods or .numbers package), text (CSV) or something else. Anything but a
readable .xlsx/.xlsm package raises :class:`NotAWorkbook`, whose message names the file, says
what it is and how to proceed; callers show it as is (never a traceback).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_SAVE_AS = "open it in Excel (or LibreOffice) and save it as an Excel Workbook (.xlsx)"
_IMPORT = "or import its rows into the portal instead"

# Formats recognised by their name alone (the file may not exist yet).
_BY_SUFFIX = {
    ".xls": "an Excel 97-2003 workbook (.xls)",
    ".xlsb": "an Excel binary workbook (.xlsb)",
    ".csv": "a CSV text file (.csv)",
    ".tsv": "a tab-separated text file (.tsv)",
    ".txt": "a text file (.txt)",
    ".ods": "an OpenDocument spreadsheet (.ods)",
    ".numbers": "an Apple Numbers document (.numbers)",
}
XLSX_SUFFIXES = (".xlsx", ".xlsm")


class NotAWorkbook(ValueError):
    """The file is not an .xlsx/.xlsm workbook; the message is one line, with the advice."""


def _advice(path: Path, what: str) -> str:
    return f"{path} is {what}; {_SAVE_AS}, {_IMPORT}"


def suffix_problem(path: Path | str) -> str | None:
    """Why a tracker cannot use ``path``, judged by its name; None for .xlsx/.xlsm."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        return None
    what = _BY_SUFFIX.get(suffix)
    if what is not None:
        return _advice(path, what)
    return f"{path} must be an .xlsx or .xlsm file (an Excel Workbook)"


def _zip_problem(path: Path, source: io.BytesIO | Path) -> str | None:
    """Reads the central directory only (no member is inflated but a small ``mimetype``)."""
    try:
        with zipfile.ZipFile(source) as zf:
            names = {name.lower() for name in zf.namelist()}
            mimetype = zf.read("mimetype")[:80] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"{path} is a damaged or truncated zip file, not a readable workbook ({exc})"
    if b"opendocument.spreadsheet" in mimetype:
        return _advice(path, "an OpenDocument spreadsheet (.ods)")
    if "xl/workbook.bin" in names:
        return _advice(path, "an Excel binary workbook (.xlsb)")
    if any(n.startswith("index/") or n.endswith(".iwa") for n in names):
        return _advice(path, "an Apple Numbers document")
    if "[content_types].xml" not in names or not any(n.startswith("xl/") for n in names):
        return f"{path} is a zip file but not an Excel workbook (no xl/ workbook part inside)"
    return None


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return head.startswith((b"\xff\xfe", b"\xfe\xff"))  # UTF-16 text (Excel's "Unicode")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a cut multi-byte character at the end is fine
        return exc.start >= len(head) - 3
    return True


def content_problem(path: Path | str, data: bytes, *, whole: Path | None = None) -> str | None:
    """Why the bytes ``data`` of ``path`` are not an .xlsx/.xlsm workbook; None if they are.

    With ``whole``, ``data`` is only the file's start and the zip is read from that file.
    """
    path = Path(path)
    if not data:
        return f"{path} is empty (0 bytes), not a workbook"
    if data.startswith(OLE2):
        if path.suffix.lower() not in XLSX_SUFFIXES:
            return _advice(path, "an Excel 97-2003 workbook (.xls)")
        return (
            f"{path} is an Excel 97-2003 (.xls) or a password-protected workbook under an "
            f"{path.suffix} name, not an .xlsx package; remove any password, {_SAVE_AS}, {_IMPORT}"
        )
    if data.startswith(_ZIP):
        return _zip_problem(path, whole if whole is not None else io.BytesIO(data))
    head = data[:4096]
    if _looks_like_text(head):
        lower = head.lstrip().lower()
        if lower.startswith((b"<html", b"<!doctype html", b"<?xml")):
            return _advice(path, "an HTML/XML text file (not an .xlsx package)")
        return _advice(path, "a text (CSV?) file, not an .xlsx package")
    return f"{path} is not an Excel workbook (unrecognised content: {data[:4].hex(' ')} …)"


def check_workbook_bytes(path: Path | str, data: bytes) -> None:
    """Raise NotAWorkbook unless ``data`` (the bytes of ``path``) is an .xlsx/.xlsm package."""
    problem = content_problem(path, data)
    if problem is not None:
        raise NotAWorkbook(problem)


def file_problem(path: Path | str) -> str | None:
    """Why the existing file ``path`` is not an .xlsx/.xlsm workbook (its head and its zip
    directory are read, not the whole file); None if it is one."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror or exc}"
    return content_problem(path, head, whole=path)


def check_workbook_file(path: Path | str) -> None:
    """Raise NotAWorkbook unless the existing file ``path`` is an .xlsx/.xlsm package."""
    problem = file_problem(path)
    if problem is not None:
        raise NotAWorkbook(problem)
