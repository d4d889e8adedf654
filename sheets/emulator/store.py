"""In-memory spreadsheets and the Sheets API v4 operations on them (no HTTP here)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import secrets
import string
import struct
from pathlib import Path
from typing import Any

from . import a1
from .values import Cell, parse_raw, parse_user_entered, render, sort_key

DEFAULT_PROPERTIES: dict[str, Any] = json.loads(
    (Path(__file__).with_name("spreadsheet_defaults.json")).read_text()
)
_SCALARS = (str, int, float, bool, type(None))
_ID_CHARS = string.ascii_letters + string.digits + "-_"
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class ApiError(Exception):
    """An error answered as Google's JSON: ``{"error": {"code", "message", "status"}}``."""

    def __init__(self, code: int, message: str, details: list[dict] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "status": _STATUS.get(self.code, "UNKNOWN"),
        }
        if self.details:
            error["details"] = self.details
        return {"error": error}


def new_id() -> str:
    """A 44-character spreadsheet id like Google's."""
    return "1" + "".join(secrets.choice(_ID_CHARS) for _ in range(43))


def now_iso() -> str:
    """Drive-style timestamp (``2023-07-25T15:39:37.123Z``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _random_int_id() -> int:
    return secrets.randbelow(2_000_000_000) + 1


# --- data ----------------------------------------------------------------------------------


class Sheet:
    """One tab: properties plus a ragged list of rows of cells."""

    def __init__(self, props: dict[str, Any]) -> None:
        self.props = props
        self.rows: list[list[Cell | None]] = []
        self.protected: list[dict[str, Any]] = []
        self.validations: list[dict[str, Any]] = []
        self.formats: list[dict[str, Any]] = []
        self.metadata: list[dict[str, Any]] = []

    @property
    def id(self) -> int:
        return self.props["sheetId"]

    @property
    def title(self) -> str:
        return self.props["title"]

    @property
    def row_count(self) -> int:
        return self.props["gridProperties"]["rowCount"]

    @property
    def col_count(self) -> int:
        return self.props["gridProperties"]["columnCount"]

    def get(self, row: int, col: int) -> Cell | None:
        if row < len(self.rows):
            cells = self.rows[row]
            if col < len(cells):
                return cells[col]
        return None

    def set(self, row: int, col: int, cell: Cell | None) -> None:
        rows = self.rows
        if row >= len(rows):
            if cell is None:
                return
            rows.extend([] for _ in range(row + 1 - len(rows)))
        cells = rows[row]
        if col >= len(cells):
            if cell is None:
                return
            cells.extend([None] * (col + 1 - len(cells)))
        cells[col] = cell

    def row_has_data(self, row: int, col0: int, col1: int) -> bool:
        if row >= len(self.rows):
            return False
        return any(c is not None for c in self.rows[row][col0:col1])

    def data_extent(self) -> tuple[int, int]:
        """(rows, cols) up to the last non-empty cell."""
        nrows = ncols = 0
        for r, cells in enumerate(self.rows):
            last = max((i for i, c in enumerate(cells) if c is not None), default=-1)
            if last >= 0:
                nrows = r + 1
                ncols = max(ncols, last + 1)
        return nrows, ncols

    def snapshot(self) -> Sheet:
        clone = Sheet(copy.deepcopy(self.props))
        clone.rows = [list(r) for r in self.rows]
        clone.protected = copy.deepcopy(self.protected)
        clone.validations = copy.deepcopy(self.validations)
        clone.formats = copy.deepcopy(self.formats)
        clone.metadata = copy.deepcopy(self.metadata)
        return clone


class Spreadsheet:
    """A spreadsheet file: Drive attributes, properties, sheets and sharing."""

    def __init__(self, sid: str, title: str, owner: str) -> None:
        self.id = sid
        self.properties: dict[str, Any] = {"title": title, **copy.deepcopy(DEFAULT_PROPERTIES)}
        self.sheets: list[Sheet] = []
        self.owner = owner
        self.shared: set[str] = set()
        self.named_ranges: list[dict[str, Any]] = []
        self.metadata: list[dict[str, Any]] = []
        self.created = now_iso()
        self.modified = self.created

    def touch(self) -> None:
        self.modified = now_iso()

    def can_access(self, user: str) -> bool:
        return user == self.owner or "*" in self.shared or user in self.shared

    def add_sheet(self, props: dict[str, Any] | None = None, sheet_id: int | None = None) -> Sheet:
        props = copy.deepcopy(props or {})
        titles = {s.title.lower() for s in self.sheets}
        if "title" not in props:
            n = len(self.sheets) + 1
            while f"sheet{n}" in titles:
                n += 1
            props["title"] = f"Sheet{n}"
        if sheet_id is None:
            sheet_id = props.get("sheetId")
        if sheet_id is None:
            sheet_id = 0 if not self.sheets else _random_int_id()
        grid = {"rowCount": 1000, "columnCount": 26, **props.get("gridProperties", {})}
        full = {
            "sheetId": sheet_id,
            "title": props["title"],
            "index": 0,
            "sheetType": props.get("sheetType", "GRID"),
            "gridProperties": grid,
        }
        for key in ("hidden", "tabColorStyle", "tabColor", "rightToLeft"):
            if key in props:
                full[key] = props[key]
        sheet = Sheet(full)
        index = props.get("index", len(self.sheets))
        self.sheets.insert(min(max(index, 0), len(self.sheets)), sheet)
        self.reindex()
        return sheet

    def reindex(self) -> None:
        for i, s in enumerate(self.sheets):
            s.props["index"] = i

    def sheet_by_id(self, sheet_id: int) -> Sheet | None:
        return next((s for s in self.sheets if s.id == sheet_id), None)

    def sheet_by_title(self, title: str) -> Sheet | None:
        low = title.lower()
        return next((s for s in self.sheets if s.title.lower() == low), None)

    def snapshot(self) -> Spreadsheet:
        clone = copy.copy(self)
        clone.properties = copy.deepcopy(self.properties)
        clone.sheets = [s.snapshot() for s in self.sheets]
        clone.named_ranges = copy.deepcopy(self.named_ranges)
        clone.metadata = copy.deepcopy(self.metadata)
        return clone

    def restore(self, other: Spreadsheet) -> None:
        self.__dict__.update(other.__dict__)


# --- ranges --------------------------------------------------------------------------------


def resolve(ss: Spreadsheet, text: str) -> tuple[Sheet, a1.Bounds]:
    """A range string -> (sheet, bounds); 400 "Unable to parse range" when it is not one."""
    try:
        title, cells = a1.split_sheet(text)
    except ValueError:
        raise ApiError(400, f"Unable to parse range: {text}") from None
    if title is None:
        sheet = ss.sheet_by_title(text)
        if sheet is not None:
            return sheet, a1.Bounds(0, 0, None, None)
        named = next((n for n in ss.named_ranges if n["name"].lower() == text.lower()), None)
        if named is not None:
            sheet, r0, c0, r1, c1 = grid_range(ss, named["range"])
            return sheet, a1.Bounds(r0, c0, r1, c1)
        if not a1.looks_like_cells(cells):
            raise ApiError(400, f"Unable to parse range: {text}")
        visible = [s for s in ss.sheets if not s.props.get("hidden")] or ss.sheets
        return visible[0], a1.parse_cells(cells)
    sheet = ss.sheet_by_title(title)
    if sheet is None:
        raise ApiError(400, f"Unable to parse range: {text}")
    if not cells:
        return sheet, a1.Bounds(0, 0, None, None)
    try:
        return sheet, a1.parse_cells(cells)
    except ValueError:
        raise ApiError(400, f"Unable to parse range: {text}") from None


def clip(sheet: Sheet, bounds: a1.Bounds) -> tuple[int, int, int, int]:
    """Concrete (row0, col0, row1, col1); 400 when the range exceeds the grid."""
    rows, cols = sheet.row_count, sheet.col_count
    row1 = bounds.row1 if bounds.row1 is not None else rows
    col1 = bounds.col1 if bounds.col1 is not None else cols
    if bounds.row0 >= rows or bounds.col0 >= cols or row1 > rows or col1 > cols:
        raise ApiError(
            400,
            f"Range ({a1.format_requested(sheet.title, bounds)}) exceeds grid limits. "
            f"Max rows: {rows}, max columns: {cols}",
        )
    return bounds.row0, bounds.col0, row1, col1


def grid_range(
    ss: Spreadsheet, rng: dict[str, Any], where: str = ""
) -> tuple[Sheet, int, int, int, int]:
    """A GridRange -> (sheet, row0, col0, row1, col1), open ends filled from the grid."""
    sheet = ss.sheet_by_id(rng.get("sheetId", 0))
    if sheet is None:
        raise ApiError(400, f"{where}No grid with id: {rng.get('sheetId', 0)}")
    row0 = rng.get("startRowIndex", 0)
    col0 = rng.get("startColumnIndex", 0)
    # ends beyond the grid are clamped (gspread's cached grid size can be stale)
    row1 = min(rng.get("endRowIndex", sheet.row_count), sheet.row_count)
    col1 = min(rng.get("endColumnIndex", sheet.col_count), sheet.col_count)
    if row0 < 0 or col0 < 0 or row0 > row1 or col0 > col1:
        raise ApiError(400, f"{where}Invalid GridRange: {json.dumps(rng)}")
    return sheet, row0, col0, row1, col1


def echo_grid_range(rng: dict[str, Any]) -> dict[str, Any]:
    """GridRange as Google echoes it (protobuf default sheetId 0 omitted)."""
    out = {k: v for k, v in rng.items() if v is not None}
    if out.get("sheetId") == 0:
        del out["sheetId"]
    return out


# --- values --------------------------------------------------------------------------------


def read_values(
    sheet: Sheet,
    box: tuple[int, int, int, int],
    value_render: str = "FORMATTED_VALUE",
    date_render: str = "SERIAL_NUMBER",
    major: str = "ROWS",
) -> list[list[Any]]:
    """Rendered values inside box, trailing empty cells and rows trimmed."""
    row0, col0, row1, col1 = box
    rows = sheet.rows
    out: list[list[Any]] = []
    for r in range(row0, min(row1, len(rows))):
        cells = rows[r][col0:col1]
        vals = [render(c, value_render, date_render) for c in cells]
        while vals and vals[-1] == "":
            vals.pop()
        out.append(vals)
    while out and not out[-1]:
        out.pop()
    if major == "COLUMNS" and out:
        width = max(len(r) for r in out)
        cols = []
        for c in range(width):
            col = [r[c] if c < len(r) else "" for r in out]
            while col and col[-1] == "":
                col.pop()
            cols.append(col)
        return cols
    return out


def value_range(
    sheet: Sheet, box: tuple[int, int, int, int], params: dict[str, str]
) -> dict[str, Any]:
    """A ValueRange for values.get / batchGet."""
    major = params.get("majorDimension", "ROWS")
    if major not in ("ROWS", "COLUMNS"):
        raise ApiError(400, f"Invalid value at 'major_dimension' ({major})")
    values = read_values(
        sheet,
        box,
        params.get("valueRenderOption", "FORMATTED_VALUE"),
        params.get("dateTimeRenderOption", "SERIAL_NUMBER"),
        major,
    )
    out: dict[str, Any] = {"range": a1.format_range(sheet.title, *box), "majorDimension": major}
    if values:
        out["values"] = values
    return out


def check_values(values: Any, field: str = "data.values") -> list[list[Any]]:
    """``values`` of a ValueRange must be a list of lists: Google's 400 otherwise."""

    def bad(where: str, value: Any) -> ApiError:
        msg = (
            f"Invalid value at '{where}' (type.googleapis.com/google.protobuf.ListValue), "
            f"{json.dumps(value)}"
        )
        return ApiError(
            400,
            msg,
            [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": where, "description": msg}],
                }
            ],
        )

    if values is None:
        return []
    if not isinstance(values, list):
        raise bad(field, values)
    for i, row in enumerate(values):
        if not isinstance(row, list):
            raise bad(f"{field}[{i}]", row)
    return values


def _check_protection(
    ss: Spreadsheet, sheet: Sheet, user: str, row0: int, col0: int, values: list[list[Any]]
) -> None:
    """400 when a non-editor writes a non-null value inside a (non warning-only) protected range."""
    if user == ss.owner or not sheet.protected:
        return
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if v is not None and protected_against(ss, sheet, user, row0 + i, col0 + j):
                raise ApiError(
                    400,
                    "You are trying to edit a protected cell or object. Please contact the "
                    "spreadsheet owner to remove protection if you need to edit.",
                )


def protected_against(ss: Spreadsheet, sheet: Sheet, user: str, r: int, c: int) -> bool:
    """True when user may not edit (r, c) because of a (non warning-only) protected range."""
    if user == ss.owner:
        return False
    for p in sheet.protected:
        if p.get("warningOnly"):
            continue
        rng = p["range"]
        if (
            rng.get("startRowIndex", 0) <= r < rng.get("endRowIndex", sheet.row_count)
            and rng.get("startColumnIndex", 0) <= c < rng.get("endColumnIndex", sheet.col_count)
            and user not in p.get("editors", {}).get("users", [])
        ):
            return True
    return False


def write_values(
    ss: Spreadsheet,
    sheet: Sheet,
    bounds: a1.Bounds,
    values: list[list[Any]],
    input_option: str,
    major: str,
    user: str,
    range_text: str,
    touched: set[tuple[int, str, int]] | None = None,
) -> dict[str, Any]:
    """values.update on one range: returns the UpdateValuesResponse fields.

    ``touched`` collects (sheetId, "row"/"col", index) for batchUpdate's distinct totals.
    """
    if input_option not in ("RAW", "USER_ENTERED"):
        raise ApiError(400, "Invalid valueInputOption: " + str(input_option))
    if major == "COLUMNS":
        width = max((len(r) for r in values), default=0)
        values = [[col[i] if i < len(col) else None for col in values] for i in range(width)]
    nrows = len(values)
    ncols = max((len(r) for r in values), default=0)
    row0, col0 = bounds.row0, bounds.col0
    if row0 >= sheet.row_count or col0 >= sheet.col_count:
        clip(sheet, bounds)
    if not bounds.single:
        limit_rows = bounds.row1 if bounds.row1 is not None else None
        limit_cols = bounds.col1 if bounds.col1 is not None else None
        if limit_rows is not None and row0 + nrows > limit_rows:
            raise ApiError(
                400,
                f"Requested writing within range [{range_text}], but tried writing to row "
                f"[{row0 + nrows}]",
            )
        if limit_cols is not None and col0 + ncols > limit_cols:
            raise ApiError(
                400,
                f"Requested writing within range [{range_text}], but tried writing to column "
                f"[{a1.index_to_col(col0 + ncols - 1)}]",
            )
    if nrows == 0 or ncols == 0:
        return {"spreadsheetId": ss.id}
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if not isinstance(v, _SCALARS):
                raise ApiError(400, f"Invalid values[{i}][{j}]: {json.dumps(v)}")
    _check_protection(ss, sheet, user, row0, col0, values)
    grid = sheet.props["gridProperties"]
    grid["rowCount"] = max(grid["rowCount"], row0 + nrows)
    grid["columnCount"] = max(grid["columnCount"], col0 + ncols)
    parse = parse_raw if input_option == "RAW" else parse_user_entered
    rows = sheet.rows
    if len(rows) < row0 + nrows:
        rows.extend([] for _ in range(row0 + nrows - len(rows)))
    touched_rows: set[int] = set()
    touched_cols: set[int] = set()
    full_width = 0  # rows without nulls write columns col0 .. col0 + full_width
    cells = 0
    for i, row in enumerate(values):
        if not row:
            continue
        r = row0 + i
        target = rows[r]
        end = col0 + len(row)
        if len(target) < end:
            target.extend([None] * (end - len(target)))
        if None not in row:
            target[col0:end] = [parse(v) for v in row]
            full_width = max(full_width, len(row))
            touched_rows.add(r)
            cells += len(row)
            continue
        for j, v in enumerate(row):
            if v is not None:  # null = leave the cell alone
                target[col0 + j] = parse(v)
                touched_rows.add(r)
                touched_cols.add(col0 + j)
                cells += 1
    touched_cols.update(range(col0, col0 + full_width))
    ss.touch()
    result = {
        "spreadsheetId": ss.id,
        "updatedRange": a1.format_range(sheet.title, row0, col0, row0 + nrows, col0 + ncols),
        "updatedRows": len(touched_rows),
        "updatedColumns": len(touched_cols),
        "updatedCells": cells,
    }
    if touched is not None:
        touched.update((sheet.id, "row", r) for r in touched_rows)
        touched.update((sheet.id, "col", c) for c in touched_cols)
    return result


def updated_data(
    sheet: Sheet, result: dict[str, Any], params: dict[str, str]
) -> dict[str, Any] | None:
    """The ``updatedData`` ValueRange when includeValuesInResponse=true."""
    if str(params.get("includeValuesInResponse", "")).lower() != "true":
        return None
    if "updatedRange" not in result:
        return None
    _, cells = a1.split_sheet(result["updatedRange"])
    b = a1.parse_cells(cells)
    box = (b.row0, b.col0, b.row1, b.col1)
    opts = {
        "valueRenderOption": params.get("responseValueRenderOption", "FORMATTED_VALUE"),
        "dateTimeRenderOption": params.get("responseDateTimeRenderOption", "SERIAL_NUMBER"),
    }
    return value_range(sheet, box, opts)


def _runs(sheet: Sheet, row: int) -> list[tuple[int, int]]:
    """Contiguous non-empty column runs [c0, c1) of a row."""
    out: list[tuple[int, int]] = []
    if row >= len(sheet.rows):
        return out
    start = None
    cells = sheet.rows[row]
    for c, cell in enumerate([*cells, None]):
        if cell is not None and start is None:
            start = c
        elif cell is None and start is not None:
            out.append((start, c))
            start = None
    return out


def _find_table(sheet: Sheet, box: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    """The "table" values.append extends: the block of touching non-empty cells that holds
    the last non-empty cell of box (Google's behaviour, e.g. ``x,"",y`` in row 1 -> ``C1``)."""
    row0, col0, row1, col1 = box
    seed = None
    for r in range(min(row1, len(sheet.rows)) - 1, row0 - 1, -1):
        inside = [(max(a, col0), min(b, col1)) for a, b in _runs(sheet, r) if a < col1 and b > col0]
        if inside:
            seed = (r, inside[-1])
            break
    if seed is None:
        return None
    top = bottom = seed[0]
    left, right = seed[1]
    frontier, seen = [seed], {seed}
    while frontier:
        r, (a, b) = frontier.pop()
        top, bottom = min(top, r), max(bottom, r)
        left, right = min(left, a), max(right, b)
        for nr in (r - 1, r + 1):
            if nr < 0:
                continue
            for run in _runs(sheet, nr):
                if run[0] <= b and run[1] >= a and (nr, run) not in seen:
                    seen.add((nr, run))
                    frontier.append((nr, run))
    return top, left, bottom + 1, right


def append_values(
    ss: Spreadsheet,
    range_text: str,
    body: dict[str, Any],
    params: dict[str, str],
    user: str,
) -> dict[str, Any]:
    """values.append: find the table in the range, write after its last row."""
    sheet, bounds = resolve(ss, range_text)
    row0, col0, row1, col1 = clip(sheet, bounds)
    values = check_values(body.get("values"))
    if bounds.single:
        row1, col1 = row0 + 1, col0 + 1
    table = _find_table(sheet, (row0, col0, row1, col1))
    table_range = None
    target_row, target_col = row0, col0
    if table is not None:
        top, left, bottom, right = table
        table_range = a1.format_range(sheet.title, top, left, bottom, right)
        target_row, target_col = bottom, left
    if params.get("insertDataOption") == "INSERT_ROWS" and values:
        insert_lines(sheet, "ROWS", target_row, len(values))
    major = body.get("majorDimension") or "ROWS"
    start = a1.Bounds(target_row, target_col, None, None, single=True)
    if values and target_row + len(values) > sheet.row_count:
        sheet.props["gridProperties"]["rowCount"] = target_row + len(values)
    result = write_values(
        ss, sheet, start, values, params.get("valueInputOption", ""), major, user, range_text
    )
    out: dict[str, Any] = {"spreadsheetId": ss.id}
    if table_range:
        out["tableRange"] = table_range
    data = updated_data(sheet, result, params)
    if data is not None:
        result["updatedData"] = data
    out["updates"] = result
    return out


def clear_values(ss: Spreadsheet, range_text: str) -> str:
    """values.clear on one range; returns the clearedRange echo."""
    sheet, bounds = resolve(ss, range_text)
    row0, col0, row1, col1 = clip(sheet, bounds)
    for r in range(row0, min(row1, len(sheet.rows))):
        cells = sheet.rows[r]
        for c in range(col0, min(col1, len(cells))):
            cells[c] = None
    ss.touch()
    return a1.format_range(sheet.title, row0, col0, row1, col1)


# --- structural edits ----------------------------------------------------------------------


def insert_lines(sheet: Sheet, dimension: str, start: int, count: int) -> None:
    """Insert ``count`` empty ROWS/COLUMNS before index ``start``; the grid grows."""
    grid = sheet.props["gridProperties"]
    if dimension == "ROWS":
        if start < len(sheet.rows):
            sheet.rows[start:start] = [[] for _ in range(count)]
        grid["rowCount"] += count
        _shift_ranges(sheet, "Row", start, count)
    else:
        for cells in sheet.rows:
            if start < len(cells):
                cells[start:start] = [None] * count
        grid["columnCount"] += count
        _shift_ranges(sheet, "Column", start, count)


def delete_lines(sheet: Sheet, dimension: str, start: int, end: int) -> None:
    """Delete ROWS/COLUMNS ``[start, end)``; the grid shrinks."""
    grid = sheet.props["gridProperties"]
    if dimension == "ROWS":
        del sheet.rows[start:end]
        grid["rowCount"] -= end - start
        _shift_ranges(sheet, "Row", start, start - end)
    else:
        for cells in sheet.rows:
            del cells[start:end]
        grid["columnCount"] -= end - start
        _shift_ranges(sheet, "Column", start, start - end)


def _shift_ranges(sheet: Sheet, axis: str, start: int, delta: int) -> None:
    """Keep protected ranges and validations anchored to their cells when rows/cols move.

    ``delta > 0``: ``delta`` lines inserted at ``start``; ``delta < 0``: lines
    ``[start, start - delta)`` deleted.
    """

    def moved(index: int) -> int:
        if delta > 0:
            return index + delta if index >= start else index
        end = start - delta
        return index + delta if index >= end else min(index, start)

    for item in [*sheet.protected, *sheet.validations]:
        rng = item["range"]
        for key in (f"start{axis}Index", f"end{axis}Index"):
            if key in rng:
                rng[key] = moved(rng[key])


def sort_rows(sheet: Sheet, box: tuple[int, int, int, int], specs: list[dict[str, Any]]) -> None:
    """sortRange: reorder the cells of box's rows by the sort specs (stable, blanks last)."""
    row0, col0, row1, col1 = box
    block = [[sheet.get(r, c) for c in range(col0, col1)] for r in range(row0, row1)]
    for spec in reversed(specs):
        col = spec.get("dimensionIndex", 0) - col0
        desc = spec.get("sortOrder", "ASCENDING") == "DESCENDING"
        block.sort(key=lambda cells, col=col, desc=desc: sort_key(cells[col], desc))
    for i, cells in enumerate(block):
        for j, cell in enumerate(cells):
            sheet.set(row0 + i, col0 + j, cell)


def _apply_fields(target: dict[str, Any], source: dict[str, Any], fields: str) -> None:
    paths = ["*"] if fields.strip() == "*" else [f.strip() for f in fields.split(",") if f.strip()]
    for path in paths:
        if path == "*":
            target.update(copy.deepcopy({k: v for k, v in source.items() if k != "sheetId"}))
            continue
        keys = path.replace("/", ".").split(".")
        src: Any = source
        dst = target
        for k in keys[:-1]:
            src = src.get(k, {}) if isinstance(src, dict) else {}
            dst = dst.setdefault(k, {})
        last = keys[-1]
        if isinstance(src, dict) and last in src:
            dst[last] = copy.deepcopy(src[last])
        else:
            dst.pop(last, None)


def batch_update(ss: Spreadsheet, body: dict[str, Any], user: str) -> dict[str, Any]:
    """spreadsheets:batchUpdate, atomic: on any error nothing is applied."""
    requests = body.get("requests")
    if not isinstance(requests, list):
        raise ApiError(400, "Invalid JSON payload: 'requests' must be a list")
    saved = ss.snapshot()
    replies = []
    try:
        for i, req in enumerate(requests):
            if not isinstance(req, dict) or len(req) != 1:
                raise ApiError(400, f"Invalid requests[{i}]: exactly one request kind expected")
            kind, args = next(iter(req.items()))
            handler = _HANDLERS.get(kind)
            if handler is None:
                raise ApiError(
                    400, f"Invalid requests[{i}]: '{kind}' is not supported by the emulator"
                )
            replies.append(handler(ss, args or {}, f"Invalid requests[{i}].{kind}: ", user))
    except ApiError:
        ss.restore(saved)
        raise
    ss.touch()
    out: dict[str, Any] = {"spreadsheetId": ss.id, "replies": replies}
    if body.get("includeSpreadsheetInResponse"):
        out["updatedSpreadsheet"] = metadata(ss, {})
    return out


def _sheet_arg(ss: Spreadsheet, sheet_id: Any, where: str) -> Sheet:
    sheet = ss.sheet_by_id(sheet_id if sheet_id is not None else 0)
    if sheet is None:
        raise ApiError(400, f"{where}No grid with id: {sheet_id}")
    return sheet


def _add_sheet(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    props = args.get("properties", {})
    title = props.get("title")
    if title is not None and ss.sheet_by_title(title) is not None:
        raise ApiError(
            400,
            f'{where}A sheet with the name "{title}" already exists. Please enter another name.',
        )
    if "sheetId" in props and ss.sheet_by_id(props["sheetId"]) is not None:
        raise ApiError(400, f"{where}A sheet with id {props['sheetId']} already exists.")
    sheet = ss.add_sheet(props)
    return {"addSheet": {"properties": sheet_props(sheet)}}


def _delete_sheet(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    sheet = _sheet_arg(ss, args.get("sheetId"), where)
    if len(ss.sheets) == 1:
        raise ApiError(400, f"{where}You can't remove all the sheets in a document.")
    ss.sheets.remove(sheet)
    ss.reindex()
    return {}


def _update_sheet_properties(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    props = args.get("properties", {})
    sheet = _sheet_arg(ss, props.get("sheetId"), where)
    fields = args.get("fields")
    if not fields:
        raise ApiError(400, f"{where}At least one field must be updated, but none were specified.")
    new = copy.deepcopy(sheet.props)
    _apply_fields(new, props, fields)
    new["sheetId"] = sheet.id
    new.setdefault("gridProperties", {})
    if new["title"] != sheet.title:
        other = ss.sheet_by_title(new["title"])
        if other is not None and other is not sheet:
            raise ApiError(
                400,
                f'{where}A sheet with the name "{new["title"]}" already exists. '
                "Please enter another name.",
            )
    if new.get("hidden") and all(s.props.get("hidden") or s is sheet for s in ss.sheets):
        raise ApiError(400, f"{where}You can't hide all the sheets in a document.")
    grid = new["gridProperties"]
    rows, cols = grid.get("rowCount", sheet.row_count), grid.get("columnCount", sheet.col_count)
    if rows < 1 or cols < 1:
        raise ApiError(400, f"{where}Sheet must have at least one row and one column.")
    del sheet.rows[rows:]
    for cells in sheet.rows:
        del cells[cols:]
    _quantize_colors(new)
    sheet.props = new
    if "index" in props and "index" in fields:
        ss.sheets.remove(sheet)
        ss.sheets.insert(min(props["index"], len(ss.sheets)), sheet)
    ss.reindex()
    return {}


def _update_spreadsheet_properties(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    fields = args.get("fields")
    if not fields:
        raise ApiError(400, f"{where}At least one field must be updated, but none were specified.")
    _apply_fields(ss.properties, args.get("properties", {}), fields)
    return {}


def _dimension_range(ss: Spreadsheet, args: dict, where: str) -> tuple[Sheet, str, int, int]:
    rng = args.get("range", {})
    sheet = _sheet_arg(ss, rng.get("sheetId"), where)
    dim = rng.get("dimension")
    if dim not in ("ROWS", "COLUMNS"):
        raise ApiError(400, f"{where}dimension must be ROWS or COLUMNS")
    limit = sheet.row_count if dim == "ROWS" else sheet.col_count
    return sheet, dim, rng.get("startIndex", 0), rng.get("endIndex", limit)


def _insert_dimension(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    sheet, dim, start, end = _dimension_range(ss, args, where)
    limit = sheet.row_count if dim == "ROWS" else sheet.col_count
    if start < 0 or end <= start or start > limit:
        raise ApiError(400, f"{where}Invalid range: startIndex {start}, endIndex {end}")
    insert_lines(sheet, dim, start, end - start)
    return {}


def _delete_dimension(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    sheet, dim, start, end = _dimension_range(ss, args, where)
    limit = sheet.row_count if dim == "ROWS" else sheet.col_count
    if start < 0 or end <= start or end > limit:
        raise ApiError(400, f"{where}Invalid range: startIndex {start}, endIndex {end}")
    if end - start >= limit:
        raise ApiError(400, f"{where}You can't delete all the {dim.lower()} on the sheet.")
    delete_lines(sheet, dim, start, end)
    return {}


def _append_dimension(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    sheet = _sheet_arg(ss, args.get("sheetId"), where)
    length = args.get("length", 0)
    if length < 1:
        raise ApiError(400, f"{where}length must be at least 1")
    key = "rowCount" if args.get("dimension") == "ROWS" else "columnCount"
    sheet.props["gridProperties"][key] += length
    return {}


def _sort_range(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    sheet, r0, c0, r1, c1 = grid_range(ss, args.get("range", {}), where)
    specs = args.get("sortSpecs") or [{"dimensionIndex": c0}]
    for spec in specs:
        if not c0 <= spec.get("dimensionIndex", 0) < c1:
            raise ApiError(400, f"{where}sortSpecs dimensionIndex is outside the range")
    sort_rows(sheet, (r0, c0, r1, c1), specs)
    return {}


def _add_protected_range(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    req = args.get("protectedRange", {})
    rng = req.get("range", {})
    sheet, *_ = grid_range(ss, rng, where)
    pid = req.get("protectedRangeId") or _random_int_id()
    stored: dict[str, Any] = {"protectedRangeId": pid, "range": echo_grid_range(rng)}
    for key in ("description", "namedRangeId"):
        if req.get(key):
            stored[key] = req[key]
    if req.get("warningOnly"):
        stored["warningOnly"] = True
    stored["requestingUserCanEdit"] = True
    editors = req.get("editors") or {}
    stored["editors"] = {"users": sorted({*(editors.get("users") or []), ss.owner})}
    sheet.protected.append(stored)
    reply = copy.deepcopy(stored)
    reply["editors"] = {}
    return {"addProtectedRange": {"protectedRange": reply}}


def _delete_protected_range(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    pid = args.get("protectedRangeId")
    for sheet in ss.sheets:
        for p in sheet.protected:
            if p["protectedRangeId"] == pid:
                sheet.protected.remove(p)
                return {}
    raise ApiError(400, f"{where}No protected range with id: {pid}")


def _set_data_validation(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    rng = args.get("range", {})
    sheet, r0, c0, r1, c1 = grid_range(ss, rng, where)
    box = {"startRowIndex": r0, "endRowIndex": r1, "startColumnIndex": c0, "endColumnIndex": c1}
    sheet.validations = [v for v in sheet.validations if v["range"] != box]
    if args.get("rule"):
        sheet.validations.append({"range": box, "rule": copy.deepcopy(args["rule"])})
    return {}


def _repeat_cell(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    sheet, r0, c0, r1, c1 = grid_range(ss, args.get("range", {}), where)
    cell = args.get("cell", {})
    fields = args.get("fields", "")
    if not fields:
        raise ApiError(400, f"{where}At least one field must be updated, but none were specified.")
    fmt = cell.get("userEnteredFormat", {})
    number_format = fmt.get("numberFormat")
    if number_format and ("numberFormat" in fields or fields == "*"):
        pair = (number_format.get("type", "NUMBER"), number_format.get("pattern", ""))
        for r in range(r0, min(r1, len(sheet.rows))):
            for c in range(c0, min(c1, len(sheet.rows[r]))):
                old = sheet.rows[r][c]
                if old is not None:
                    sheet.rows[r][c] = Cell(old.value, old.formula, pair)
    if "userEnteredValue" in fields and "userEnteredValue" in cell:
        value = next(iter(cell["userEnteredValue"].values()), None)
        for r in range(r0, r1):
            for c in range(c0, c1):
                sheet.set(r, c, parse_user_entered(value) if value is not None else None)
    sheet.formats.append(
        {"range": echo_grid_range(args.get("range", {})), "cell": cell, "fields": fields}
    )
    return {}


def _create_developer_metadata(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    meta = copy.deepcopy(args.get("developerMetadata", {}))
    if not meta.get("metadataKey") or meta.get("visibility") not in ("DOCUMENT", "PROJECT"):
        raise ApiError(400, f"{where}metadataKey and visibility (DOCUMENT/PROJECT) are required")
    meta.setdefault("metadataId", _random_int_id())
    location = meta.get("location", {})
    if location.get("spreadsheet"):
        location["locationType"] = "SPREADSHEET"
        ss.metadata.append(meta)
    elif "sheetId" in location:
        sheet = _sheet_arg(ss, location["sheetId"], where)
        location["locationType"] = "SHEET"
        sheet.metadata.append(meta)
    elif "dimensionRange" in location:
        rng = location["dimensionRange"]
        sheet = _sheet_arg(ss, rng.get("sheetId"), where)
        location["locationType"] = rng.get("dimension", "ROWS")[:-1]
        sheet.metadata.append(meta)
    else:
        raise ApiError(400, f"{where}location is required")
    return {"createDeveloperMetadata": {"developerMetadata": meta}}


def _delete_developer_metadata(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    lookup = args.get("dataFilter", {}).get("developerMetadataLookup", {})
    deleted = []
    for holder in [ss, *ss.sheets]:
        keep = []
        for meta in holder.metadata:
            match = all(meta.get(k) == v for k, v in lookup.items() if k != "locationType")
            (deleted if match and lookup else keep).append(meta)
        holder.metadata = keep
    return {"deleteDeveloperMetadata": {"deletedDeveloperMetadata": deleted}}


def _add_named_range(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    named = copy.deepcopy(args.get("namedRange", {}))
    grid_range(ss, named.get("range", {}), where)
    named["namedRangeId"] = named.get("namedRangeId") or str(_random_int_id())
    named["range"] = echo_grid_range(named.get("range", {}))
    ss.named_ranges.append(named)
    return {"addNamedRange": {"namedRange": named}}


def _update_named_range(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    req = args.get("namedRange", {})
    named = next((n for n in ss.named_ranges if n["namedRangeId"] == req.get("namedRangeId")), None)
    if named is None:
        raise ApiError(400, f"{where}No named range with id: {req.get('namedRangeId')}")
    if not args.get("fields"):
        raise ApiError(400, f"{where}At least one field must be updated, but none were specified.")
    _apply_fields(named, req, args["fields"])
    named["range"] = echo_grid_range(named.get("range", {}))
    return {}


def _delete_named_range(ss: Spreadsheet, args: dict, where: str, user: str) -> dict:
    nid = args.get("namedRangeId")
    before = len(ss.named_ranges)
    ss.named_ranges = [n for n in ss.named_ranges if n["namedRangeId"] != nid]
    if len(ss.named_ranges) == before:
        raise ApiError(400, f"{where}No named range with id: {nid}")
    return {}


_HANDLERS = {
    "addSheet": _add_sheet,
    "deleteSheet": _delete_sheet,
    "updateSheetProperties": _update_sheet_properties,
    "updateSpreadsheetProperties": _update_spreadsheet_properties,
    "insertDimension": _insert_dimension,
    "deleteDimension": _delete_dimension,
    "appendDimension": _append_dimension,
    "sortRange": _sort_range,
    "addProtectedRange": _add_protected_range,
    "deleteProtectedRange": _delete_protected_range,
    "setDataValidation": _set_data_validation,
    "repeatCell": _repeat_cell,
    "createDeveloperMetadata": _create_developer_metadata,
    "deleteDeveloperMetadata": _delete_developer_metadata,
    "addNamedRange": _add_named_range,
    "updateNamedRange": _update_named_range,
    "deleteNamedRange": _delete_named_range,
}
SUPPORTED_REQUESTS = frozenset(_HANDLERS)


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


def _quantize_colors(obj: dict[str, Any]) -> None:
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
            _quantize_colors(value)
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
