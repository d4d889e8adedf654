"""Imports of a team's files (issue 13): each run, and what it did to which record.

An :class:`ImportRun` is one file imported (or dry-run) by one user, with the file's name and
hash and the counts of what happened. An :class:`ImportRecord` names one record the run
created or updated, with the record's version after the run (so undo can tell whether the
record moved on since) and, for an update, the values it had before.
"""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder.models.sqla import Model
from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.core import UTCDateTime, utcnow


class ImportRun(Model):
    """One import of one file: who, which file (name and SHA-256), its counts and state."""

    __tablename__ = "import_run"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    file_name: Mapped[str] = mapped_column(String(255), nullable=False)
    file_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    actor: Mapped[str] = mapped_column(String(120), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="running")
    counts: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"import #{self.id} {self.file_name}"


class ImportRecord(Model):
    """A record an import run created or updated (``before`` holds an update's old values)."""

    __tablename__ = "import_record"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("import_run.id"), nullable=False)
    entity: Mapped[str] = mapped_column(String(40), nullable=False)
    entity_id: Mapped[int] = mapped_column(Integer, nullable=False)
    action: Mapped[str] = mapped_column(String(20), nullable=False)
    version: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_import_record_run", "run_id"),
        Index("ix_import_record_entity", "entity", "entity_id"),
    )


__all__ = ["ImportRecord", "ImportRun"]
