"""Finish a sync: combine the plan with what the services did into cell writes and a base."""

from __future__ import annotations

from collections.abc import Iterable

from sheets.grid import CellValue, CellWrite
from sheets.plan import (
    CONDITION_PREFIXES,
    ERROR,
    MISSING,
    NOTE,
    STATUS_PREFIX,
    STATUS_SEPARATOR,
    Base,
    CreateResult,
    RecordCreate,
    RecordUpdate,
    RowIssue,
    SyncPlan,
    SyncResult,
    UpdateResult,
    normalize_key,
)
from sheets.values import ValueParseError, normalize


def finalize(plan: SyncPlan, results: Iterable[UpdateResult | CreateResult] = ()) -> SyncResult:
    """Combine the plan with what the services did: all cell writes and the next base.

    Updates and creates without a result count as not applied (the base does not advance,
    so the next sync tries them again). Always call this, even with no results: it also
    produces the status-cell writes.
    """
    base: Base = dict(plan._base)
    writes: dict[tuple[int, int], CellValue] = {(w.row, w.col): w.value for w in plan.writes}
    issues = list(plan.issues)
    upd = {u.key: u for u in plan.updates}
    crt = {c.row: c for c in plan.creates}
    for res in results:
        if isinstance(res, UpdateResult):
            u = upd.pop(res.key, None)
            if u is not None:
                _apply_update(plan, u, res, base, writes, issues)
        elif isinstance(res, CreateResult):
            c = crt.pop(res.row, None)
            if c is not None:
                _apply_create(plan, c, res, base, writes, issues)
    if plan._status_col is not None:
        _status_writes(plan, issues, writes)
    issues.sort(key=lambda x: x.row)
    out = [CellWrite(r, c, v) for (r, c), v in sorted(writes.items())]
    return SyncResult(out, base, issues)


def _apply_update(
    plan: SyncPlan,
    u: RecordUpdate,
    res: UpdateResult,
    base: Base,
    writes: dict[tuple[int, int], CellValue],
    issues: list[RowIssue],
) -> None:
    """The base advances by the applied sheet values (or what the services made of them)."""
    if res.error:
        issues.append(RowIssue(u.row, u.key, ERROR, f"not applied: {res.error}"))
        return
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


def _apply_create(
    plan: SyncPlan,
    c: RecordCreate,
    res: CreateResult,
    base: Base,
    writes: dict[tuple[int, int], CellValue],
    issues: list[RowIssue],
) -> None:
    """A created record: its key (and the values the portal set) go into the row."""
    if res.error or not res.key:
        issues.append(RowIssue(c.row, None, ERROR, f"not created: {res.error or '?'}"))
        return
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
    issues.append(RowIssue(c.row, key, NOTE, f"added as {plan.spec.kind} record {key}"))


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
            conditions = [t for t in texts if t.startswith(CONDITION_PREFIXES)]
            notes = [t for t in texts if not t.startswith(CONDITION_PREFIXES)]
            old = _old_notes(now) if now is not None else None
            if old and all(note in old for note in notes):
                # nothing new to say: keep the notes the cell already shows (a repeat sync
                # that only re-finds a note it reported before must not rewrite the cell)
                notes = [old]
            want: str | None = STATUS_SEPARATOR.join(conditions + notes)
        elif now is not None and any(p in now for p in CONDITION_PREFIXES):
            want = None  # a condition that is gone
        else:
            want = now  # nothing new: keep notes (and anything a user typed)
        if want != now and (r, col) not in writes:
            writes[(r, col)] = want


def _old_notes(text: str) -> str | None:
    """The notes part of a status cell this engine wrote (notes always come last)."""
    note = STATUS_PREFIX[NOTE]
    if text.startswith(note):
        return text
    i = text.find(STATUS_SEPARATOR + note)
    return text[i + len(STATUS_SEPARATOR) :] if i >= 0 else None
