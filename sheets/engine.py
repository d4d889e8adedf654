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
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sheets.grid import CellValue, CellWrite
from sheets.trackers import Column, TrackerSpec, header_id
from sheets.values import NORMALIZERS, ValueParseError, decode, display, encode, normalize

Base = dict[str, dict[str, Any]]

#: Row message kinds. "error", "conflict" and "not_synced" describe a condition and are
#: cleared from the status cell once it is gone; a "note" reports something the sync did and
#: stays until the row has something new to say.
ERROR, CONFLICT, NOT_SYNCED, NOTE = "error", "conflict", "not_synced", "note"
_PREFIX = {ERROR: "Error: ", CONFLICT: "Conflict: ", NOT_SYNCED: "Not synced: ", NOTE: "Note: "}
_CONDITION_PREFIXES = (_PREFIX[ERROR], _PREFIX[CONFLICT], _PREFIX[NOT_SYNCED])
_SEP = " | "


class _Missing:
    """No base value known for a cell (first sync, new row or new column)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class RecordUpdate:
    """Apply sheet edits to the record ``key`` (through the services, actor ``sheet:<name>``).

    ``changes`` maps field -> typed value; ``expected`` maps the same fields to the portal
    values the merge saw, so the service layer can refuse a stale update.
    """

    key: str
    row: int
    changes: dict[str, Any]
    expected: dict[str, Any]


@dataclass(frozen=True)
class RecordCreate:
    """Create a record from a blank-key row. ``token`` is stable across retries of the same
    row content, so a job that stores it on the record can avoid creating it twice."""

    row: int
    values: dict[str, Any]
    token: str


@dataclass(frozen=True)
class Conflict:
    """Both sides changed a cell to different values under the ``flag`` policy.

    Neither side is changed; a Supervisor resolves it (see :func:`resolve_conflict`).
    """

    key: str
    header: str
    base: Any
    sheet: Any
    portal: Any
    row: int
    field: str


@dataclass(frozen=True)
class RowIssue:
    """A message for a row's status cell."""

    row: int
    key: str | None
    kind: str
    message: str

    @property
    def text(self) -> str:
        return _PREFIX[self.kind] + self.message


@dataclass(frozen=True)
class UpdateResult:
    """What the service layer did with a :class:`RecordUpdate`.

    ``error`` is ``None`` when applied. ``values`` (optional, header -> value) is the record
    after the update; when given, values the service adjusted are written back at once.
    """

    key: str
    error: str | None = None
    values: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class CreateResult:
    """What the service layer did with a :class:`RecordCreate` (``key`` of the new record)."""

    row: int
    key: str | None = None
    error: str | None = None
    values: Mapping[str, Any] | None = None


@dataclass
class SyncResult:
    """Everything to write (one batch, sorted by row then column) and the base to store."""

    writes: list[CellWrite]
    base: Base
    issues: list[RowIssue]


@dataclass(frozen=True)
class _Col:
    """A mapped column as found in this sheet (0-based index)."""

    header: str
    field: str
    type: str
    owner: str
    idx: int

    #: raw types whose ``==`` with a canonical value of this type means "same value"
    fast: frozenset[type] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fast", _FAST[self.type])


_FAST: dict[str, frozenset[type]] = {
    "text": frozenset({str}),
    "int": frozenset({int, float}),
    "decimal": frozenset({Decimal, int, float}),
    "date": frozenset({date}),
    "datetime": frozenset({datetime}),
    "bool": frozenset({bool}),
}


@dataclass
class SyncPlan:
    """The outcome of :func:`plan_sync`. Public lists are in sheet order (deterministic)."""

    spec: TrackerSpec
    writes: list[CellWrite] = field(default_factory=list)
    updates: list[RecordUpdate] = field(default_factory=list)
    creates: list[RecordCreate] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fatal: str | None = None
    rows_read: int = 0
    # state for finalize()
    _base: Base = field(default_factory=dict, repr=False)
    _pending: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    _create_cells: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)
    _status_now: dict[int, str] = field(default_factory=dict, repr=False)
    _row_keys: dict[int, str | None] = field(default_factory=dict, repr=False)
    _cols: dict[str, _Col] = field(default_factory=dict, repr=False)
    _key_col: int | None = field(default=None, repr=False)
    _status_col: int | None = field(default=None, repr=False)

    def key_write(self, row: int, key: str) -> CellWrite:
        """The cell write that puts a newly created record's key into its row."""
        if self._key_col is None:
            raise ValueError("the sheet has no key column")
        return CellWrite(row, self._key_col + 1, key)

    @property
    def is_noop(self) -> bool:
        """No cell writes, record updates or creates planned (status writes come later)."""
        return not (self.writes or self.updates or self.creates)

    def counts(self) -> dict[str, int]:
        """Counters for the sync-run record."""
        return {
            "rows_read": self.rows_read,
            "writes": len(self.writes),
            "updates": len(self.updates),
            "creates": len(self.creates),
            "conflicts": len(self.conflicts),
            "errors": sum(1 for i in self.issues if i.kind == ERROR),
        }


def normalize_key(raw: object) -> str | None:
    """A key cell as text (``1001`` and ``1001.0`` -> ``"1001"``); ``None`` when blank."""
    try:
        return normalize("text", raw)
    except ValueParseError:
        return str(raw)


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
    portal = {}
    for k, row in portal_rows.items():
        nk = k if type(k) is str and k and not k[0].isspace() and not k[-1].isspace() else None
        nk = nk or normalize_key(k)
        if nk is not None:
            portal[nk] = row

    if all(_blank(h) for h in header_row):
        if any(not _blank(v) for row in sheet_rows for v in row):
            plan.fatal = "the header row is empty but the tab holds data; nothing synced"
            plan._base = {k: dict(v) for k, v in base.items()}
        else:
            _plan_blank_sheet(plan, base, portal)
        return plan

    # --- columns, by header text ---------------------------------------------------------
    positions: dict[str, list[int]] = {}
    for i, h in enumerate(header_row):
        hid = header_id(h)
        if hid:
            positions.setdefault(hid, []).append(i)
    key_pos = positions.get(header_id(spec.key_header), [])
    if len(key_pos) != 1:
        how = "not found in" if not key_pos else "used twice in"
        plan.fatal = f"key column {spec.key_header!r} {how} the header row; nothing synced"
        plan._base = {k: dict(v) for k, v in base.items()}
        return plan
    plan._key_col = key_idx = key_pos[0]
    status_pos = positions.get(header_id(spec.status_header), [])
    if len(status_pos) == 1:
        plan._status_col = status_pos[0]
    else:
        how = "not found" if not status_pos else "used twice"
        plan.warnings.append(f"status column {spec.status_header!r} {how}; messages not written")
    cols: list[_Col] = []
    for c in spec.columns:
        pos = positions.get(header_id(c.header), [])
        if len(pos) == 1:
            cols.append(_Col(c.header, c.field, c.type, c.owner, pos[0]))
        else:
            how = "not found" if not pos else "used twice"
            plan.warnings.append(f"column {c.header!r} {how} in the header row; not synced")
    plan._cols = {c.header: c for c in cols}
    status_idx = plan._status_col
    data_idx = [c.idx for c in cols]

    # --- rows, by key ----------------------------------------------------------------------
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

    new_base: Base = {}
    issues: list[RowIssue] = []
    for key, idxs in rows_by_key.items():
        if key in base:
            new_base[key] = base[key]  # type: ignore[assignment]  # replaced if it changes
        if len(idxs) > 1:
            rows = ", ".join(str(i + 1) for i in idxs)
            for i in idxs:
                issues.append(
                    RowIssue(
                        i + 1,
                        key,
                        ERROR,
                        f"key {key} is in rows {rows}: neither row is synced until one is removed",
                    )
                )
            continue
        i = idxs[0]
        prow = portal.get(key)
        if prow is None:
            issues.append(
                RowIssue(
                    i + 1,
                    key,
                    NOT_SYNCED,
                    f"no {spec.kind} record {key} in this tracker "
                    "(unknown key, or it left the tracker's filter)",
                )
            )
            continue
        _merge_row(plan, key, i, sheet_rows[i], base.get(key), prow, cols, new_base, issues)

    # --- blank keys: create requests -----------------------------------------------------
    seen_tokens: dict[str, int] = {}
    for i in blank_key_rows:
        _plan_create(plan, i, sheet_rows[i], cols, issues, seen_tokens)

    # --- portal records missing from the sheet: append at the bottom ----------------------
    next_row = last_used + 2  # 1-based row after the last used one
    width_cols = [(c, c.idx + 1) for c in cols]
    for key, prow in portal.items():
        if key in rows_by_key:
            continue
        brow = _portal_values(plan, key, prow, cols, issues, next_row)
        plan.writes.append(CellWrite(next_row, key_idx + 1, key))
        for c, col1 in width_cols:
            v = brow.get(c.header)
            if v is not None:
                plan.writes.append(CellWrite(next_row, col1, v))
        old = base.get(key)
        new_base[key] = {**old, **brow} if old else brow
        next_row += 1

    # base rows of keys in neither the sheet nor the portal are dropped
    plan._base = new_base
    issues.sort(key=lambda x: x.row)
    plan.issues = issues
    return plan


def _portal_values(
    plan: SyncPlan,
    key: str,
    prow: Mapping[str, Any],
    cols: Iterable[_Col | Column],
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
    cols = [_Col(c.header, c.field, c.type, c.owner, j + 1) for j, c in enumerate(spec.columns)]
    plan._cols = {c.header: c for c in cols}
    new_base: Base = {}
    for r, (key, prow) in enumerate(portal.items(), start=2):
        brow = _portal_values(plan, key, prow, cols, plan.issues, r)
        plan.writes.append(CellWrite(r, 1, key))
        for c in cols:
            v = brow.get(c.header)
            if v is not None:
                plan.writes.append(CellWrite(r, c.idx + 1, v))
        old = base.get(key)
        new_base[key] = {**old, **brow} if old else brow
    plan._base = new_base


def _plan_create(
    plan: SyncPlan,
    i: int,
    row: Sequence[CellValue],
    cols: list[_Col],
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
        if c.owner == "portal":
            continue  # the new record's value is written over whatever was typed
        raw = row[c.idx] if c.idx < n else None
        try:
            v = normalize(c.type, raw)
        except ValueParseError as exc:
            issues.append(RowIssue(r, None, ERROR, f"{c.header}: {exc}"))
            bad = True
            continue
        cells[c.header] = v
        if v is not None:
            values[c.field] = v
    if bad:
        return
    base_token = _create_token(spec, values, 0)
    occurrence = seen_tokens.get(base_token, 0)
    seen_tokens[base_token] = occurrence + 1
    token = base_token if occurrence == 0 else _create_token(spec, values, occurrence)
    plan.creates.append(RecordCreate(r, values, token))
    plan._create_cells[r] = cells


def _merge_row(
    plan: SyncPlan,
    key: str,
    i: int,
    row: Sequence[CellValue],
    brow: Mapping[str, Any] | None,
    prow: Mapping[str, Any],
    cols: list[_Col],
    new_base: Base,
    issues: list[RowIssue],
) -> None:
    """Per-cell three-way merge of one uniquely keyed row. Hot path: keep it lean."""
    r = i + 1
    n = len(row)
    policy = plan.spec.conflict_policy
    advanced: dict[str, Any] | None = None  # base cells that advance unconditionally
    changes: dict[str, Any] | None = None  # field -> sheet value, applied by the services
    expected: dict[str, Any] = {}
    pending: dict[str, Any] = {}  # header -> value, advances only if the update applies
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
        if isinstance(s, ValueParseError):
            if c.owner == "portal":
                plan.writes.append(CellWrite(r, c.idx + 1, p))
                issues.append(
                    RowIssue(r, key, NOTE, f"{h} is kept by the portal; sheet edit reverted")
                )
                if advanced is None:
                    advanced = {}
                advanced[h] = p
            else:
                issues.append(RowIssue(r, key, ERROR, f"{h}: {s}"))
            continue
        if s == p:
            if s != b:
                if advanced is None:
                    advanced = {}
                advanced[h] = s
            continue
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
            take_portal = True
            if s_changed and (has_base or s is not None):
                issues.append(
                    RowIssue(
                        r,
                        key,
                        NOTE,
                        f"{h} is kept by the portal; sheet edit {display(s)} reverted",
                    )
                )
        elif c.owner == "sheet":
            if not has_base and s is None:
                take_portal = True  # first sight of this cell: fill it in
            else:
                take_portal = False
                if p_changed and has_base:
                    issues.append(
                        RowIssue(
                            r,
                            key,
                            NOTE,
                            f"{h} is kept in the sheet; portal change {display(p)} reverted",
                        )
                    )
        elif not s_changed:
            take_portal = True
        elif not p_changed:
            take_portal = False
        elif policy == "portal_wins":
            take_portal = True
            issues.append(
                RowIssue(
                    r,
                    key,
                    NOTE,
                    f"{h} changed on both sides; portal value kept (sheet had {display(s)})",
                )
            )
        elif policy == "sheet_wins":
            take_portal = False
            issues.append(
                RowIssue(
                    r,
                    key,
                    NOTE,
                    f"{h} changed on both sides; sheet value applied (portal had {display(p)})",
                )
            )
        else:
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
            continue
        if take_portal:
            plan.writes.append(CellWrite(r, c.idx + 1, p))
            if advanced is None:
                advanced = {}
            advanced[h] = p
        else:
            if changes is None:
                changes = {}
            changes[c.field] = s
            expected[c.field] = p
            pending[h] = s
    if advanced:
        new_base[key] = {**brow, **advanced} if brow else advanced
    if changes:
        plan.updates.append(RecordUpdate(key, r, changes, expected))
        plan._pending[key] = pending


def finalize(plan: SyncPlan, results: Iterable[UpdateResult | CreateResult] = ()) -> SyncResult:
    """Combine the plan with what the services did: all cell writes and the next base.

    Updates and creates without a result count as not applied (the base does not advance,
    so the next sync tries them again). Always call this, even with no results: it also
    produces the status-cell writes.
    """
    spec = plan.spec
    base: Base = dict(plan._base)
    writes: dict[tuple[int, int], CellValue] = {(w.row, w.col): w.value for w in plan.writes}
    issues = list(plan.issues)
    upd = {u.key: u for u in plan.updates}
    crt = {c.row: c for c in plan.creates}
    for res in results:
        if isinstance(res, UpdateResult):
            u = upd.pop(res.key, None)
            if u is None:
                continue
            if res.error:
                issues.append(RowIssue(u.row, u.key, ERROR, f"not applied: {res.error}"))
                continue
            row = dict(base.get(u.key) or {})
            for h, v in plan._pending[u.key].items():
                col = plan._cols[h]
                if res.values is not None and col.owner == "both" and h in res.values:
                    try:
                        got = normalize(col.type, res.values[h])
                    except ValueParseError:
                        got = v
                    if got != v:
                        writes[(u.row, col.idx + 1)] = got
                        v = got
                row[h] = v
            base[u.key] = row
        elif isinstance(res, CreateResult):
            c = crt.pop(res.row, None)
            if c is None:
                continue
            if res.error or not res.key:
                issues.append(RowIssue(c.row, None, ERROR, f"not created: {res.error or '?'}"))
                continue
            key = normalize_key(res.key) or res.key
            writes[(c.row, plan._key_col + 1)] = key  # type: ignore[operator]
            row = dict(plan._create_cells[c.row])
            if res.values is not None:
                for h, col in plan._cols.items():
                    if col.owner == "sheet" or h not in res.values:
                        continue
                    try:
                        got = normalize(col.type, res.values[h])
                    except ValueParseError:
                        continue
                    if row.get(h, MISSING) != got:
                        writes[(c.row, col.idx + 1)] = got
                    row[h] = got
            base[key] = row
            issues.append(RowIssue(c.row, key, NOTE, f"added as {spec.kind} record {key}"))
    if plan._status_col is not None:
        _status_writes(plan, issues, writes)
    issues.sort(key=lambda x: x.row)
    out = [CellWrite(r, c, v) for (r, c), v in sorted(writes.items())]
    return SyncResult(out, base, issues)


def _status_writes(
    plan: SyncPlan, issues: list[RowIssue], writes: dict[tuple[int, int], CellValue]
) -> None:
    col = plan._status_col + 1  # type: ignore[operator]
    by_row: dict[int, list[str]] = {}
    for issue in issues:
        texts = by_row.setdefault(issue.row, [])
        if issue.text not in texts:
            texts.append(issue.text)
    for r in sorted(set(by_row) | set(plan._status_now)):
        now = plan._status_now.get(r)
        texts = by_row.get(r)
        if texts:
            # conditions first, then notes; earlier notes stay until new notes replace them
            conditions = [t for t in texts if t.startswith(_CONDITION_PREFIXES)]
            notes = [t for t in texts if not t.startswith(_CONDITION_PREFIXES)]
            old = _old_notes(now) if now is not None else None
            if old and all(note in old for note in notes):
                # nothing new to say: keep the notes the cell already shows (a repeat sync
                # that only re-finds a note it reported before must not rewrite the cell)
                notes = [old]
            want: str | None = _SEP.join(conditions + notes)
        elif now is not None and any(p in now for p in _CONDITION_PREFIXES):
            want = None  # a condition that is gone
        else:
            want = now  # nothing new: keep notes (and anything a user typed)
        if want != now and (r, col) not in writes:
            writes[(r, col)] = want


def _old_notes(text: str) -> str | None:
    """The notes part of a status cell this engine wrote (notes always come last)."""
    note = _PREFIX[NOTE]
    if text.startswith(note):
        return text
    i = text.find(_SEP + note)
    return text[i + len(_SEP) :] if i >= 0 else None


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


def base_to_json(spec: TrackerSpec, base: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """JSON-safe form of a base snapshot (Decimal and dates as ISO text)."""
    types = {c.header: c.type for c in spec.columns}
    return {
        k: {h: encode(types[h], v) for h, v in row.items() if h in types} for k, row in base.items()
    }


def base_from_json(spec: TrackerSpec, data: Mapping[str, Mapping[str, Any]]) -> Base:
    """Inverse of :func:`base_to_json` (unknown headers are dropped)."""
    types = {c.header: c.type for c in spec.columns}
    return {
        k: {h: decode(types[h], v) for h, v in row.items() if h in types} for k, row in data.items()
    }
