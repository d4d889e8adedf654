"""Trackers and the records of their syncs: runs, base snapshots, conflicts, create tokens.

``trackers`` creates and edits tracker definitions (Admin), checked against the record kinds
the sync glue registers (:func:`register_kind`). What a Supervisor decides (flagged conflicts,
deleted rows) is in ``sync_review``. The remaining functions are the sync job's
bookkeeping (``jobs/sync.py``): they are the only code that writes sync runs, snapshots,
conflicts and create tokens. See docs/sync-jobs.md for the commit points.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.models import (
    BACKENDS,
    DELETED_ROW_POLICIES,
    ConflictStatus,
    SyncConflict,
    SyncCreateToken,
    SyncRun,
    SyncRunStatus,
    Tracker,
    TrackerBasePatch,
    TrackerSnapshot,
    columns_json,
    utcnow,
)
from portal.services import audit
from portal.services.base import (
    Actor,
    NotFound,
    RecordService,
    unit_of_work,
)
from portal.services.tracker_kinds import _KEYED, _KINDS, RecordKind, kind_of, register_kind
from sheets.backends.xlsx_files import file_problem, suffix_problem
from sheets.base_codec import base_from_json, base_to_json
from sheets.engine import Base, Conflict
from sheets.trackers import CONFLICT_POLICIES, RECORD_KINDS, TrackerSpec
from sheets.values import encode

TRACKER_VIEW = "Tracker"
ATTACH_VIEW = "AttachWorkbook"  # who may attach a team's workbook (Specialists, Admins)
CONFLICT_VIEW = "SyncConflict"


class TrackerService(RecordService[Tracker]):
    """Tracker definitions: validated against the record kind, backend and location."""

    model = Tracker
    entity = "tracker"
    permission_view = TRACKER_VIEW
    creatable = (
        "name",
        "kind",
        "backend",
        "location",
        "tab",
        "key_header",
        "key_field",
        "columns",
        "status_header",
        "conflict_policy",
        "interval_seconds",
        "may_create",
        "filter",
        "enabled",
        "deleted_row_policy",
        "owner_id",
        "header_row",
        "append_records",
        "line_key",
    )
    editable = tuple(f for f in creatable if f not in ("name", "kind"))

    def create(self, data: Mapping[str, Any], actor: Actor) -> Tracker:
        """Create a tracker; key header/field and columns default to the kind's preset."""
        data = {k: v for k, v in data.items() if v is not None and v != ""}  # blank: default
        kind = _KINDS.get(str(data.get("kind")))
        if kind is not None:
            data.setdefault("key_header", kind.key_header)
            data.setdefault("key_field", kind.key_field)
            data.setdefault("columns", columns_json(kind.preset))
        return super().create(data, actor)

    def defaults(self) -> dict[str, Any]:
        return {
            "backend": "xlsx",
            "status_header": "Sync status",
            "conflict_policy": "flag",
            "interval_seconds": 0,
            "may_create": False,
            "enabled": True,
            "deleted_row_policy": "ignore",
            "header_row": 1,
            "append_records": True,
        }

    def validate(self, sess: Session, record: Tracker, changed: set[str]) -> dict[str, list[str]]:
        errors = _setting_errors(record, look_inside="location" in changed)
        try:
            spec = record.spec()
        except (ValueError, TypeError) as exc:
            errors.setdefault("columns", []).append(str(exc))
            return errors
        kind = kind_of(record)
        if kind is not None:
            _kind_errors(record, spec, kind, errors)
        return errors


def _setting_errors(record: Tracker, look_inside: bool = True) -> dict[str, list[str]]:
    """Errors in the tracker's own settings: kind, backend, policy, interval, location.

    An existing .xlsx location is opened (``look_inside``, when it is set or changed) to
    refuse a file that is not a workbook (an .xls or a CSV renamed .xlsx, a truncated zip).
    """
    errors: dict[str, list[str]] = {}
    if record.kind not in RECORD_KINDS:
        errors["kind"] = [f"must be one of {', '.join(RECORD_KINDS)}"]
    elif record.kind not in _KINDS:
        errors["kind"] = [f"is not supported yet (supported: {', '.join(_KINDS)})"]
    if record.backend not in BACKENDS:
        errors["backend"] = [f"must be one of {', '.join(BACKENDS)}"]
    if record.conflict_policy not in CONFLICT_POLICIES:
        errors["conflict_policy"] = [f"must be one of {', '.join(CONFLICT_POLICIES)}"]
    if record.deleted_row_policy not in DELETED_ROW_POLICIES:
        errors["deleted_row_policy"] = [f"must be one of {', '.join(DELETED_ROW_POLICIES)}"]
    if record.header_row is not None and record.header_row < 1:
        errors["header_row"] = ["must be 1 or more (the row of the headers)"]
    if record.line_key and record.kind != "order_lines":
        errors["line_key"] = ["only a tracker of order lines keys lines by their order"]
    if record.interval_seconds is not None and record.interval_seconds < 0:
        errors["interval_seconds"] = ["must be 0 (manual) or more"]
    if record.backend == "xlsx" and record.location:
        path = Path(record.location).expanduser()
        problem = suffix_problem(path)
        if problem is None and look_inside and path.is_file():
            problem = file_problem(path)
        if problem is not None:
            errors["location"] = [problem]
        elif not path.parent.is_dir():
            errors["location"] = [f"directory {path.parent} does not exist"]
    return errors


def _kind_errors(
    record: Tracker, spec: TrackerSpec, kind: RecordKind, errors: dict[str, list[str]]
) -> None:
    """Errors against the record kind: its key, its fields and types, filters, creating."""
    if record.key_field != kind.key_field:
        keys = " or ".join(k for (name, k) in _KEYED if name == kind.name)
        errors["key_field"] = [f"the key of {kind.name} trackers is {keys}"]
    for col in spec.columns:
        known = kind.fields.get(col.field)
        if known is None:
            problem = f"{kind.name} have no field {col.field!r} (fields: {', '.join(kind.fields)})"
        elif known.type != col.type:
            problem = f"{col.field} is of type {known.type}, not {col.type}"
        elif col.owner != "portal" and not (known.editable or known.creatable):
            problem = f"{col.field} cannot be set from a sheet; make the column owned by the portal"
        else:
            continue
        errors.setdefault("columns", []).append(f"{col.header}: {problem}")
    if record.filter and record.filter not in kind.filters:
        choices = ", ".join(kind.filters) or "none"
        errors["filter"] = [f"unknown filter for {kind.name} (filters: {choices})"]
    if record.may_create and not kind.can_create:
        errors["may_create"] = [f"a tracker cannot add {kind.name.replace('_', ' ')}"]
    if record.deleted_row_policy == "cancel" and not kind.can_cancel:
        what = kind.name.replace("_", " ")
        errors["deleted_row_policy"] = [f"{what} cannot be cancelled; choose ignore or ask"]


trackers = TrackerService()


class AttachedTrackerService(TrackerService):
    """Trackers on a workbook a team attached (``portal.sync.attach``): the same rules as any
    tracker, created by whoever may attach a workbook, not only by Admins; the user who
    attaches it owns it (their My trackers lists it)."""

    permission_view = ATTACH_VIEW

    def create(self, data: Mapping[str, Any], actor: Actor) -> Tracker:
        if actor.user_id is not None and not data.get("owner_id"):
            data = {**data, "owner_id": actor.user_id}
        return super().create(data, actor)


attached = AttachedTrackerService()


def by_name(name: str) -> Tracker:
    tracker = db.session.execute(select(Tracker).where(Tracker.name == name)).scalar_one_or_none()
    if tracker is None:
        raise NotFound(f"no tracker named {name!r}")
    return tracker


# -- base snapshot ---------------------------------------------------------------------------


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _snapshot(tracker_id: int) -> TrackerSnapshot:
    """The tracker's snapshot row, created (in the current transaction) if missing."""
    snap = db.session.execute(
        select(TrackerSnapshot).where(TrackerSnapshot.tracker_id == tracker_id)
    ).scalar_one_or_none()
    if snap is None:
        snap = TrackerSnapshot(tracker_id=tracker_id, base="{}", updated_at=utcnow())
        db.session.add(snap)
        db.session.flush()
    return snap


# tracker id → ((snapshot updated_at, spec), decoded stored base, its JSON form): a worker
# that syncs a tracker again decodes its (large) stored base only when the snapshot row
# changed, and a fold re-encodes only the rows that changed since (:func:`_encoded_base`).
# (None instead of the JSON form when it holds headers the spec no longer maps).
_decoded_bases: dict[int, tuple[tuple[Any, TrackerSpec], Base, dict[str, Any] | None]] = {}


def load_base(tracker_id: int, spec: TrackerSpec) -> tuple[Base, list[int]]:
    """The effective base (the stored base overlaid with the base patches, oldest first),
    and the ids of the patches it contains. Reads in the caller's transaction, which it
    leaves as it is (the caller decides when its transaction ends)."""
    stamp = db.session.execute(
        select(TrackerSnapshot.updated_at).where(TrackerSnapshot.tracker_id == tracker_id)
    ).scalar_one_or_none()
    cached = _decoded_bases.get(tracker_id)
    if cached is not None and stamp is not None and cached[0] == (stamp, spec):
        base = dict(cached[1])  # rows are replaced, never changed in place
    else:
        text = db.session.execute(
            select(TrackerSnapshot.base).where(TrackerSnapshot.tracker_id == tracker_id)
        ).scalar_one_or_none()
        raw = json.loads(text or "{}")
        stored = base_from_json(spec, raw)
        if stamp is not None:
            headers = {c.header for c in spec.columns}
            exact = all(headers.issuperset(row) for row in raw.values())
            _decoded_bases[tracker_id] = ((stamp, spec), stored, raw if exact else None)
        base = dict(stored)
    ids = []
    for patch_id, key, cells in db.session.execute(
        select(TrackerBasePatch.id, TrackerBasePatch.key, TrackerBasePatch.cells)
        .where(TrackerBasePatch.tracker_id == tracker_id)
        .order_by(TrackerBasePatch.id)
    ):
        ids.append(patch_id)
        row = base_from_json(spec, {key: json.loads(cells)})[key]
        base[key] = {**base.get(key, {}), **row}
    return base, ids


def patch_base(
    tracker_id: int, spec: TrackerSpec, cells: Mapping[str, Mapping[str, Any]]
) -> list[int]:
    """Record agreed base cells (key -> header -> value) in the current transaction (with the
    writes they belong to), one patch row per key, inserted together; the patches' ids."""
    now = utcnow()
    rows = [
        {"tracker_id": tracker_id, "key": key, "cells": _dumps(row), "created_at": now}
        for key, row in base_to_json(spec, cells).items()
    ]
    if not rows:
        return []
    # Core, ids in any order (they are only deleted as a set): batched by insertmanyvalues,
    # where asking for the parameters' order inserted row by row on SQLite
    table = TrackerBasePatch.__table__
    return list(db.session.execute(insert(table).returning(table.c.id), rows).scalars())


def seed_base(tracker_id: int, spec: TrackerSpec, base: Base) -> None:
    """Store ``base`` as the tracker's whole base (its tab was just written with exactly these
    values, e.g. by ``sheets init``); pending base patches are dropped."""
    with unit_of_work() as sess:
        snap = _snapshot(tracker_id)
        snap.base = _dumps(base_to_json(spec, base))
        snap.updated_at = utcnow()
        sess.execute(delete(TrackerBasePatch).where(TrackerBasePatch.tracker_id == tracker_id))


# -- create tokens ---------------------------------------------------------------------------


def create_tokens(tracker_id: int) -> dict[str, str]:
    """token -> record key of creates whose key may not be in the sheet yet."""
    rows = db.session.execute(
        select(SyncCreateToken.token, SyncCreateToken.record_key).where(
            SyncCreateToken.tracker_id == tracker_id
        )
    ).all()
    return dict(rows)


def add_create_token(tracker_id: int, token: str, key: str) -> None:
    """Remember a create in the current transaction (the one creating the record)."""
    db.session.add(SyncCreateToken(tracker_id=tracker_id, token=token, record_key=key))


# -- sync runs -------------------------------------------------------------------------------

INTERRUPTED = (
    "the sync stopped before it finished (worker killed or crashed); a later sync took over"
)


def start_run(tracker_id: int, job_id: str, started_by: str | None = None) -> SyncRun:
    """Record a sync as running (committed at once), with the name of the person who ran it
    (``started_by``; None for a scheduled or queued sync). Called with the tracker's lock
    held, so any other run still marked running was interrupted."""
    with unit_of_work() as sess:
        now = utcnow()
        sess.execute(
            update(SyncRun)
            .where(
                SyncRun.tracker_id == tracker_id,
                SyncRun.status == SyncRunStatus.RUNNING.value,
            )
            .values(status=SyncRunStatus.INTERRUPTED.value, finished_at=now, error=INTERRUPTED)
        )
        run = SyncRun(tracker_id=tracker_id, job_id=job_id, started_at=now, started_by=started_by)
        sess.add(run)
    return run


def skip_run(tracker_id: int, job_id: str, reason: str) -> SyncRun:
    """Record a sync that did not run (another sync of the tracker held the lock)."""
    with unit_of_work() as sess:
        now = utcnow()
        run = SyncRun(
            tracker_id=tracker_id,
            job_id=job_id,
            started_at=now,
            finished_at=now,
            status=SyncRunStatus.SKIPPED.value,
            duration_seconds=0.0,
            error=reason,
        )
        sess.add(run)
    return run


def fail_run(run_id: int, error: str, counts: Mapping[str, int], duration: float) -> None:
    """Record a sync that raised (the job may retry; a retry starts a new run)."""
    with unit_of_work() as sess:
        run = sess.get(SyncRun, run_id)
        if run is None:
            return
        _set_counts(run, counts)
        run.status = SyncRunStatus.FAILED.value
        run.finished_at = utcnow()
        run.duration_seconds = round(duration, 3)
        run.error = error[:4000]


def _set_counts(run: SyncRun, counts: Mapping[str, int]) -> None:
    for name in ("rows_read", "applied", "created", "written", "conflicts", "errors", "attempts"):
        if name in counts:
            setattr(run, name, counts[name])


FOLD_AFTER = 2000  # base patch rows kept before the snapshot is rewritten


def finish_sync(
    tracker: Tracker,
    spec: TrackerSpec,
    run_id: int,
    *,
    base: Base | None,
    loaded: Base | None = None,
    patches: Iterable[int] = (),
    conflicts: Iterable[Conflict] = (),
    counts: Mapping[str, int],
    duration: float,
    error: str | None = None,
    actor: Actor | None = None,
) -> None:
    """The sync's last transaction: base, conflicts, create tokens and the run, all or nothing.
    Conflicts are opened in the audit trail as ``actor`` (default ``sheet:<tracker>``).

    ``base`` None keeps the stored base (a sync that stopped before merging). Otherwise the
    cells that differ from ``loaded`` (the effective base the merge started from) are stored
    as base patches; when keys left the base or patches pile up, the snapshot is rewritten
    instead and ``patches`` (the ones ``base`` contains) are deleted. Patches added meanwhile
    by others (a Supervisor resolving a conflict) always stay and apply on top.
    """
    with unit_of_work() as sess:
        if base is not None:
            _store_base(tracker.id, spec, base, loaded or {}, list(patches))
            _record_conflicts(tracker, spec, conflicts, actor or Actor.system(spec.actor))
            sess.execute(delete(SyncCreateToken).where(SyncCreateToken.tracker_id == tracker.id))
        run = sess.get(SyncRun, run_id)
        if run is not None:
            _set_counts(run, counts)
            run.status = SyncRunStatus.FAILED.value if error else SyncRunStatus.SUCCEEDED.value
            run.error = error
            run.finished_at = utcnow()
            run.duration_seconds = round(duration, 3)


def _store_base(
    tracker_id: int, spec: TrackerSpec, base: Base, loaded: Base, patches: list[int]
) -> None:
    sess = db.session
    removed = any(key not in base for key in loaded)
    diff: dict[str, dict[str, Any]] = {}
    for key, row in base.items():
        old = loaded.get(key)
        if old is None:
            diff[key] = row
        elif row is not old and row != old:
            diff[key] = {h: v for h, v in row.items() if h not in old or old[h] != v}
    if not removed and not diff:
        return
    kept = sess.execute(
        select(func.count())
        .select_from(TrackerBasePatch)
        .where(TrackerBasePatch.tracker_id == tracker_id)
    ).scalar_one()
    if removed or kept + len(diff) > FOLD_AFTER:
        snap = _snapshot(tracker_id)
        encoded = _encoded_base(tracker_id, spec, base)
        snap.base = _dumps(encoded)
        snap.updated_at = utcnow()
        # Keyed by the new stamp: if this transaction rolls back, the stamp never matches.
        _decoded_bases[tracker_id] = ((snap.updated_at, spec), dict(base), encoded)
        for i in range(0, len(patches), 500):
            sess.execute(
                delete(TrackerBasePatch).where(TrackerBasePatch.id.in_(patches[i : i + 500]))
            )
        return
    now = utcnow()
    encoded = base_to_json(spec, diff)
    sess.add_all(
        TrackerBasePatch(tracker_id=tracker_id, key=key, cells=_dumps(cells), created_at=now)
        for key, cells in encoded.items()
    )


def _encoded_base(tracker_id: int, spec: TrackerSpec, base: Base) -> dict[str, Any]:
    """``base_to_json(spec, base)``, reusing the JSON form of the rows that are still the
    decoded stored base's own (the merge keeps an unchanged row's object; rows are replaced,
    never changed in place): a fold after a 10,000-row paste encodes those rows, not 50,000."""
    cached = _decoded_bases.get(tracker_id)
    if cached is None or cached[0][1] != spec or cached[2] is None:
        return base_to_json(spec, base)
    _, stored, raw = cached
    changed = base_to_json(spec, {k: row for k, row in base.items() if stored.get(k) is not row})
    return {k: changed[k] if k in changed else raw[k] for k in base}


def json_value(type_: str, value: Any) -> str:
    return json.dumps(encode(type_, value))


def _record_conflicts(
    tracker: Tracker, spec: TrackerSpec, conflicts: Iterable[Conflict], actor: Actor
) -> None:
    """Open a SyncConflict per flagged cell (once), and clear open ones that are gone."""
    sess = db.session
    open_rows = {
        (c.key, c.header): c
        for c in sess.execute(
            select(SyncConflict).where(
                SyncConflict.tracker_id == tracker.id,
                SyncConflict.status == ConflictStatus.OPEN.value,
            )
        ).scalars()
    }
    seen: set[tuple[str, str]] = set()
    for conflict in conflicts:
        type_ = spec.column(conflict.header).type
        values = {
            "base_value": json_value(type_, conflict.base),
            "sheet_value": json_value(type_, conflict.sheet),
            "portal_value": json_value(type_, conflict.portal),
        }
        ident = (conflict.key, conflict.header)
        seen.add(ident)
        row = open_rows.get(ident)
        if row is None:
            row = SyncConflict(
                tracker_id=tracker.id,
                key=conflict.key,
                header=conflict.header,
                field=conflict.field,
                status=ConflictStatus.OPEN.value,
                **values,
            )
            sess.add(row)
            sess.flush()
            audit.record(
                actor,
                "sync_conflict",
                row.id,
                "open",
                after={
                    "tracker": tracker.name,
                    "key": conflict.key,
                    "header": conflict.header,
                    "sheet": conflict.sheet,
                    "portal": conflict.portal,
                },
            )
        else:
            for name, value in values.items():
                if getattr(row, name) != value:
                    setattr(row, name, value)
    now = utcnow()
    for ident, row in open_rows.items():
        if ident not in seen:
            row.status = ConflictStatus.CLEARED.value
            row.resolved_by = actor.name
            row.resolved_at = now


__all__ = [
    "CONFLICT_VIEW",
    "TRACKER_VIEW",
    "RecordKind",
    "TrackerService",
    "add_create_token",
    "by_name",
    "create_tokens",
    "fail_run",
    "finish_sync",
    "json_value",
    "kind_of",
    "load_base",
    "patch_base",
    "register_kind",
    "seed_base",
    "skip_run",
    "start_run",
    "trackers",
]
