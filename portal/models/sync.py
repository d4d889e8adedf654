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
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.core import UTCDateTime, Versioned, utcnow
from sheets.trackers import CONFLICT_POLICIES, RECORD_KINDS, Column, TrackerSpec

BACKENDS = ("xlsx", "gsheets", "xlwings")
#: what a row deleted from the sheet means: keep the record, cancel it, or ask a Supervisor
DELETED_ROW_POLICIES = ("ignore", "cancel", "ask")


class SyncRunStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"


class DeletedRowStatus(enum.StrEnum):
    IGNORED = "ignored"  # policy ignore: the record is kept as it is
    CANCELLED = "cancelled"  # the record was cancelled (policy cancel, or a Supervisor)
    REVIEW = "review"  # policy ask: waiting for a Supervisor
    KEPT = "kept"  # a Supervisor kept the record
    RESTORED = "restored"  # a Supervisor (or the user, typing the key again) put the row back
    FAILED = "failed"  # policy cancel, but the record could not be cancelled (``message``)


class ConflictStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # a Supervisor chose a value
    CLEARED = "cleared"  # the two sides agree again (or the row left the tracker)


def _sql_in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Tracker(Versioned, Model):
    """One spreadsheet tab bound to one kind of record: where it is, what maps, how to merge.

    ``columns`` is JSON: a list of ``{"header", "field", "type", "owner"}`` objects.
    ``header_row`` is the sheet row of the headers (an attached workbook may have a title
    above them); ``append_records`` off keeps portal records out of a sheet the team brought.
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
    # an attached workbook: the row holding the headers (rows above it are the team's), and
    # whether portal records missing from the sheet are appended to it (off for attached ones)
    header_row: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    append_records: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=true()
    )
    # one row per line without a line id: lines keyed "<order id>/<n>", n from this column
    # (the team's line number), or "#" for the row's position in its order (sheets.line_keys)
    line_key: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    deleted_row_policy: Mapped[str] = mapped_column(
        String(8), nullable=False, default="ignore", server_default="ignore"
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    owner: Mapped[Any] = relationship("User", foreign_keys=[owner_id])

    __table_args__ = (
        CheckConstraint(f"kind IN ({_sql_in(RECORD_KINDS)})", name="ck_tracker_kind"),
        CheckConstraint(
            f"deleted_row_policy IN ({_sql_in(DELETED_ROW_POLICIES)})",
            name="ck_tracker_deleted_row_policy",
        ),
        CheckConstraint(f"backend IN ({_sql_in(BACKENDS)})", name="ck_tracker_backend"),
        CheckConstraint(
            f"conflict_policy IN ({_sql_in(CONFLICT_POLICIES)})", name="ck_tracker_policy"
        ),
        CheckConstraint("interval_seconds >= 0", name="ck_tracker_interval"),
        CheckConstraint("header_row >= 1", name="ck_tracker_header_row"),
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
            header_row=self.header_row or 1,
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


class TrackerShare(Model):
    """A tracker shared with a user besides its owner (they see it, sync it, edit its copy)."""

    __tablename__ = "tracker_share"
    id: Mapped[int] = mapped_column(primary_key=True)
    tracker_id: Mapped[int] = mapped_column(ForeignKey("tracker.id"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("tracker_id", "user_id", name="uq_tracker_share"),)


class SyncDeletedRow(Model):
    """A record whose row was deleted from its tracker, and what became of it.

    While one exists (in any status but ``restored``) the sync keeps the record out of the
    sheet; under the ``ask`` policy it is the review item a Supervisor decides.
    """

    __tablename__ = "sync_deleted_row"
    id: Mapped[int] = mapped_column(primary_key=True)
    tracker_id: Mapped[int] = mapped_column(ForeignKey("tracker.id"), nullable=False)
    key: Mapped[str] = mapped_column(String(80), nullable=False)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_run.id"))
    status: Mapped[str] = mapped_column(String(10), nullable=False, index=True)
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tracker: Mapped[Tracker] = relationship()

    __table_args__ = (Index("ix_sync_deleted_row_tracker_key", "tracker_id", "key"),)

    def __repr__(self) -> str:
        return f"{self.tracker} {self.key}"


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
    # the user who ran the sync (from inside Excel, the xlwings client); None: the schedule
    # or a queued job, whose writes are the tracker's (``sheet:<tracker>``)
    started_by: Mapped[str | None] = mapped_column(String(120))
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
    unchanged: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    tracker: Mapped[Tracker] = relationship()

    __table_args__ = (Index("ix_sync_run_tracker_started", "tracker_id", "started_at"),)

    def __repr__(self) -> str:
        return f"sync #{self.id} of {self.tracker} ({self.status})"


class SyncRunRow(Model):
    """One row's outcome in one sync run (``sheets.outcomes``): every row but the unchanged
    ones, which the run only counts. Values are display text (``sheets.values.display``)."""

    __tablename__ = "sync_run_row"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id"), nullable=False)
    row: Mapped[int] = mapped_column(Integer, nullable=False)
    key: Mapped[str | None] = mapped_column(String(80))
    outcome: Mapped[str] = mapped_column(String(12), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    header: Mapped[str | None] = mapped_column(String(100))
    sheet_value: Mapped[str | None] = mapped_column(Text)
    portal_value: Mapped[str | None] = mapped_column(Text)
    run: Mapped[SyncRun] = relationship()

    __table_args__ = (Index("ix_sync_run_row_run_outcome", "run_id", "outcome", "row"),)

    def __repr__(self) -> str:
        return f"row {self.row} of {self.run}: {self.outcome}"


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
    "DELETED_ROW_POLICIES",
    "ConflictStatus",
    "DeletedRowStatus",
    "SyncConflict",
    "SyncCreateToken",
    "SyncDeletedRow",
    "SyncRun",
    "SyncRunRow",
    "SyncRunStatus",
    "Tracker",
    "TrackerBasePatch",
    "TrackerShare",
    "TrackerSnapshot",
    "columns_json",
    "parse_columns",
]
