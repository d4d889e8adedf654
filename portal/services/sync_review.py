"""What a Supervisor decides about a sync: flagged conflicts, and rows deleted from a sheet.

:func:`resolve` answers a flagged conflict. Deleted rows: the sync job reports the records
whose row is gone (``SyncPlan.deleted``) to :func:`record_deletions`, which applies the
tracker's ``deleted_row_policy`` (ignore: keep the record; cancel: cancel it through its
service; ask: a review item) and keeps those records out of the sheet from then on
(:func:`hidden_keys`) until a Supervisor puts the row back (:func:`decide`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    ConflictStatus,
    DeletedRowStatus,
    SyncConflict,
    SyncDeletedRow,
    Tracker,
    utcnow,
)
from portal.services import audit
from portal.services.base import (
    Actor,
    ConflictError,
    PermissionDenied,
    ServiceError,
    ValidationFailed,
    unit_of_work,
)
from portal.services.tracker_kinds import require_kind
from portal.services.trackers import CONFLICT_VIEW, json_value, patch_base
from sheets.engine import Conflict, resolve_conflict
from sheets.values import ValueParseError, decode, display, normalize

RESOLVE_CHOICES = ("sheet", "portal", "value")
DELETED_VIEW = "SyncDeletedRow"
DECISIONS = {
    "cancel": "cancel the record",
    "keep": "keep the record",
    "restore": "put the row back",
}


def conflict_values(conflict: SyncConflict) -> dict[str, Any]:
    """The conflict's base, sheet and portal values, typed."""
    spec = conflict.tracker.spec()
    type_ = spec.column(conflict.header).type
    return {
        name: decode(type_, json.loads(getattr(conflict, f"{name}_value")))
        for name in ("base", "sheet", "portal")
    }


def resolve(conflict: SyncConflict, choice: str, actor: Actor, value: Any = None) -> SyncConflict:
    """Resolve a flagged conflict with the sheet's value, the portal's, or a typed ``value``.

    The chosen value is applied to the record through its service (as ``actor``), and the
    cell's base becomes the sheet value the Supervisor saw (``engine.resolve_conflict``), so
    the next sync writes the chosen value into the cell.
    """
    if not actor.can("can_resolve", CONFLICT_VIEW):
        raise PermissionDenied(f"{actor.name} may not resolve sync conflicts")
    if choice not in RESOLVE_CHOICES:
        raise ValidationFailed({"choice": [f"must be one of {', '.join(RESOLVE_CHOICES)}"]})
    if conflict.status != ConflictStatus.OPEN.value:
        raise ConflictError(f"this conflict is already {conflict.status}")
    tracker = conflict.tracker
    spec = tracker.spec()
    column = spec.column(conflict.header)
    seen = conflict_values(conflict)
    if choice == "value":
        try:
            chosen = normalize(column.type, value)
        except ValueParseError as exc:
            raise ValidationFailed({"value": [str(exc)]}) from None
    else:
        chosen = seen[choice]
    kind = require_kind(tracker)
    with unit_of_work():
        now = kind.current(conflict.key, None, [column.field])
        if normalize(column.type, now.get(column.field)) != chosen:
            kind.update(conflict.key, {column.field: chosen}, actor, tracker.name)
        agreed = resolve_conflict(
            {},
            Conflict(
                conflict.key,
                conflict.header,
                seen["base"],
                seen["sheet"],
                seen["portal"],
                0,
                column.field,
            ),
        )
        patch_base(tracker.id, spec, {conflict.key: agreed[conflict.key]})
        conflict.status = ConflictStatus.RESOLVED.value
        conflict.resolved_by = actor.name
        conflict.resolution = json_value(column.type, chosen)
        conflict.resolved_at = utcnow()
        audit.record(
            actor,
            "sync_conflict",
            conflict.id,
            "resolve",
            before={"status": ConflictStatus.OPEN.value},
            after={"status": conflict.status, "value": chosen},
            detail={
                "tracker": tracker.name,
                "key": conflict.key,
                "header": conflict.header,
                "choice": choice,
                "shown": display(chosen),
            },
        )
    return conflict


# -- deleted rows ----------------------------------------------------------------------------


def hidden_keys(tracker_id: int) -> set[str]:
    """Keys whose row was deleted from the tracker and not put back: kept out of the sheet."""
    return set(
        db.session.execute(
            select(SyncDeletedRow.key).where(
                SyncDeletedRow.tracker_id == tracker_id,
                SyncDeletedRow.status != DeletedRowStatus.RESTORED.value,
            )
        ).scalars()
    )


def restore_typed_back(tracker_id: int, keys: Iterable[str], actor: Actor) -> None:
    """Rows whose key was typed into the sheet again: their deletion is over."""
    wanted = set(keys)
    if not wanted:
        return
    with unit_of_work() as sess:
        for row in sess.execute(
            select(SyncDeletedRow).where(
                SyncDeletedRow.tracker_id == tracker_id,
                SyncDeletedRow.status != DeletedRowStatus.RESTORED.value,
                SyncDeletedRow.key.in_(wanted),
            )
        ).scalars():
            _decided(row, DeletedRowStatus.RESTORED, actor, "the row is back in the sheet")


def record_deletions(
    tracker: Tracker, run_id: int, keys: Iterable[str], actor: Actor
) -> dict[str, str]:
    """Apply the tracker's deleted-row policy to each key; key -> what was done (the row's
    outcome message). Each deletion commits on its own, with its cancellation if any."""
    policy = tracker.deleted_row_policy
    done = {
        "cancel": (DeletedRowStatus.CANCELLED, "record cancelled"),
        "ask": (DeletedRowStatus.REVIEW, "waiting for a supervisor"),
    }.get(policy, (DeletedRowStatus.IGNORED, "record kept"))
    said: dict[str, str] = {}
    for key in keys:
        try:
            with unit_of_work():
                if policy == "cancel":
                    require_kind(tracker).cancel(key, actor, tracker.name)
                row = _add_deleted(tracker, run_id, key, *done, actor)
        except ServiceError as error:
            failed = (DeletedRowStatus.FAILED, f"not cancelled: {error.message}")
            with unit_of_work():
                row = _add_deleted(tracker, run_id, key, *failed, actor)
        said[key] = f"row deleted from the sheet; {row.message}"
    return said


def _add_deleted(
    tracker: Tracker,
    run_id: int,
    key: str,
    status: DeletedRowStatus,
    message: str,
    actor: Actor,
) -> SyncDeletedRow:
    row = SyncDeletedRow(
        tracker_id=tracker.id,
        key=key,
        run_id=run_id,
        status=status.value,
        message=message,
        created_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    audit.record(
        actor,
        "sync_deleted_row",
        row.id,
        "deleted",
        after={"tracker": tracker.name, "key": key, "status": row.status},
    )
    return row


def decide(row: SyncDeletedRow, choice: str, actor: Actor) -> SyncDeletedRow:
    """A Supervisor's answer to a deleted row: cancel the record, keep it, or put the row back
    (the next sync appends it)."""
    if not actor.can("can_resolve", DELETED_VIEW):
        raise PermissionDenied(f"{actor.name} may not decide deleted rows")
    if choice not in DECISIONS:
        raise ValidationFailed({"choice": [f"must be one of {', '.join(DECISIONS)}"]})
    if row.status != DeletedRowStatus.REVIEW.value:
        raise ConflictError(f"this deleted row is already {row.status}")
    with unit_of_work():
        if choice == "cancel":
            require_kind(row.tracker).cancel(row.key, actor, row.tracker.name)
            _decided(row, DeletedRowStatus.CANCELLED, actor, "record cancelled by a supervisor")
        elif choice == "keep":
            _decided(row, DeletedRowStatus.KEPT, actor, "record kept by a supervisor")
        else:
            _decided(row, DeletedRowStatus.RESTORED, actor, "row put back by a supervisor")
    return row


def _decided(row: SyncDeletedRow, status: DeletedRowStatus, actor: Actor, message: str) -> None:
    before = row.status
    row.status, row.message = status.value, message
    row.decided_by, row.decided_at = actor.name, utcnow()
    audit.record(
        actor,
        "sync_deleted_row",
        row.id,
        "decide",
        before={"status": before},
        after={"status": row.status},
        detail={"tracker": row.tracker.name, "key": row.key},
    )


__all__ = [
    "DECISIONS",
    "DELETED_VIEW",
    "RESOLVE_CHOICES",
    "conflict_values",
    "decide",
    "hidden_keys",
    "record_deletions",
    "resolve",
    "restore_typed_back",
]
