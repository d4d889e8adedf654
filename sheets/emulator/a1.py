"""A1 notation: parsing ranges the way the Sheets API accepts them, and formatting the echo."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CELL_PART = re.compile(r"^([A-Za-z]*)([0-9]*)$")
_SIMPLE_TITLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOOKS_LIKE_REF = re.compile(r"^([A-Za-z]{1,3}[0-9]+|[Rr][0-9]+[Cc][0-9]+|[A-Za-z]{1,3})$")


@dataclass(frozen=True)
class Bounds:
    """Zero-based half-open cell bounds; ``None`` ends mean "to the edge of the grid"."""

    row0: int
    col0: int
    row1: int | None
    col1: int | None
    single: bool = False  # written as one cell ("B2"), echoed as one cell


def col_to_index(letters: str) -> int:
    """``"A"`` -> 0, ``"AA"`` -> 26."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def index_to_col(index: int) -> str:
    """0 -> ``"A"``, 26 -> ``"AA"``."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def cell_name(row: int, col: int) -> str:
    """Zero-based (row, col) -> ``"B3"``."""
    return f"{index_to_col(col)}{row + 1}"


def quote_title(title: str) -> str:
    """Sheet title as Google echoes it: bare when simple, else single-quoted."""
    if _SIMPLE_TITLE.match(title) and not _LOOKS_LIKE_REF.match(title):
        return title
    return "'" + title.replace("'", "''") + "'"


def split_sheet(text: str) -> tuple[str | None, str]:
    """Split ``'My Sheet'!A1:B2`` into (title, cells); title is None without a ``!``."""
    if text.startswith("'"):
        i, title = 1, []
        while i < len(text):
            ch = text[i]
            if ch == "'":
                if text[i + 1 : i + 2] == "'":
                    title.append("'")
                    i += 2
                    continue
                rest = text[i + 1 :]
                if rest == "":
                    return "".join(title), ""
                if rest.startswith("!"):
                    return "".join(title), rest[1:]
                raise ValueError(text)
            title.append(ch)
            i += 1
        raise ValueError(text)
    if "!" in text:
        title, _, cells = text.rpartition("!")
        return title, cells
    return None, text


def _part(text: str) -> tuple[int | None, int | None]:
    m = _CELL_PART.match(text)
    if not m or not (m.group(1) or m.group(2)):
        raise ValueError(text)
    col = col_to_index(m.group(1)) if m.group(1) else None
    row = int(m.group(2)) - 1 if m.group(2) else None
    if (row is not None and row < 0) or (col is not None and col > 18277):
        raise ValueError(text)
    return row, col


def parse_cells(text: str) -> Bounds:
    """Parse the cell part of a range (``A1``, ``A1:B2``, ``A:C``, ``2:5``, ``A2:2``)."""
    if ":" not in text:
        row, col = _part(text)
        if row is None or col is None:
            raise ValueError(text)
        return Bounds(row, col, row + 1, col + 1, single=True)
    left, right = text.split(":", 1)
    r0, c0 = _part(left)
    r1, c1 = _part(right)
    # accepted: A1:B2, A:B (columns), 1:2 (rows), A1:2 (to the end of row 2), A5:B (to the last row)
    if (r0 is None and r1 is not None and c1 is None) or (r0 is None and c0 is None and r1 is None):
        raise ValueError(text)
    row0 = r0 if r0 is not None else 0
    col0 = c0 if c0 is not None else 0
    row1 = r1 + 1 if r1 is not None else None
    col1 = c1 + 1 if c1 is not None else None
    if row1 is not None and row1 <= row0:
        row0, row1 = row1 - 1, row0 + 1
    if col1 is not None and col1 <= col0:
        col0, col1 = col1 - 1, col0 + 1
    return Bounds(row0, col0, row1, col1)


def looks_like_cells(text: str) -> bool:
    """True when ``text`` parses as a cell range rather than a sheet or named range."""
    try:
        parse_cells(text)
    except ValueError:
        return False
    return True


def format_range(title: str, row0: int, col0: int, row1: int, col1: int) -> str:
    """Echo form: ``Sheet1!A1:B2``, or ``Sheet1!A1`` for a single cell."""
    start = cell_name(row0, col0)
    if row1 - row0 == 1 and col1 - col0 == 1:
        return f"{quote_title(title)}!{start}"
    return f"{quote_title(title)}!{start}:{cell_name(row1 - 1, col1 - 1)}"


def format_requested(title: str, bounds: Bounds) -> str:
    """A range as the client wrote it, for error messages (``'Sheet1'!A1:AB3``)."""
    quoted = "'" + title.replace("'", "''") + "'"
    start = cell_name(bounds.row0, bounds.col0)
    if bounds.single:
        return f"{quoted}!{start}"
    end_col = index_to_col(bounds.col1 - 1) if bounds.col1 is not None else ""
    end_row = str(bounds.row1) if bounds.row1 is not None else ""
    return f"{quoted}!{start}:{end_col}{end_row}"
