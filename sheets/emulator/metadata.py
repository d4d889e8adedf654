"""``spreadsheets.get``: properties and grid data, cut down by a ``fields`` mask."""

from __future__ import annotations

import copy
import math
import struct
from typing import Any

from .store import Sheet, Spreadsheet, clip, resolve
from .values import Cell, render

# --- metadata ------------------------------------------------------------------------------


def _channel(value: float) -> float | int:
    """A colour channel as Google stores it: 8-bit, then the shortest float32 text."""
    x = math.floor(float(value) * 255 + 1e-6) / 255
    f32 = struct.unpack("f", struct.pack("f", x))[0]
    for digits in range(1, 10):
        short = float(f"{x:.{digits}g}")
        if struct.unpack("f", struct.pack("f", short))[0] == f32:
            return int(short) if short.is_integer() else short
    return x


def quantize_colors(obj: dict[str, Any]) -> None:
    """Colours in sheet properties the way Google echoes them (zero channels omitted)."""
    for key in list(obj):
        value = obj[key]
        if key in ("rgbColor", "tabColor"):
            if not value:
                del obj[key]
                continue
            quantized = {k: _channel(v) for k, v in value.items() if v is not None}
            obj[key] = {k: v for k, v in quantized.items() if v != 0}
        elif isinstance(value, dict):
            quantize_colors(value)
            if key.endswith("Style") and not value:
                del obj[key]


def sheet_props(sheet: Sheet) -> dict[str, Any]:
    """Sheet properties as Google returns them (false/zero defaults omitted)."""
    props = copy.deepcopy(sheet.props)
    grid = props["gridProperties"]
    for key in list(grid):
        if key not in ("rowCount", "columnCount") and not grid[key]:
            del grid[key]
    if not props.get("hidden"):
        props.pop("hidden", None)
    return props


def parse_fields(text: str) -> dict[str, Any]:
    """A fields mask (``sheets(properties(title,sheetId)),namedRanges``, ``a.b/c``) as a tree."""
    pos = 0

    def parse_list() -> dict[str, Any]:
        nonlocal pos
        tree: dict[str, Any] = {}
        while pos < len(text):
            start = pos
            while pos < len(text) and text[pos] not in ",()":
                pos += 1
            path = [p for p in text[start:pos].strip().replace("/", ".").split(".") if p]
            sub: dict[str, Any] = {}
            if pos < len(text) and text[pos] == "(":
                pos += 1
                sub = parse_list()
                pos += 1  # ")"
            node = tree
            for key in path[:-1]:
                node = node.setdefault(key, {})
            if path:
                existing = node.get(path[-1])
                node[path[-1]] = _merge_trees(existing, sub) if existing is not None else sub
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            break
        return tree

    return parse_list()


def _merge_trees(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if not a or not b:
        return {}
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge_trees(out[k], v) if k in out else v
    return out


def apply_fields(obj: Any, tree: dict[str, Any]) -> Any:
    """Keep only the masked fields of obj (lists are masked element by element)."""
    if not tree or "*" in tree:
        return obj
    if isinstance(obj, list):
        return [apply_fields(x, tree) for x in obj]
    if isinstance(obj, dict):
        return {k: apply_fields(obj[k], sub) for k, sub in tree.items() if k in obj}
    return obj


def _grid_data(sheet: Sheet, box: tuple[int, int, int, int] | None) -> dict[str, Any]:
    row0, col0, row1, col1 = box or (0, 0, sheet.row_count, sheet.col_count)
    data: dict[str, Any] = {}
    if row0:
        data["startRow"] = row0
    if col0:
        data["startColumn"] = col0
    rows = []
    for r in range(row0, min(row1, len(sheet.rows))):
        values = []
        for c in range(col0, min(col1, len(sheet.rows[r]))):
            values.append(_cell_data(sheet.rows[r][c]))
        while values and not values[-1]:
            values.pop()
        rows.append({"values": values} if values else {})
    while rows and not rows[-1]:
        rows.pop()
    if rows:
        data["rowData"] = rows
    data["rowMetadata"] = [{"pixelSize": 21} for _ in range(row0, row1)]
    data["columnMetadata"] = [{"pixelSize": 100} for _ in range(col0, col1)]
    return data


def _typed(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int | float):
        return {"numberValue": value}
    return {"stringValue": value}


def _cell_data(cell: Cell | None) -> dict[str, Any]:
    if cell is None:
        return {}
    out: dict[str, Any] = {}
    out["userEnteredValue"] = {"formulaValue": cell.formula} if cell.formula else _typed(cell.value)
    if cell.value is not None:
        out["effectiveValue"] = _typed(cell.value)
        out["formattedValue"] = render(cell, "FORMATTED_VALUE", "FORMATTED_STRING")
    if cell.fmt:
        out["userEnteredFormat"] = {"numberFormat": {"type": cell.fmt[0], "pattern": cell.fmt[1]}}
    return out


def metadata(ss: Spreadsheet, params: dict[str, Any]) -> dict[str, Any]:
    """spreadsheets.get, honouring ranges, includeGridData and the fields mask."""
    ranges = params.get("ranges") or []
    fields = parse_fields(params.get("fields", "")) if params.get("fields") else {}
    grid_wanted = str(params.get("includeGridData", "")).lower() == "true" or (
        "data" in fields.get("sheets", {})
    )
    boxes: dict[int, list[tuple[int, int, int, int] | None]] = {}
    for text in ranges:
        sheet, bounds = resolve(ss, text)
        boxes.setdefault(sheet.id, []).append(clip(sheet, bounds))
    sheets_out = []
    for sheet in ss.sheets:
        if ranges and sheet.id not in boxes:
            continue
        entry: dict[str, Any] = {"properties": sheet_props(sheet)}
        if grid_wanted:
            entry["data"] = [_grid_data(sheet, box) for box in boxes.get(sheet.id, [None])]
        if sheet.protected:
            entry["protectedRanges"] = copy.deepcopy(sheet.protected)
        if sheet.metadata:
            entry["developerMetadata"] = copy.deepcopy(sheet.metadata)
        sheets_out.append(entry)
    out: dict[str, Any] = {
        "spreadsheetId": ss.id,
        "properties": copy.deepcopy(ss.properties),
        "sheets": sheets_out,
    }
    if ss.named_ranges:
        out["namedRanges"] = copy.deepcopy(ss.named_ranges)
    if ss.metadata:
        out["developerMetadata"] = copy.deepcopy(ss.metadata)
    out["spreadsheetUrl"] = f"https://docs.google.com/spreadsheets/d/{ss.id}/edit"
    if fields:
        out = apply_fields(out, fields)
    return out
