"""The ``spreadsheets.values`` operations: read, write, append and clear ranges."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .a1 import (
    Bounds,
    format_range,
    index_to_col,
    parse_cells,
    split_sheet,
)
from .store import SCALARS, ApiError, Sheet, Spreadsheet, clip, insert_lines, resolve
from .values import parse_raw, parse_user_entered, render

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
    out: dict[str, Any] = {"range": format_range(sheet.title, *box), "majorDimension": major}
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
    bounds: Bounds,
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
        _check_inside(bounds, nrows, ncols, range_text)
    if nrows == 0 or ncols == 0:
        return {"spreadsheetId": ss.id}
    _check_scalars(values)
    _check_protection(ss, sheet, user, row0, col0, values)
    grid = sheet.props["gridProperties"]
    grid["rowCount"] = max(grid["rowCount"], row0 + nrows)
    grid["columnCount"] = max(grid["columnCount"], col0 + ncols)
    parse = parse_raw if input_option == "RAW" else parse_user_entered
    touched_rows, touched_cols, cells = _store(sheet, row0, col0, values, parse)
    sheet.format_block(row0, col0, row0 + nrows, col0 + ncols)
    ss.touch()
    result = {
        "spreadsheetId": ss.id,
        "updatedRange": format_range(sheet.title, row0, col0, row0 + nrows, col0 + ncols),
        "updatedRows": len(touched_rows),
        "updatedColumns": len(touched_cols),
        "updatedCells": cells,
    }
    if touched is not None:
        touched.update((sheet.id, "row", r) for r in touched_rows)
        touched.update((sheet.id, "col", c) for c in touched_cols)
    return result


def _check_inside(bounds: Bounds, nrows: int, ncols: int, range_text: str) -> None:
    """400 when ``nrows`` x ``ncols`` values overflow the (non single-cell) range."""
    row0, col0 = bounds.row0, bounds.col0
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
            f"[{index_to_col(col0 + ncols - 1)}]",
        )


def _check_scalars(values: list[list[Any]]) -> None:
    """400 for a value that is not a JSON scalar."""
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if not isinstance(v, SCALARS):
                raise ApiError(400, f"Invalid values[{i}][{j}]: {json.dumps(v)}")


def _store(
    sheet: Sheet, row0: int, col0: int, values: list[list[Any]], parse: Callable[[Any], Any]
) -> tuple[set[int], set[int], int]:
    """Parse and store ``values`` at (row0, col0); null leaves a cell alone.

    Returns the rows and columns written to and the number of cells written.
    """
    rows = sheet.rows
    if len(rows) < row0 + len(values):
        rows.extend([] for _ in range(row0 + len(values) - len(rows)))
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
    return touched_rows, touched_cols, cells


def updated_data(
    sheet: Sheet, result: dict[str, Any], params: dict[str, str]
) -> dict[str, Any] | None:
    """The ``updatedData`` ValueRange when includeValuesInResponse=true."""
    if str(params.get("includeValuesInResponse", "")).lower() != "true":
        return None
    if "updatedRange" not in result:
        return None
    _, cells = split_sheet(result["updatedRange"])
    b = parse_cells(cells)
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
        table_range = format_range(sheet.title, top, left, bottom, right)
        target_row, target_col = bottom, left
    if params.get("insertDataOption") == "INSERT_ROWS" and values:
        insert_lines(sheet, "ROWS", target_row, len(values))
    major = body.get("majorDimension") or "ROWS"
    start = Bounds(target_row, target_col, None, None, single=True)
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
    return format_range(sheet.title, row0, col0, row1, col1)
