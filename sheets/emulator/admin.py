"""Admin API helpers: seeding, snapshots and a person's edits (typing, sorting, rows)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import unquote

from .a1 import col_to_index, parse_cells
from .state import Emulator
from .store import ApiError, Sheet, Spreadsheet, delete_lines, insert_lines, sort_rows
from .values import parse_raw, parse_user_entered
from .values_api import protected_against, read_values


def seed(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    """Create a spreadsheet with values (typed like USER_ENTERED unless ``raw``)."""
    owner = body.get("owner") or "owner@emulator.local"
    with emu.lock:
        sid = body.get("spreadsheetId")
        if sid in emu.spreadsheets:
            raise ApiError(409, f"spreadsheet {sid} already exists")
        sheets = body.get("sheets") or [{"title": "Sheet1"}]
        first = sheets[0]
        ss = emu.create_spreadsheet(
            body.get("title", "Seeded spreadsheet"),
            owner,
            sid=sid,
            first_sheet={"title": first.get("title", "Sheet1"), **_grid_props(first)},
        )
        ss.shared = set(body.get("shared_with", ["*"]))
        for extra in sheets[1:]:
            ss.add_sheet({"title": extra.get("title"), **_grid_props(extra)})
        for spec, sheet in zip(sheets, ss.sheets, strict=True):
            values = spec.get("values") or []
            grid = sheet.props["gridProperties"]
            grid["rowCount"] = max(grid["rowCount"], len(values))
            grid["columnCount"] = max(grid["columnCount"], max(map(len, values), default=0))
            parse = parse_raw if spec.get("raw") else parse_user_entered
            for r, row in enumerate(values):
                for c, value in enumerate(row):
                    if value is not None:
                        sheet.set(r, c, parse(value))
        return {
            "spreadsheetId": ss.id,
            "sheets": [{"title": s.title, "sheetId": s.id} for s in ss.sheets],
        }


def _grid_props(spec: dict[str, Any]) -> dict[str, Any]:
    grid = {}
    if "rows" in spec:
        grid["rowCount"] = spec["rows"]
    if "cols" in spec:
        grid["columnCount"] = spec["cols"]
    return {"gridProperties": grid} if grid else {}


def _admin_sheet(ss: Spreadsheet, body: dict[str, Any]) -> Sheet:
    title = body.get("sheet")
    sheet = ss.sheet_by_title(title) if title else ss.sheets[0]
    if sheet is None:
        raise ApiError(404, f"no sheet titled {title!r}")
    return sheet


def snapshot(ss: Spreadsheet, render_option: str) -> dict[str, Any]:
    """All values of every sheet, trimmed, for assertions in tests."""
    return {
        "spreadsheetId": ss.id,
        "title": ss.properties["title"],
        "modifiedTime": ss.modified,
        "sheets": [
            {
                "title": s.title,
                "sheetId": s.id,
                "rowCount": s.row_count,
                "columnCount": s.col_count,
                "values": read_values(
                    s, (0, 0, s.row_count, s.col_count), render_option, "SERIAL_NUMBER"
                ),
            }
            for s in ss.sheets
        ],
    }


def _person_type(ss: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
    """Type values into cells like a person (USER_ENTERED), honouring strict validation
    and protected ranges; rejected cells are reported, not applied."""
    sheet = _admin_sheet(ss, body)
    user = body.get("user", "person@example.com")
    applied, rejected = [], []
    for name, value in (body.get("cells") or {}).items():
        bounds = parse_cells(name)
        r, c = bounds.row0, bounds.col0
        if protected_against(ss, sheet, user, r, c):
            rejected.append({"cell": name, "reason": "protected"})
            continue
        cell = parse_user_entered(value) if value is not None else None
        reason = _validation_failure(sheet, r, c, cell)
        if reason:
            rejected.append({"cell": name, "reason": reason})
            continue
        grid = sheet.props["gridProperties"]
        grid["rowCount"] = max(grid["rowCount"], r + 1)
        grid["columnCount"] = max(grid["columnCount"], c + 1)
        sheet.set(r, c, cell)
        applied.append(name)
    return {"applied": applied, "rejected": rejected}


def _validation_failure(sheet: Sheet, r: int, c: int, cell: Any) -> str | None:
    for v in sheet.validations:
        rng, rule = v["range"], v["rule"]
        inside = (
            rng["startRowIndex"] <= r < rng["endRowIndex"]
            and rng["startColumnIndex"] <= c < rng["endColumnIndex"]
        )
        condition = rule.get("condition", {})
        if not inside or not rule.get("strict") or condition.get("type") != "ONE_OF_LIST":
            continue
        allowed = [x.get("userEnteredValue") for x in condition.get("values", [])]
        if cell is not None and str(cell.value) not in allowed:
            return "invalid: not one of " + ", ".join(map(str, allowed))
    return None


def _column_index(value: Any) -> int:
    return col_to_index(value) if isinstance(value, str) else int(value)


def _person_sort(ss: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
    """Sort the data rows (below ``header_rows``) by a column, like Data > Sort range."""
    sheet = _admin_sheet(ss, body)
    nrows, ncols = sheet.data_extent()
    header = int(body.get("header_rows", 1))
    col = _column_index(body.get("column", "A"))
    order = "DESCENDING" if body.get("descending") else "ASCENDING"
    sort_rows(
        sheet,
        (header, 0, max(nrows, header), max(ncols, col + 1)),
        [{"dimensionIndex": col, "sortOrder": order}],
    )
    return {"sorted_rows": max(nrows - header, 0)}


def _person_insert_rows(ss: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
    """Insert ``count`` empty rows before 1-based row ``before``, optionally typing values."""
    sheet = _admin_sheet(ss, body)
    before = int(body["before"]) - 1
    values = body.get("values") or []
    count = int(body.get("count", max(len(values), 1)))
    insert_lines(sheet, "ROWS", before, count)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if value is not None:
                sheet.set(before + i, j, parse_user_entered(value))
    return {"inserted": count}


def _person_delete_rows(ss: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
    """Delete ``count`` rows starting at 1-based row ``row``."""
    sheet = _admin_sheet(ss, body)
    start = int(body["row"]) - 1
    count = int(body.get("count", 1))
    if start < 0 or start + count > sheet.row_count or count >= sheet.row_count:
        raise ApiError(400, "rows out of range")
    delete_lines(sheet, "ROWS", start, start + count)
    return {"deleted": count}


def _person_duplicate_row(ss: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
    """Copy 1-based row ``row`` and paste it as a new row at ``to`` (default: after the data)."""
    sheet = _admin_sheet(ss, body)
    src = int(body["row"]) - 1
    cells = list(sheet.rows[src]) if src < len(sheet.rows) else []
    nrows, _ = sheet.data_extent()
    to = int(body["to"]) - 1 if body.get("to") else nrows
    if to < nrows:
        insert_lines(sheet, "ROWS", to, 1)
    grid = sheet.props["gridProperties"]
    grid["rowCount"] = max(grid["rowCount"], to + 1)
    for c, cell in enumerate(cells):
        sheet.set(to, c, cell)
    return {"row": to + 1}


PERSON_ACTIONS = {
    "type": _person_type,
    "sort": _person_sort,
    "insert_rows": _person_insert_rows,
    "delete_rows": _person_delete_rows,
    "duplicate_row": _person_duplicate_row,
}


# --- the /_admin routes ----------------------------------------------------------------------

_ADMIN_SS = re.compile(r"^/_admin/spreadsheets/([^/]+)(?:/([a-z_]+))?$")


def _reset(emu: Emulator, method: str, body: dict[str, Any]) -> dict[str, Any]:
    emu.reset()
    return {"ok": True}


def _config(emu: Emulator, method: str, body: dict[str, Any]) -> dict[str, Any]:
    with emu.lock:
        for key, value in body.items():
            if not hasattr(emu.config, key):
                raise ApiError(400, f"unknown config key {key!r}")
            setattr(emu.config, key, value)
        if body:
            emu.quota.clear()
        return asdict(emu.config)


def _faults(emu: Emulator, method: str, body: dict[str, Any]) -> dict[str, Any]:
    with emu.lock:
        if method == "POST":
            fault = {
                "remaining": int(body.get("count", 1)),
                "status": body.get("status"),
                "delay_ms": int(body.get("delay_ms", 0)),
                "kind": body.get("kind"),
                "message": body.get("message"),
            }
            emu.faults.append(fault)
        elif method == "DELETE":
            emu.faults.clear()
        return {"faults": list(emu.faults)}


def _requests(emu: Emulator, method: str, body: dict[str, Any]) -> dict[str, Any]:
    emu.wait_idle()  # requests answered before this one are counted
    with emu.lock:
        if method == "DELETE":
            emu.counters.clear()
            emu.log.clear()
            emu.quota.clear()
        return {"counters": dict(emu.counters), "log": list(emu.log)}


def _spreadsheets(emu: Emulator, method: str, body: dict[str, Any]) -> dict[str, Any]:
    if method == "POST":
        return seed(emu, body)
    with emu.lock:
        return {
            "spreadsheets": [
                {"spreadsheetId": s.id, "title": s.properties["title"], "owner": s.owner}
                for s in emu.spreadsheets.values()
            ]
        }


_Route = Callable[[Emulator, str, dict[str, Any]], Any]

#: path -> (the methods it answers, None: any; handler)
ADMIN_ROUTES: dict[str, tuple[tuple[str, ...] | None, _Route]] = {
    "/_admin/reset": (("POST",), _reset),
    "/_admin/config": (None, _config),
    "/_admin/faults": (None, _faults),
    "/_admin/requests": (None, _requests),
    "/_admin/spreadsheets": (None, _spreadsheets),
}


def admin(emu: Emulator, method: str, path: str, params: dict, body: dict[str, Any]) -> Any:
    """Answer an ``/_admin/...`` request (see docs/sheets-emulator.md)."""
    route = ADMIN_ROUTES.get(path)
    if route is not None and (route[0] is None or method in route[0]):
        return route[1](emu, method, body)
    m = _ADMIN_SS.match(path)
    if m:
        with emu.lock:
            ss = emu.spreadsheets.get(unquote(m.group(1)))
            if ss is None:
                raise ApiError(404, "Requested entity was not found.")
            action = m.group(2)
            if action is None and method == "GET":
                return snapshot(ss, params.get("render", "UNFORMATTED_VALUE"))
            if method == "POST" and action in PERSON_ACTIONS:
                result = PERSON_ACTIONS[action](ss, body)
                ss.touch()
                return result
    raise ApiError(404, f"emulator: no admin route for {method} {path}")
