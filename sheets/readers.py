"""Reading the rows of a team's file for an import: workbooks and CSV, streamed row by row.

``.xlsx .xlsm .xls .xlsb .ods`` are read with python-calamine (one sheet at a time, rows
iterated as calamine yields them); ``.csv`` is decoded with the encoding charset-normalizer
detects on its first bytes (a UTF-8 or UTF-16 byte-order mark wins) and split with the
delimiter ``csv.Sniffer`` finds among ``, ; TAB |``. Values are what the reader gives: calamine
returns str, float, bool, date/datetime; CSV returns str. Blank cells are ``None`` (or ``""``).

A pure library: nothing here knows the portal.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
SUPPORTED_SUFFIXES = (*WORKBOOK_SUFFIXES, ".csv")
SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class ReadError(Exception):
    """The file cannot be read as a table; the message says why in the user's terms."""


@dataclass
class Table:
    """One sheet of a file: its header row (1-based), headers and the rows below it.

    ``rows`` yields ``(row_number, values)`` with the sheet's own 1-based row numbers, skipping
    blank rows; it can be iterated once.
    """

    name: str
    sheet: str
    header_row: int
    headers: list[str]
    rows: Iterator[tuple[int, list[Any]]] = field(repr=False)


def check_suffix(path: Path) -> str:
    """The file's suffix (lower case), or :class:`ReadError` naming the supported ones (or
    saying the file is not there)."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ReadError(
            f"{path.name}: cannot read {suffix or 'files without a suffix'}; "
            f"supported: {' '.join(SUPPORTED_SUFFIXES)}"
        )
    if not path.is_file():
        raise ReadError(f"{path.name}: no such file")
    return suffix


def sheet_names(path: Path) -> list[str]:
    """The sheets of a workbook (a CSV file has one, named after the file)."""
    if check_suffix(path) == ".csv":
        return [path.stem]
    return list(_workbook(path).sheet_names)


def _workbook(path: Path) -> Any:
    from python_calamine import CalamineWorkbook

    try:
        return CalamineWorkbook.from_path(str(path))
    except FileNotFoundError:
        raise ReadError(f"{path.name}: no such file") from None
    except Exception as error:  # calamine's own errors name the format problem
        raise ReadError(f"{path.name}: not a readable workbook ({error})") from None


def iter_rows(path: Path, sheet: str | None = None) -> Iterator[list[Any]]:
    """Every row of ``sheet`` (default: the first), blank rows included, as lists."""
    if check_suffix(path) == ".csv":
        yield from _csv_rows(path)
        return
    book = _workbook(path)
    names = list(book.sheet_names)
    if sheet is None:
        if not names:
            raise ReadError(f"{path.name}: the workbook has no sheets")
        sheet = names[0]
    if sheet not in names:
        raise ReadError(f"{path.name}: no sheet {sheet!r}; sheets: {', '.join(names)}")
    for row in book.get_sheet_by_name(sheet).iter_rows():
        yield list(row)


def detect_encoding(sample: bytes) -> str:
    """The text encoding of ``sample``: a byte-order mark, else charset-normalizer's guess."""
    for bom, name in BOMS:
        if sample.startswith(bom):
            return name
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as error:
        if error.start >= len(sample) - 3:  # a character cut at the sample's end
            return "utf-8"
    return _guess(sample)


WESTERN = ("cp1252", "latin_1", "iso8859_15")


def _guess(data: bytes) -> str:
    """charset-normalizer's guess for bytes that are not UTF-8. A few accented letters in
    much plain text fit many code pages equally well: of those that fit best, a Western
    European one (the usual spreadsheet export) wins; nothing fits: Latin-1."""
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        return "latin-1"
    fitting = [match for match in matches if match.chaos <= best.chaos + 0.01]
    for name in WESTERN:  # the same text as a fitting code page gives: that one is as good
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        if any(match.encoding == name or str(match) == text for match in fitting):
            return name
    return best.encoding


def file_encoding(handle: Any) -> str:
    """The encoding of an open binary file: :func:`detect_encoding` of its first bytes; when
    those are plain ASCII, the rest is checked as UTF-8 block by block, and the first block
    that is not UTF-8 decides (an export whose first accented name comes late)."""
    sample = handle.read(SNIFF_BYTES)
    encoding = detect_encoding(sample)
    if encoding == "utf-8" and sample.isascii():
        decoder = codecs.getincrementaldecoder("utf-8")()
        for block in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                encoding = _guess(block[max(0, error.start - 4096) : error.start + 4096])
                break
    handle.seek(0)
    return encoding


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV text sample (``,`` when the sample does not tell)."""
    try:
        return csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {delimiter: text.count(delimiter) for delimiter in DELIMITERS}
        best = max(counts, key=counts.__getitem__)
        return best if counts[best] else ","


def _csv_rows(path: Path) -> Iterator[list[Any]]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after the generator is done
    except FileNotFoundError:
        raise ReadError(f"{path.name}: no such file") from None
    with handle:
        encoding = file_encoding(handle)
        sample = handle.read(SNIFF_BYTES)
        handle.seek(0)
        text = io.TextIOWrapper(handle, encoding=encoding, errors="strict", newline="")
        try:
            head = sample.decode(encoding, errors="ignore")
            delimiter = sniff_delimiter(head[: head.rfind("\n") + 1] or head)
            yield from csv.reader(text, delimiter=delimiter)
        except UnicodeDecodeError as error:
            raise ReadError(f"{path.name}: not valid {encoding} text ({error.reason})") from None
        except csv.Error as error:
            raise ReadError(f"{path.name}: not a CSV file ({error})") from None


def is_blank(row: list[Any]) -> bool:
    return all(value is None or (isinstance(value, str) and not value.strip()) for value in row)


def header_text(value: Any) -> str:
    """A header cell as text (a number header such as ``2024.0`` as ``2024``)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_table(path: Path, sheet: str | None = None, header_row: int | None = None) -> Table:
    """``sheet`` of ``path`` with its header at ``header_row`` (1-based; default: the first
    non-blank row). The rows below the header are streamed as the table is iterated."""
    if sheet is None:
        sheet = sheet_names(path)[0] if path.suffix.lower() != ".csv" else None
    rows = iter_rows(path, sheet)
    number = 0
    headers: list[str] | None = None
    for values in rows:
        number += 1
        if header_row is not None and number < header_row:
            continue
        if header_row is None and is_blank(values):
            continue
        headers = [header_text(value) for value in values]
        break
    if headers is None or not any(headers):
        where = f"row {header_row}" if header_row else "any row"
        raise ReadError(f"{path.name}: no header in {where}")

    def body(start: int) -> Iterator[tuple[int, list[Any]]]:
        current = start
        for values in rows:
            current += 1
            if not is_blank(values):
                yield current, values

    return Table(path.name, sheet or path.stem, number, headers, body(number))


def join_sheets(path: Path, header_sheet: str, detail_sheet: str, key: str) -> Table:
    """A detail sheet (one row per line) with the columns of its header sheet's row (one row
    per order) added to each line, joined on the column ``key`` both sheets have.

    A line whose key has no header row keeps blank header columns. Row numbers are the detail
    sheet's.
    """
    heads = read_table(path, header_sheet)
    details = read_table(path, detail_sheet)
    if key not in heads.headers or key not in details.headers:
        raise ReadError(f"{path.name}: both {header_sheet!r} and {detail_sheet!r} need {key!r}")
    head_key = heads.headers.index(key)
    by_key = {header_text(cells[head_key]): cells for _, cells in heads.rows}
    detail_key = details.headers.index(key)
    extra = [index for index, name in enumerate(heads.headers) if name != key]
    blank = [None] * len(heads.headers)

    def body() -> Iterator[tuple[int, list[Any]]]:
        for number, cells in details.rows:
            cells = list(cells) + [None] * (len(details.headers) - len(cells))
            head = by_key.get(header_text(cells[detail_key]), blank)
            head = list(head) + [None] * (len(heads.headers) - len(head))
            yield number, cells + [head[index] for index in extra]

    headers = details.headers + [
        name if name not in details.headers else f"{header_sheet} {name}"
        for name in (heads.headers[index] for index in extra)
    ]
    return Table(path.name, detail_sheet, details.header_row, headers, body())


def first_rows(path: Path, sheet: str | None = None, count: int = 20) -> list[list[Any]]:
    """The first ``count`` rows of a sheet (to find its header row)."""
    rows = []
    for values in iter_rows(path, sheet):
        rows.append(values)
        if len(rows) >= count:
            break
    return rows


def peek(table: Table, count: int = 20) -> list[list[Any]]:
    """The first ``count`` rows below the header, leaving them in ``table.rows``."""
    taken = [next(table.rows, None) for _ in range(count)]
    sample = [item for item in taken if item is not None]
    table.rows = itertools.chain(sample, table.rows)
    return [values for _, values in sample]
