"""``spreadsheets.batchUpdate``: structural edits (rows, sheets, sorting, protection...)."""

from __future__ import annotations

import copy
from typing import Any

from .metadata import metadata, quantize_colors, sheet_props
from .store import (
    ApiError,
    Sheet,
    Spreadsheet,
    delete_lines,
    echo_grid_range,
    grid_range,
    insert_lines,
    random_int_id,
    sort_rows,
)
from .values import Cell, parse_user_entered


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
    quantize_colors(new)
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
    pid = req.get("protectedRangeId") or random_int_id()
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
        sheet.number_formats.append((r0, c0, r1, c1, pair))
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
    meta.setdefault("metadataId", random_int_id())
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
    named["namedRangeId"] = named.get("namedRangeId") or str(random_int_id())
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
