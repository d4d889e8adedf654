"""Workbooks as each xlwings client posts them, and applying the server's answer like they do.

The shapes follow xlwings 0.37's own clients (the package's ``addin/Remote.bas`` with its
VBA-JSON ``WebHelpers.bas``, ``js/xlwings.ts`` for Office Scripts, ``js/xlwings.js`` for Apps
Script, and the xlwings Server Office.js client) and its test fixtures:

- ``client`` and ``version`` fields; ``book`` with name, active sheet index and selection;
  ``names``; each sheet's ``name``, ``values`` (from A1), ``pictures`` and ``tables``;
- empty cells: VBA sends ``null`` (VBA-JSON's Empty), the JavaScript clients ``""``;
- dates: ISO text with milliseconds and ``Z`` (``2026-01-05T00:00:00.000Z``): VBA-JSON's
  ``ConvertToIso`` and JavaScript's ``toISOString()`` of a date-formatted cell;
- numbers: JSON numbers as JavaScript and VBA-JSON print them (a whole double as ``5``, a
  fraction as ``5.5``), so money arrives as floats;
- sheets the client was told to leave out (``include``): ``[[]]`` (VBA, Office.js, Apps
  Script); Office Scripts repeats the previous sheet's values.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import xlwings

CLIENTS = {
    "vba": "VBA",
    "officescripts": "Microsoft Office Scripts",
    "officejs": "Office.js",
    "appsscript": "Google Apps Script",
}
Grid = list[list[Any]]


def _cell(kind: str, value: Any) -> Any:
    if value is None or value == "":
        return None if kind == "vba" else ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%dT00:00:00.000Z")
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)  # JSON.stringify(5) is "5"
    return value


def payload(
    kind: str,
    tabs: dict[str, Grid],
    *,
    include: str | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """The JSON body client ``kind`` posts for a workbook of ``tabs`` (name -> rows from A1)."""
    sheets = []
    previous: Any = [[]]
    for name, rows in tabs.items():
        if include is not None and name != include:
            values = previous if kind == "officescripts" else [[]]
        else:
            width = max((len(r) for r in rows), default=0)
            values = [[_cell(kind, v) for v in [*r, *[None] * (width - len(r))]] for r in rows]
        previous = values
        sheets.append({"name": name, "values": values, "pictures": [], "tables": []})
    return {
        "client": CLIENTS[kind],
        "version": version or xlwings.__version__,
        "book": {"name": "Orders tracker.xlsm", "active_sheet_index": 0, "selection": "B2"},
        "names": [],
        "sheets": sheets,
    }


def body(kind: str, tabs: dict[str, Grid], **options: Any) -> str:
    """:func:`payload` as the JSON text on the wire."""
    return json.dumps(payload(kind, tabs, **options))


def touched(answer: dict[str, Any]) -> set[tuple[int, int]]:
    """1-based (row, column) of every cell the answer's actions write."""
    cells = set()
    for action in answer["actions"]:
        assert action["func"] == "setValues", action
        for r, row in enumerate(action["values"]):
            for c, _ in enumerate(row):
                cells.add((action["start_row"] + r + 1, action["start_column"] + c + 1))
    return cells


def apply(answer: dict[str, Any], grid: Grid, sheet_position: int = 0) -> Grid:
    """``grid`` after the answer's ``setValues`` actions, as a client applies them."""
    out = [list(row) for row in grid]
    for action in answer["actions"]:
        assert action["sheet_position"] == sheet_position
        for r, row in enumerate(action["values"]):
            for c, value in enumerate(row):
                rr, cc = action["start_row"] + r, action["start_column"] + c
                while len(out) <= rr:
                    out.append([])
                while len(out[rr]) <= cc:
                    out[rr].append(None)
                out[rr][cc] = None if value == "" else value
    return out
