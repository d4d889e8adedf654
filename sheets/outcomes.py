"""Every row's fate in one sync: per-row outcomes built from a plan (dry run) or a result.

One :class:`RowOutcome` per row the sync looked at, except that a row with conflicting cells
has one ``conflict`` outcome per cell (with both values). The outcomes:

========== ==============================================================================
created    a blank-key row became a new record (its key is written back)
updated    the row's sheet edits were applied to its record
written    portal changes were written into the row's cells
appended   a portal record missing from the sheet was added as a new row
unchanged  nothing to do on either side
refused    not applied, ``message`` says why (a bad value, a failed validation, a doubled
           key, a blank key where the tracker may not create, ...)
conflict   a cell both sides changed differently, waiting for a Supervisor
           (``header``, ``sheet_value``, ``portal_value``)
unmatched  the key names no record of this tracker (unknown, or outside its filter)
deleted    a row synced before is gone from the sheet (``row`` 0: it has no row any more)
========== ==============================================================================

A row matching several outcomes gets the first of: refused, unmatched, created, updated,
written, appended, unchanged; conflict outcomes come in addition, one per cell (a row whose
only news is its conflicts has just those). Notes the
sync made about a row (a portal-owned cell reverted, a policy that decided a both-sides
change) are added to its message. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sheets.plan import CONFLICT, ERROR, NOT_SYNCED, SyncPlan, SyncResult

CREATED = "created"
UPDATED = "updated"
WRITTEN = "written"
APPENDED = "appended"
UNCHANGED = "unchanged"
REFUSED = "refused"
CONFLICTED = "conflict"
UNMATCHED = "unmatched"
DELETED = "deleted"
OUTCOMES = (CREATED, UPDATED, WRITTEN, APPENDED, UNCHANGED, REFUSED, CONFLICTED, UNMATCHED, DELETED)


@dataclass(frozen=True)
class RowOutcome:
    """What one sync did (or, in a dry run, would do) with one sheet row."""

    row: int
    key: str | None
    outcome: str
    message: str
    header: str | None = None
    sheet_value: object = None
    portal_value: object = None


def plan_outcomes(plan: SyncPlan) -> list[RowOutcome]:
    """What the plan would do with each row, before anything is applied (a dry run)."""
    return _outcomes(plan, plan.issues, dry=True)


def result_outcomes(plan: SyncPlan, result: SyncResult) -> list[RowOutcome]:
    """What a finished sync did with each row: ``result`` is ``finalize(plan, results)``."""
    return _outcomes(plan, result.issues, dry=False)


def count_outcomes(outcomes: Iterable[RowOutcome]) -> dict[str, int]:
    """outcome -> how many rows (every outcome present, zero when none)."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for o in outcomes:
        counts[o.outcome] += 1
    return counts


class _Row:
    """What is known about one row while its outcome is decided."""

    __slots__ = ("errors", "key", "notes", "outcome", "unmatched")

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.outcome = UNCHANGED
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.unmatched: str | None = None


_RANK = {REFUSED: 0, UNMATCHED: 1, CREATED: 2, UPDATED: 3, WRITTEN: 4, APPENDED: 5, UNCHANGED: 6}


def _outcomes(plan: SyncPlan, issues: Iterable, *, dry: bool) -> list[RowOutcome]:
    rows: dict[int, _Row] = {r: _Row(k) for r, k in plan.row_keys.items()}

    def at(r: int, key: str | None = None) -> _Row:
        row = rows.get(r)
        if row is None:
            row = rows[r] = _Row(key)
        if key is not None and row.key is None:
            row.key = key
        return row

    def mark(r: int, outcome: str, key: str | None = None) -> None:
        row = at(r, key)
        if _RANK[outcome] < _RANK[row.outcome]:
            row.outcome = outcome

    key_col = plan.key_column
    for w in plan.writes:
        if w.row == 1:
            continue  # the header row of a blank tab
        fresh = w.row not in plan.row_keys
        key = str(w.value) if fresh and key_col is not None and w.col == key_col + 1 else None
        mark(w.row, APPENDED if fresh else WRITTEN, key)
    for u in plan.updates:
        mark(u.row, UPDATED, u.key)
    for c in plan.creates:
        mark(c.row, CREATED)
    for issue in issues:
        row = at(issue.row, issue.key)
        if issue.kind == ERROR:
            row.errors.append(issue.message)
            mark(issue.row, REFUSED)
        elif issue.kind == NOT_SYNCED:
            row.unmatched = issue.message
            mark(issue.row, UNMATCHED)
        elif issue.kind != CONFLICT:
            row.notes.append(issue.message)
    conflicted = {c.row for c in plan.conflicts}
    out = [
        _row_outcome(r, row, plan, dry)
        for r, row in sorted(rows.items())
        if not (row.outcome == UNCHANGED and r in conflicted)
    ]
    out.extend(
        RowOutcome(
            c.row,
            c.key,
            CONFLICTED,
            f"{c.header} changed on both sides; waiting for a supervisor",
            c.header,
            c.sheet,
            c.portal,
        )
        for c in plan.conflicts
    )
    out.sort(key=lambda o: (o.row, o.outcome != CONFLICTED))
    return out


_SAID = {
    CREATED: ("", "would be added as a new record"),  # a sync's note names the new key
    UPDATED: ("sheet edits applied", "sheet edits would be applied"),
    WRITTEN: ("portal changes written to the row", "portal changes would be written to the row"),
    APPENDED: ("added to the sheet from the portal", "would be added to the sheet from the portal"),
    UNCHANGED: ("", ""),
}


def _row_outcome(r: int, row: _Row, plan: SyncPlan, dry: bool) -> RowOutcome:
    if row.outcome == REFUSED:
        message = "; ".join(row.errors)
    elif row.outcome == UNMATCHED:
        message = row.unmatched or ""
    else:
        message = _SAID[row.outcome][1 if dry else 0]
    if row.notes and row.outcome != REFUSED:
        message = "; ".join([m for m in (message, *row.notes) if m])
    return RowOutcome(r, row.key, row.outcome, message)
