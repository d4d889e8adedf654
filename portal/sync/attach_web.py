"""The portal's "Attach workbook" flow, apart from its pages: the draft a user builds across
the steps, uploaded workbooks kept under the instance folder, and the dry run as a download.

The pages (``portal/views/attach.py``) only read forms and render; what they do is here and in
:mod:`portal.sync.attach`.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from portal.services.exports import Column, ExportKind, csv_chunks, write_xlsx
from portal.services.trackers import ATTACH_VIEW
from portal.sync import attach
from portal.sync.attach_fields import ATTACH_KINDS
from sheets.backends.xlsx_files import check_workbook_bytes, suffix_problem
from sheets.outcomes import RowOutcome

UPLOADS = "attached"  # folder under the instance folder
MAX_NAME = 80
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")


@dataclass
class Draft:
    """What the user chose so far (kept in their session between the steps)."""

    name: str
    kind: str
    backend: str
    location: str
    sheet: str | None = None
    header_row: int | None = None
    mapping: dict[str, str | None] | None = None
    may_create: bool = False
    status_column: bool = False
    append_records: bool = False
    # lines without a line id: a header, "position", "" (the line id keys them); None: the
    # suggestion (attach.suggest_line_number)
    line_number: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, data: Mapping[str, Any] | None) -> Draft | None:
        """The draft kept in the session (None: none, or not readable)."""
        if not data:
            return None
        try:
            return cls(**data)
        except TypeError:
            return None

    def dump(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def source(self) -> attach.Source:
        return attach.Source(self.backend, self.location)


def check_name(name: str) -> str:
    """A tracker name as typed, or AttachError saying what a name may be."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not _NAME.match(name):
        raise attach.AttachError(
            "name: letters, digits, spaces, '.', '_' or '-', up to 80 characters"
        )
    return name


def check_kind(kind: str) -> str:
    if kind not in ATTACH_KINDS:
        raise attach.AttachError(f"kind: choose one of {', '.join(ATTACH_KINDS)}")
    return kind


def store_upload(filename: str, data: bytes, instance: str | Path) -> Path:
    """Keep an uploaded workbook under ``<instance>/attached/``; AttachError for a file that
    is not an .xlsx workbook (the message says what it is and what to do)."""
    problem = suffix_problem(Path(filename or "upload"))
    if problem is not None:
        raise attach.AttachError(problem)
    if not data:
        raise attach.AttachError("the uploaded file is empty")
    try:
        check_workbook_bytes(Path(filename), data)
    except ValueError as exc:
        raise attach.AttachError(str(exc)) from None
    folder = Path(instance) / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(filename).stem)[:60] or "workbook"
    target = folder / f"{uuid.uuid4().hex[:12]}-{stem}{Path(filename).suffix.lower()}"
    target.write_bytes(data)
    return target


def propose(draft: Draft) -> attach.Proposal:
    return attach.propose(draft.source, draft.kind, draft.sheet, draft.header_row)


def line_number(draft: Draft, proposal: attach.Proposal) -> str | None:
    """How the draft keys lines without a line id (the user's choice, or the suggestion);
    None: by the mapped line id."""
    if draft.line_number is not None:
        return draft.line_number or None
    mapping = draft.mapping if draft.mapping is not None else attach.mapping_of(proposal)
    return attach.suggest_line_number(draft.kind, proposal, mapping)


def tracker_data(draft: Draft, proposal: attach.Proposal) -> dict[str, Any]:
    """The tracker the draft describes (its mapping, or the suggested one)."""
    mapping = draft.mapping if draft.mapping is not None else attach.mapping_of(proposal)
    return attach.tracker_data(
        draft.name,
        draft.kind,
        draft.source,
        proposal,
        mapping,
        may_create=draft.may_create,
        status_header=attach.DEFAULT_STATUS if draft.status_column else None,
        append_records=draft.append_records,
        line_number=line_number(draft, proposal),
    )


_COLUMNS = (
    Column("row", "Row", "int", 8),
    Column("key", "Key", "text", 18),
    Column("outcome", "Outcome", "text", 12),
    Column("message", "Reason / what happens", "text", 70),
)
_EXPORT = ExportKind(
    name="dry_run",
    title="Dry run",
    permission_view=ATTACH_VIEW,
    columns=_COLUMNS,
    statuses=(),
    query=lambda: None,  # type: ignore[arg-type,return-value]
    date_column=None,
    is_datetime=False,
    status_column=None,
    rows=lambda batch: [],
)


def _tuples(outcomes: Iterable[RowOutcome]) -> Iterable[tuple]:
    return ((o.row, o.key, o.outcome, o.message) for o in outcomes)


def export(outcomes: list[RowOutcome], fmt: str) -> bytes:
    """The dry run's rows as CSV or XLSX (text that looks like a formula stays text)."""
    if fmt == "csv":
        return b"".join(csv_chunks(_EXPORT, _tuples(outcomes)))
    buffer = io.BytesIO()
    write_xlsx(_EXPORT, _tuples(outcomes), buffer)
    return buffer.getvalue()
