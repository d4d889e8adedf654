"""Pure three-way merge of a tracker tab with the portal's records (DESIGN.md section 5).

One sync, as the job runs it::

    snapshot = backend.read()
    plan = plan_sync(spec, base, snapshot.rows, portal_rows)
    results = [apply each plan.updates / plan.creates through the services -> UpdateResult /
               CreateResult]
    result = finalize(plan, results)
    backend.write(result.writes, expected=snapshot)   # only if result.writes
    store result.base                                  # after the write succeeded

``base`` is the snapshot stored at the end of the previous sync: ``{key: {header: value}}``
with values normalised by :func:`sheets.values.normalize`. ``portal_rows`` is
``{key: {header: value}}`` for the records inside the tracker's filter (headers as in the
spec; the key column is not needed inside the row). Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sheets.finalize import finalize
from sheets.grid import CellValue, CellWrite
from sheets.plan import (
    CONFLICT,
    ERROR,
    MISSING,
    NOT_SYNCED,
    NOTE,
    Base,
    Conflict,
    CreateResult,
    RecordCreate,
    RecordUpdate,
    RowIssue,
    SheetColumn,
    SyncPlan,
    SyncResult,
    UpdateResult,
    normalize_key,
)
from sheets.trackers import Column, TrackerSpec, header_id
from sheets.values import NORMALIZERS, ValueParseError, display, normalize

__all__ = [
    "CONFLICT",
    "ERROR",
    "MISSING",
    "NOTE",
    "NOT_SYNCED",
    "Base",
    "Conflict",
    "CreateResult",
    "RecordCreate",
    "RecordUpdate",
    "RowIssue",
    "SyncPlan",
    "SyncResult",
    "UpdateResult",
    "finalize",
    "normalize_key",
    "plan_sync",
    "resolve_conflict",
]


def _blank(v: object) -> bool:
    return v is None or (type(v) is str and not v.strip())


def _status_text(raw: object) -> str | None:
    if _blank(raw):
        return None
    return str(raw).strip()


def _create_token(spec: TrackerSpec, values: Mapping[str, Any], occurrence: int) -> str:
    text = repr((spec.name, sorted((k, repr(v)) for k, v in values.items()), occurrence))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def plan_sync(
    spec: TrackerSpec,
    base: Mapping[str, Mapping[str, Any]],
    sheet_rows: Sequence[Sequence[CellValue]],
    portal_rows: Mapping[str, Mapping[str, Any]],
) -> SyncPlan:
    """Three-way merge of ``sheet_rows`` (row 0 = header) and ``portal_rows`` against ``base``."""
    plan = SyncPlan(spec)
    header_row = list(sheet_rows[0]) if sheet_rows else []
    portal = _portal_by_key(portal_rows)

    if all(_blank(h) for h in header_row):
        if any(not _blank(v) for row in sheet_rows for v in row):
            return _give_up(plan, base, "the header row is empty but the tab holds data")
        _plan_blank_sheet(plan, base, portal)
        return plan

    # --- columns, by header text ---------------------------------------------------------
    positions = _header_positions(header_row)
    key_pos = positions.get(header_id(spec.key_header), [])
    if len(key_pos) != 1:
        how = "not found in" if not key_pos else "used twice in"
        return _give_up(plan, base, f"key column {spec.key_header!r} {how} the header row")
    plan._key_col = key_idx = key_pos[0]
    cols = _map_columns(plan, positions)

    # --- rows, by key ----------------------------------------------------------------------
    rows_by_key, blank_key_rows, last_used = _scan_rows(plan, sheet_rows, key_idx, cols)
    new_base: Base = {}
    issues: list[RowIssue] = []
    for key, idxs in rows_by_key.items():
        if key in base:
            new_base[key] = base[key]  # type: ignore[assignment]  # replaced if it changes
        _plan_keyed_row(plan, key, idxs, sheet_rows, base, portal, cols, new_base, issues)

    # --- blank keys: create requests -----------------------------------------------------
    seen_tokens: dict[str, int] = {}
    for i in blank_key_rows:
        _plan_create(plan, i, sheet_rows[i], cols, issues, seen_tokens)

    # --- portal records missing from the sheet: append at the bottom, unless their row was
    # synced before (in the base): then the row was deleted, and that is reported instead
    next_row = last_used + 2  # 1-based row after the last used one
    for key, prow in portal.items():
        if key in rows_by_key:
            continue
        if key in base:
            plan.deleted.append(key)
            continue
        _write_record(plan, key, prow, key_idx, cols, issues, next_row, base, new_base)
        next_row += 1

    # base rows of keys in neither the sheet nor the portal are dropped
    plan._base = new_base
    issues.sort(key=lambda x: x.row)
    plan.issues = issues
    return plan


def _portal_by_key(portal_rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The portal rows by normalised key (rows whose key normalises to nothing are dropped)."""
    portal = {}
    for k, row in portal_rows.items():
        nk = k if type(k) is str and k and not k[0].isspace() and not k[-1].isspace() else None
        nk = nk or normalize_key(k)
        if nk is not None:
            portal[nk] = row
    return portal


def _give_up(plan: SyncPlan, base: Mapping[str, Mapping[str, Any]], reason: str) -> SyncPlan:
    """A plan that syncs nothing and keeps the base as it is."""
    plan.fatal = f"{reason}; nothing synced"
    plan._base = {k: dict(v) for k, v in base.items()}
    return plan


def _header_positions(header_row: Sequence[CellValue]) -> dict[str, list[int]]:
    """Header id -> the 0-based columns holding it (more than one: used twice)."""
    positions: dict[str, list[int]] = {}
    for i, h in enumerate(header_row):
        hid = header_id(h)
        if hid:
            positions.setdefault(hid, []).append(i)
    return positions


def _map_columns(plan: SyncPlan, positions: Mapping[str, list[int]]) -> list[SheetColumn]:
    """Locate the status column and the spec's columns; warn about missing or doubled ones."""
    spec = plan.spec
    status_pos = positions.get(header_id(spec.status_header), [])
    if len(status_pos) == 1:
        plan._status_col = status_pos[0]
    else:
        how = "not found" if not status_pos else "used twice"
        plan.warnings.append(f"status column {spec.status_header!r} {how}; messages not written")
    cols: list[SheetColumn] = []
    for c in spec.columns:
        pos = positions.get(header_id(c.header), [])
        if len(pos) == 1:
            cols.append(SheetColumn(c.header, c.field, c.type, c.owner, pos[0]))
        else:
            how = "not found" if not pos else "used twice"
            plan.warnings.append(f"column {c.header!r} {how} in the header row; not synced")
    plan._cols = {c.header: c for c in cols}
    return cols


def _scan_rows(
    plan: SyncPlan, sheet_rows: Sequence[Sequence[CellValue]], key_idx: int, cols: list[SheetColumn]
) -> tuple[dict[str, list[int]], list[int], int]:
    """Group the data rows by key: (rows by key, blank-key rows with data, last used row).

    Rows are 0-based indexes into ``sheet_rows``; records the status text and key of each
    used row in ``plan``.
    """
    status_idx = plan._status_col
    data_idx = [c.idx for c in cols]
    rows_by_key: dict[str, list[int]] = {}
    blank_key_rows: list[int] = []
    last_used = 0  # 0-based index of the last row holding anything
    for i in range(1, len(sheet_rows)):
        row = sheet_rows[i]
        n = len(row)
        raw_key = row[key_idx] if key_idx < n else None
        # str keys are the common case: inline
        key = (raw_key.strip() or None) if type(raw_key) is str else normalize_key(raw_key)
        if key is None and all(_blank(v) for v in row):
            continue
        last_used = i
        if status_idx is not None and status_idx < n:
            st = _status_text(row[status_idx])
            if st is not None:
                plan._status_now[i + 1] = st
        if key is not None:
            rows_by_key.setdefault(key, []).append(i)
            plan._row_keys[i + 1] = key
        elif any(j < n and not _blank(row[j]) for j in data_idx):
            blank_key_rows.append(i)
            plan._row_keys[i + 1] = None
    plan.rows_read = len(plan._row_keys)
    return rows_by_key, blank_key_rows, last_used


def _plan_keyed_row(
    plan: SyncPlan,
    key: str,
    idxs: list[int],
    sheet_rows: Sequence[Sequence[CellValue]],
    base: Mapping[str, Mapping[str, Any]],
    portal: Mapping[str, Mapping[str, Any]],
    cols: list[SheetColumn],
    new_base: Base,
    issues: list[RowIssue],
) -> None:
    """A key found in the sheet: report a doubled key or an unknown record, else merge."""
    if len(idxs) > 1:
        rows = ", ".join(str(i + plan.spec.header_row) for i in idxs)  # as the sheet numbers
        for i in idxs:
            issues.append(
                RowIssue(
                    i + 1,
                    key,
                    ERROR,
                    f"key {key} is in rows {rows}: neither row is synced until one is removed",
                )
            )
        return
    i = idxs[0]
    prow = portal.get(key)
    if prow is None:
        issues.append(
            RowIssue(
                i + 1,
                key,
                NOT_SYNCED,
                f"no {plan.spec.kind} record {key} in this tracker "
                "(unknown key, or it left the tracker's filter)",
            )
        )
        return
    _merge_row(plan, key, i, sheet_rows[i], base.get(key), prow, cols, new_base, issues)


def _write_record(
    plan: SyncPlan,
    key: str,
    prow: Mapping[str, Any],
    key_idx: int,
    cols: list[SheetColumn],
    issues: list[RowIssue],
    r: int,
    base: Mapping[str, Mapping[str, Any]],
    new_base: Base,
) -> None:
    """Write the portal record ``key`` into the empty sheet row ``r`` (1-based)."""
    brow = _portal_values(plan, key, prow, cols, issues, r)
    plan.writes.append(CellWrite(r, key_idx + 1, key))
    for c in cols:
        v = brow.get(c.header)
        if v is not None:
            plan.writes.append(CellWrite(r, c.idx + 1, v))
    old = base.get(key)
    new_base[key] = {**old, **brow} if old else brow


def _portal_values(
    plan: SyncPlan,
    key: str,
    prow: Mapping[str, Any],
    cols: Iterable[SheetColumn | Column],
    issues: list[RowIssue],
    row: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in cols:
        try:
            out[c.header] = normalize(c.type, prow.get(c.header))
        except ValueParseError as exc:
            issues.append(RowIssue(row, key, ERROR, f"{c.header}: portal value {exc}"))
    return out


def _plan_blank_sheet(plan: SyncPlan, base: Mapping[str, Any], portal: Mapping[str, Any]) -> None:
    """An empty tab: write the header row and every record."""
    spec = plan.spec
    for j, h in enumerate(spec.headers):
        plan.writes.append(CellWrite(1, j + 1, h))
    plan._key_col = 0
    plan._status_col = len(spec.columns) + 1
    cols = [
        SheetColumn(c.header, c.field, c.type, c.owner, j + 1) for j, c in enumerate(spec.columns)
    ]
    plan._cols = {c.header: c for c in cols}
    new_base: Base = {}
    for r, (key, prow) in enumerate(portal.items(), start=2):
        _write_record(plan, key, prow, 0, cols, plan.issues, r, base, new_base)
    plan._base = new_base


def _plan_create(
    plan: SyncPlan,
    i: int,
    row: Sequence[CellValue],
    cols: list[SheetColumn],
    issues: list[RowIssue],
    seen_tokens: dict[str, int],
) -> None:
    spec = plan.spec
    r = i + 1
    if not spec.may_create:
        issues.append(
            RowIssue(
                r, None, ERROR, f"{spec.key_header} is blank and this tracker does not add records"
            )
        )
        return
    n = len(row)
    cells: dict[str, Any] = {}
    values: dict[str, Any] = {}
    bad = False
    for c in cols:
        raw = row[c.idx] if c.idx < n else None
        try:
            v = normalize(c.type, raw)
        except ValueParseError as exc:
            if c.owner == "portal":
                continue  # the new record's value is written over whatever was typed
            issues.append(RowIssue(r, None, ERROR, f"{c.header}: {exc}"))
            bad = True
            continue
        if c.owner != "portal":
            cells[c.header] = v
        if v is not None:
            # a portal-owned cell typed in a new row names what the record is made from (a
            # line's order and SKU); the glue passes on only the fields a new record may set
            values[c.field] = v
    if bad:
        return
    base_token = _create_token(spec, values, 0)
    occurrence = seen_tokens.get(base_token, 0)
    seen_tokens[base_token] = occurrence + 1
    token = base_token if occurrence == 0 else _create_token(spec, values, occurrence)
    plan.creates.append(RecordCreate(r, values, token))
    plan._create_cells[r] = cells


# What the merge does with one cell that changed on at least one side.
_SKIP = 0  # nothing (an error or a conflict was reported)
_AGREE = 1  # both sides hold the same new value: the base advances
_TAKE_PORTAL = 2  # write the portal value into the cell
_TAKE_SHEET = 3  # apply the sheet value to the record


def _merge_row(
    plan: SyncPlan,
    key: str,
    i: int,
    row: Sequence[CellValue],
    brow: Mapping[str, Any] | None,
    prow: Mapping[str, Any],
    cols: list[SheetColumn],
    new_base: Base,
    issues: list[RowIssue],
) -> None:
    """Per-cell three-way merge of one uniquely keyed row. Hot path: keep it lean.

    Normalising both sides stays inline (most cells are unchanged); a cell that changed goes
    to :func:`_merge_cell`.
    """
    r = i + 1
    n = len(row)
    merged: _RowMerge | None = None  # only rows with a changed cell need one
    for c in cols:
        h = c.header
        fast = c.fast
        b = MISSING if brow is None else brow.get(h, MISSING)
        raw = row[c.idx] if c.idx < n else None
        # sheet side
        if raw is None:
            s: Any = None
        elif raw is b or (type(raw) in fast and raw == b):
            s = b
        elif type(raw) is str and not raw.strip():
            s = None
        else:
            try:
                s = NORMALIZERS[c.type](raw)
            except ValueParseError as exc:
                s = exc
        # portal side
        praw = prow.get(h)
        if praw is None:
            p: Any = None
        elif praw is b or (type(praw) in fast and praw == b):
            p = b
        else:
            try:
                p = normalize(c.type, praw)
            except ValueParseError as exc:
                issues.append(RowIssue(r, key, ERROR, f"{h}: portal value {exc}"))
                continue
        if s is b and p is b:
            continue  # the common case: nothing changed
        if merged is None:
            merged = _RowMerge()
        merged.add(plan, r, c, _merge_cell(plan, key, r, c, b, s, p, issues), s, p)
    if merged is not None:
        merged.finish(plan, key, r, brow, new_base)


class _RowMerge:
    """What the merge of one row decided so far, cell by cell."""

    __slots__ = ("advanced", "changes", "expected", "pending")

    def __init__(self) -> None:
        self.advanced: dict[str, Any] = {}  # base cells that advance unconditionally
        self.changes: dict[str, Any] = {}  # field -> sheet value, applied by the services
        self.expected: dict[str, Any] = {}  # field -> the portal value the merge saw
        self.pending: dict[str, Any] = {}  # header -> value, advances only if the update applies

    def add(self, plan: SyncPlan, r: int, c: SheetColumn, action: int, s: Any, p: Any) -> None:
        if action == _TAKE_PORTAL:
            plan.writes.append(CellWrite(r, c.idx + 1, p))
            self.advanced[c.header] = p
        elif action == _TAKE_SHEET:
            self.changes[c.field] = s
            self.expected[c.field] = p
            self.pending[c.header] = s
        elif action == _AGREE:
            self.advanced[c.header] = s

    def finish(
        self, plan: SyncPlan, key: str, r: int, brow: Mapping[str, Any] | None, new_base: Base
    ) -> None:
        if self.advanced:
            new_base[key] = {**brow, **self.advanced} if brow else self.advanced
        if self.changes:
            plan.updates.append(RecordUpdate(key, r, self.changes, self.expected))
            plan._pending[key] = self.pending


def _merge_cell(
    plan: SyncPlan,
    key: str,
    r: int,
    c: SheetColumn,
    b: Any,
    s: Any,
    p: Any,
    issues: list[RowIssue],
) -> int:
    """The action for a cell with base ``b``, sheet value ``s`` and portal value ``p`` (at
    least one of them differs from ``b``); reports what the row's status must say."""
    h = c.header
    if isinstance(s, ValueParseError):
        if c.owner == "portal":
            issues.append(RowIssue(r, key, NOTE, f"{h} is kept by the portal; sheet edit reverted"))
            return _TAKE_PORTAL
        issues.append(RowIssue(r, key, ERROR, f"{h}: {s}"))
        return _SKIP
    if s == p:
        return _AGREE if s != b else _SKIP
    # s != p from here on
    has_base = b is not MISSING
    s_changed = not has_base or s != b
    p_changed = not has_base or p != b
    if not has_base:
        # no common ancestor: fill blanks from the other side, else a conflict
        if s is None:
            s_changed = False
        elif p is None:
            p_changed = False
    if c.owner == "portal":
        if s_changed and (has_base or s is not None):
            issues.append(
                RowIssue(
                    r, key, NOTE, f"{h} is kept by the portal; sheet edit {display(s)} reverted"
                )
            )
        return _TAKE_PORTAL
    if c.owner == "sheet":
        if not has_base and s is None:
            return _TAKE_PORTAL  # first sight of this cell: fill it in
        if p_changed and has_base:
            issues.append(
                RowIssue(
                    r, key, NOTE, f"{h} is kept in the sheet; portal change {display(p)} reverted"
                )
            )
        return _TAKE_SHEET
    if not s_changed:
        return _TAKE_PORTAL
    if not p_changed:
        return _TAKE_SHEET
    return _both_changed(plan, key, r, c, b, s, p, issues)


def _both_changed(
    plan: SyncPlan,
    key: str,
    r: int,
    c: SheetColumn,
    b: Any,
    s: Any,
    p: Any,
    issues: list[RowIssue],
) -> int:
    """A cell both sides changed to different values: the tracker's conflict policy decides."""
    h = c.header
    policy = plan.spec.conflict_policy
    if policy == "portal_wins":
        issues.append(
            RowIssue(
                r,
                key,
                NOTE,
                f"{h} changed on both sides; portal value kept (sheet had {display(s)})",
            )
        )
        return _TAKE_PORTAL
    if policy == "sheet_wins":
        issues.append(
            RowIssue(
                r,
                key,
                NOTE,
                f"{h} changed on both sides; sheet value applied (portal had {display(p)})",
            )
        )
        return _TAKE_SHEET
    plan.conflicts.append(Conflict(key, h, None if b is MISSING else b, s, p, r, c.field))
    issues.append(
        RowIssue(
            r,
            key,
            CONFLICT,
            f"{h} changed on both sides (sheet {display(s)}, portal {display(p)}); "
            "waiting for a supervisor",
        )
    )
    return _SKIP


def resolve_conflict(base: Mapping[str, Mapping[str, Any]], conflict: Conflict) -> Base:
    """The base to store once a Supervisor resolved ``conflict``.

    Update the record to the chosen value through the services, then store this base: it
    records the sheet value the Supervisor saw, so the next sync writes the chosen value to
    the cell (or does nothing if the sheet value was chosen). A sheet edit made after the
    conflict was raised is still seen as an edit.
    """
    out: Base = dict(base)  # type: ignore[arg-type]
    out[conflict.key] = {**base.get(conflict.key, {}), conflict.header: conflict.sheet}
    return out
