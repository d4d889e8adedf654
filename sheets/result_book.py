"""The result workbook of an import: every input row as it was, with its outcome and reason.

Made to be fixed and imported again: the input columns come first, unchanged, and the
``Outcome`` and ``Reason`` columns last (an import ignores columns its mapping does not name).
Written with openpyxl's write-only mode, so a large file streams to disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

OUTCOME_HEADERS = ("Outcome", "Reason")


def _cell(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    if isinstance(value, str | int | float | bool | date) or value is None:
        return value
    return str(value)


def write_result(
    target: Path,
    headers: Sequence[str],
    rows: Iterable[tuple[int, Sequence[Any]]],
    outcomes: Mapping[int, tuple[str, str]],
    sheet: str = "Result",
) -> int:
    """Write ``rows`` (sheet row number, cells) with their outcomes to ``target``; returns
    the number of rows written."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    out = book.create_sheet(sheet[:31] or "Result")
    out.append([*headers, *OUTCOME_HEADERS])
    written = 0
    width = len(headers)
    for number, cells in rows:
        padded = [_cell(value) for value in cells][:width]
        padded += [None] * (width - len(padded))
        outcome, reason = outcomes.get(number, ("", ""))
        out.append([*padded, outcome, reason])
        written += 1
    book.save(target)
    return written
