"""In-memory spreadsheets, their sheets and A1 ranges (no HTTP here)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import secrets
import string
from pathlib import Path
from typing import Any

from .a1 import (
    Bounds,
    format_requested,
    looks_like_cells,
    parse_cells,
    split_sheet,
)
from .values import Cell, sort_key

DEFAULT_PROPERTIES: dict[str, Any] = json.loads(
    (Path(__file__).with_name("spreadsheet_defaults.json")).read_text()
)
SCALARS = (str, int, float, bool, type(None))
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


def random_int_id() -> int:
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
        # number formats repeatCell set on a block of the grid (row0, col0, row1, col1, format):
        # as in Google, they hold for empty cells too, so values written later show in them
        self.number_formats: list[tuple[int, int, int, int, tuple[str, str]]] = []
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

    def format_block(self, row0: int, col0: int, row1: int, col1: int) -> None:
        """Give the cells of the block that have no number format of their own the grid's
        (the last repeatCell covering them), after values were written there."""
        for f_row0, f_col0, f_row1, f_col1, fmt in self.number_formats:
            r0, r1 = max(row0, f_row0), min(row1, f_row1, len(self.rows))
            c0, c1 = max(col0, f_col0), min(col1, f_col1)
            for r in range(r0, r1):
                cells = self.rows[r]
                for c in range(c0, min(c1, len(cells))):
                    cell = cells[c]
                    if cell is not None and cell.fmt is None:
                        cells[c] = Cell(cell.value, cell.formula, fmt)

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
        clone.number_formats = list(self.number_formats)
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
            sheet_id = 0 if not self.sheets else random_int_id()
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


def resolve(ss: Spreadsheet, text: str) -> tuple[Sheet, Bounds]:
    """A range string -> (sheet, bounds); 400 "Unable to parse range" when it is not one."""
    try:
        title, cells = split_sheet(text)
    except ValueError:
        raise ApiError(400, f"Unable to parse range: {text}") from None
    if title is None:
        sheet = ss.sheet_by_title(text)
        if sheet is not None:
            return sheet, Bounds(0, 0, None, None)
        named = next((n for n in ss.named_ranges if n["name"].lower() == text.lower()), None)
        if named is not None:
            sheet, r0, c0, r1, c1 = grid_range(ss, named["range"])
            return sheet, Bounds(r0, c0, r1, c1)
        if not looks_like_cells(cells):
            raise ApiError(400, f"Unable to parse range: {text}")
        visible = [s for s in ss.sheets if not s.props.get("hidden")] or ss.sheets
        return visible[0], parse_cells(cells)
    sheet = ss.sheet_by_title(title)
    if sheet is None:
        raise ApiError(400, f"Unable to parse range: {text}")
    if not cells:
        return sheet, Bounds(0, 0, None, None)
    try:
        return sheet, parse_cells(cells)
    except ValueError:
        raise ApiError(400, f"Unable to parse range: {text}") from None


def clip(sheet: Sheet, bounds: Bounds) -> tuple[int, int, int, int]:
    """Concrete (row0, col0, row1, col1); 400 when the range exceeds the grid."""
    rows, cols = sheet.row_count, sheet.col_count
    row1 = bounds.row1 if bounds.row1 is not None else rows
    col1 = bounds.col1 if bounds.col1 is not None else cols
    if bounds.row0 >= rows or bounds.col0 >= cols or row1 > rows or col1 > cols:
        raise ApiError(
            400,
            f"Range ({format_requested(sheet.title, bounds)}) exceeds grid limits. "
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


# --- row and column edits ----------------------------------------------------------------------


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
