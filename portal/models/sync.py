"""Two-way sync models: trackers, their base snapshots, sync runs, conflicts and create tokens.

A :class:`Tracker` binds one spreadsheet tab to one kind of record (DESIGN.md section 5).
Its base snapshot (:class:`TrackerSnapshot`) holds the values both sides agreed on at the end
of the last sync; :class:`TrackerBasePatch` rows hold cells agreed since, committed together
with each record a sync applied (or conflict a Supervisor resolved), so a crash never loses
them.
Records change only through ``portal.services.trackers`` and the sync job.
"""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any

from flask_appbuilder.models.sqla import Model
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.core import UTCDateTime, Versioned, utcnow
from sheets.trackers import CONFLICT_POLICIES, RECORD_KINDS, Column, TrackerSpec

BACKENDS = ("xlsx", "gsheets", "xlwings")


class SyncRunStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"


class ConflictStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # a Supervisor chose a value
    CLEARED = "cleared"  # the two sides agree again (or the row left the tracker)


def _sql_in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Tracker(Versioned, Model):
    """One spreadsheet tab bound to one kind of record: where it is, what maps, how to merge.

    ``columns`` is JSON: a list of ``{"header", "field", "type", "owner"}`` objects.
    ``interval_seconds`` is the schedule (0 = manual only); ``filter`` limits the records
    (``open`` = open orders only; empty = all).
    """

    __tablename__ = "tracker"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    backend: Mapped[str] = mapped_column(String(10), nullable=False, default="xlsx")
    location: Mapped[str] = mapped_column(String(500), nullable=False)
    tab: Mapped[str] = mapped_column(String(100), nullable=False)
    key_header: Mapped[str] = mapped_column(String(100), nullable=False)
    key_field: Mapped[str] = mapped_column(String(60), nullable=False)
    columns: Mapped[str] = mapped_column(Text, nullable=False)
    status_header: Mapped[str] = mapped_column(String(100), nullable=False, default="Sync status")
    conflict_policy: Mapped[str] = mapped_column(String(12), nullable=False, default="flag")
    interval_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    may_create: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    filter: Mapped[str | None] = mapped_column(String(20))
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        CheckConstraint(f"kind IN ({_sql_in(RECORD_KINDS)})", name="ck_tracker_kind"),
        CheckConstraint(f"backend IN ({_sql_in(BACKENDS)})", name="ck_tracker_backend"),
        CheckConstraint(
            f"conflict_policy IN ({_sql_in(CONFLICT_POLICIES)})", name="ck_tracker_policy"
        ),
        CheckConstraint("interval_seconds >= 0", name="ck_tracker_interval"),
    )

    def column_list(self) -> list[Column]:
        """The mapped columns (raises ``ValueError`` on malformed JSON)."""
        return parse_columns(self.columns)

    def spec(self) -> TrackerSpec:
        """What the sync engine needs to know about this tracker."""
        return TrackerSpec(
            name=self.name,
            kind=self.kind,
            key_header=self.key_header,
            key_field=self.key_field,
            columns=tuple(self.column_list()),
            status_header=self.status_header,
            conflict_policy=self.conflict_policy,
            may_create=self.may_create,
        )

    def __repr__(self) -> str:
        return self.name


def parse_columns(text: str) -> list[Column]:
    """Columns from their JSON text; ``ValueError`` naming what is wrong."""
    try:
        data: Any = json.loads(text or "")
    except json.JSONDecodeError as exc:
        raise ValueError(f"columns are not valid JSON: {exc}") from None
    if not isinstance(data, list) or not data:
        raise ValueError("columns must be a non-empty JSON list")
    out: list[Column] = []
    for i, item in enumerate(data, start=1):
        if not isinstance(item, dict) or not {"header", "field"} <= set(item):
            raise ValueError(f"column {i} must be an object with header and field")
        extra = set(item) - {"header", "field", "type", "owner"}
        if extra:
            raise ValueError(f"column {i}: unknown keys {', '.join(sorted(extra))}")
        out.append(Column(**{k: str(v) for k, v in item.items()}))
    return out


def columns_json(columns: list[Column] | tuple[Column, ...]) -> str:
    """The JSON text of ``columns`` (inverse of :func:`parse_columns`)."""
    return json.dumps(
        [{"header": c.header, "field": c.field, "type": c.type, "owner": c.owner} for c in columns]
    )


class TrackerSnapshot(Model):
    """The base of a tracker's three-way merge (``engine.base_to_json``), one row per tracker.

    Rewritten once per sync, in the sync's final transaction. The effective base is this
    overlaid with the tracker's :class:`TrackerBasePatch` rows.
    """

    __tablename__ = "tracker_snapshot"
    id: Mapped[int] = mapped_column(primary_key=True)
    tracker_id: Mapped[int] = mapped_column(ForeignKey("tracker.id"), unique=True, nullable=False)
    base: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    tracker: Mapped[Tracker] = relationship()


class TrackerBasePatch(Model):
    """Base cells agreed since the snapshot was stored: ``cells`` is JSON header -> value.

    Inserted in the same transaction as each record a sync applies (and each conflict a
    Supervisor resolves), so a crash before the sync's final commit never loses them; that
    commit folds them into the snapshot and deletes them. Small rows: the 50,000-row snapshot
    is never rewritten per record.
    """

    __tablename__ = "tracker_base_patch"
    id: Mapped[int] = mapped_column(primary_key=True)
    tracker_id: Mapped[int] = mapped_column(ForeignKey("tracker.id"), nullable=False, index=True)
    key: Mapped[str] = mapped_column(String(80), nullable=False)
    cells: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class SyncRun(Model):
    """One sync of one tracker: when, how it ended, and what it did."""

    __tablename__ = "sync_run"
    id: Mapped[int] = mapped_column(primary_key=True)
    tracker_id: Mapped[int] = mapped_column(ForeignKey("tracker.id"), nullable=False)
    job_id: Mapped[str] = mapped_column(String(64), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(
        String(12), nullable=False, default=SyncRunStatus.RUNNING.value
    )
    rows_read: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    applied: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    written: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    conflicts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    errors: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    tracker: Mapped[Tracker] = relationship()

    __table_args__ = (Index("ix_sync_run_tracker_started", "tracker_id", "started_at"),)

    def __repr__(self) -> str:
        return f"sync #{self.id} of {self.tracker} ({self.status})"


class SyncConflict(Model):
    """A cell both sides changed differently under the ``flag`` policy, until resolved.

    Values are JSON text of ``sheets.values.encode`` for the column's type.
    """

    __tablename__ = "sync_conflict"
    id: Mapped[int] = mapped_column(primary_key=True)
    tracker_id: Mapped[int] = mapped_column(ForeignKey("tracker.id"), nullable=False)
    key: Mapped[str] = mapped_column(String(80), nullable=False)
    header: Mapped[str] = mapped_column(String(100), nullable=False)
    field: Mapped[str] = mapped_column(String(60), nullable=False)
    base_value: Mapped[str] = mapped_column(Text, nullable=False, default="null")
    sheet_value: Mapped[str] = mapped_column(Text, nullable=False, default="null")
    portal_value: Mapped[str] = mapped_column(Text, nullable=False, default="null")
    status: Mapped[str] = mapped_column(
        String(10), nullable=False, default=ConflictStatus.OPEN.value, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    resolved_by: Mapped[str | None] = mapped_column(String(120))
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tracker: Mapped[Tracker] = relationship()

    __table_args__ = (Index("ix_sync_conflict_tracker_key", "tracker_id", "key", "header"),)

    def __repr__(self) -> str:
        return f"{self.tracker} {self.key} / {self.header}"


class SyncCreateToken(Model):
    """A record a sync created from a blank-key row whose key is not yet in the sheet.

    Inserted in the same transaction as the record; a retried sync that sees the same row
    (same ``RecordCreate.token``) returns ``record_key`` instead of creating again. Deleted once
    the key is in the sheet, so an identical row typed later creates a new record.
    """

    __tablename__ = "sync_create_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    tracker_id: Mapped[int] = mapped_column(ForeignKey("tracker.id"), nullable=False)
    token: Mapped[str] = mapped_column(String(64), nullable=False)
    record_key: Mapped[str] = mapped_column(String(80), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("tracker_id", "token", name="uq_sync_create_token"),)


__all__ = [
    "BACKENDS",
    "ConflictStatus",
    "SyncConflict",
    "SyncCreateToken",
    "SyncRun",
    "SyncRunStatus",
    "Tracker",
    "TrackerBasePatch",
    "TrackerSnapshot",
    "columns_json",
    "parse_columns",
]
