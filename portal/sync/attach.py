"""Attach a workbook a team already has: find its sheet and header row, suggest a mapping,
dry-run the first sync, then create the tracker (docs/sync-attach.md).

The CLI (``orderbridge sheets attach``) and the portal's "Attach workbook" flow both go
through here: :func:`propose` reads the sheet and suggests a field per header
(:mod:`sheets.mapping`), :func:`tracker_data` turns the confirmed mapping into a tracker
definition, :func:`dry_run` says what a sync would do with every row without writing
anything, and :func:`attach` creates the tracker through the tracker service.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from portal.models import Tracker, columns_json
from portal.services import trackers
from portal.services.base import Actor, ServiceError, ValidationFailed
from portal.sync import adapters, adopt
from portal.sync.attach_fields import KEY_CHOICES, field_choices
from portal.sync.backends import open_tracker_backend
from portal.sync.kinds import kind_for
from portal.sync.team_keys import EXTERNAL_REF, NO_KEY
from sheets.backends.xlsx_files import check_workbook_file, suffix_problem
from sheets.backends.xlsx_tables import ExcelTable, find_tables
from sheets.engine import Base, plan_sync
from sheets.grid import CellValue, CellWrite, SheetSnapshot
from sheets.header_row import HeaderRowBackend, sheet_rows
from sheets.line_keys import POSITION, with_line_keys
from sheets.mapping import Suggestion, find_header_row, suggest_mapping
from sheets.outcomes import REFUSED, RowOutcome, plan_outcomes
from sheets.trackers import Column, TrackerSpec, header_id

SAMPLE_ROWS = 50
_SHEET_URL = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]{10,})")
DEFAULT_STATUS = "Sync status"
LINE_KEY = "Line key"  # the derived key column of lines without a line id (never written)


class AttachError(ValueError):
    """The workbook, sheet or mapping cannot be attached; the message says why (one line)."""


@contextlib.contextmanager
def _reading(what: str) -> Iterator[None]:
    """A workbook or sheet that cannot be read: AttachError with the backend's one line
    (no such tab or spreadsheet, a workbook over the XLSX_* limits, Google refusing)."""
    try:
        yield
    except AttachError:
        raise
    except (KeyError, ValueError, OSError, RuntimeError) as exc:
        raise AttachError(f"{what}: {str(exc).strip(chr(39) + chr(34))}") from None


@dataclass(frozen=True)
class Source:
    """Where the workbook is: an .xlsx path, or a Google spreadsheet key."""

    backend: str
    location: str


@dataclass(frozen=True)
class _Target:
    backend: str
    location: str
    tab: str
    header_row: int = 1


def source_of(file: str | None = None, url: str | None = None) -> Source:
    """The workbook named by ``file`` (an .xlsx) or ``url`` (Google Sheets); AttachError."""
    if bool(file) == bool(url):
        raise AttachError("give the workbook as --file PATH or --url URL (one of them)")
    if url:
        match = _SHEET_URL.search(url)
        key = match.group(1) if match else url.strip()
        if not re.fullmatch(r"[A-Za-z0-9_-]{10,}", key):
            raise AttachError(f"{url} is not a Google Sheets address (…/spreadsheets/d/<key>/…)")
        return Source("gsheets", key)
    path = Path(str(file)).expanduser().resolve()
    problem = suffix_problem(path)
    if problem is not None:
        raise AttachError(problem)
    if not path.is_file():
        raise AttachError(f"{path} does not exist")
    try:
        check_workbook_file(path)
    except ValueError as exc:
        raise AttachError(str(exc)) from None
    return Source("xlsx", str(path))


def sheet_names(source: Source) -> list[str]:
    """The workbook's sheets, in order."""
    with _reading(f"cannot read the sheets of {source.location}"):
        return _sheet_names(source)


def _sheet_names(source: Source) -> list[str]:
    if source.backend == "xlsx":
        from python_calamine import CalamineWorkbook

        return list(CalamineWorkbook.from_path(source.location).sheet_names)
    from gspread.exceptions import APIError

    backend: Any = open_tracker_backend(_Target("gsheets", source.location, ""))
    try:
        data = backend.retry.run(
            f"reading the tabs of spreadsheet {source.location}",
            lambda: backend.http.fetch_sheet_metadata(
                source.location, params={"fields": "sheets.properties(title)"}
            ),
        )
    except APIError as exc:  # 403/404: no such spreadsheet, or not shared with the account
        raise KeyError(f"Google Sheets answered {exc.response.status_code}") from None
    return [s["properties"]["title"] for s in data.get("sheets", [])]


def tables(source: Source) -> list[ExcelTable]:
    """The Excel tables (ListObjects) of an .xlsx source; [] for Google Sheets."""
    if source.backend != "xlsx":
        return []
    with _reading(f"cannot read {source.location}"):
        return find_tables(Path(source.location).read_bytes())


def read_rows(source: Source, sheet: str) -> list[list[CellValue]]:
    """Every row of ``sheet`` from row 1 (one read)."""
    with _reading(f"cannot read sheet {sheet!r}"):
        return open_tracker_backend(_Target(source.backend, source.location, sheet)).read().rows


@dataclass
class Proposal:
    """A sheet ready to map: where its headers are and what each header may be."""

    sheet: str
    header_row: int
    headers: list[str]
    suggestions: list[Suggestion]
    table: str | None
    rows: list[list[CellValue]]

    @property
    def data_rows(self) -> int:
        return sum(
            1 for row in self.rows[self.header_row :] if any(v not in (None, "") for v in row)
        )


def _where(source: Source, sheet: str | None) -> tuple[str, ExcelTable | None]:
    """The sheet to attach: the one named, else the first table's, else the first sheet."""
    found = tables(source)
    names = sheet_names(source)
    if sheet is not None:
        if sheet not in names:
            raise AttachError(f"no sheet named {sheet!r} (sheets: {', '.join(names)})")
        return sheet, next((t for t in found if t.sheet == sheet and t.header_row), None)
    table = next((t for t in found if t.header_row), None)
    if table is not None:
        return table.sheet, table
    if not names:
        raise AttachError("the workbook has no sheets")
    return names[0], None


def propose(
    source: Source, kind: str, sheet: str | None = None, header_row: int | None = None
) -> Proposal:
    """Read the sheet, find the header row (a table's, or the likeliest) and suggest a field
    for every header."""
    fields = field_choices(kind)
    sheet, table = _where(source, sheet)
    rows = read_rows(source, sheet)
    if header_row is None:
        header_row = table.header_row if table else find_header_row(rows, fields)
    if header_row < 1 or header_row > max(len(rows), 1):
        raise AttachError(f"row {header_row} is outside sheet {sheet!r} ({len(rows)} rows)")
    header = rows[header_row - 1] if rows else []
    headers = [str(h).strip() if h is not None else "" for h in header]
    sample = rows[header_row : header_row + SAMPLE_ROWS]
    return Proposal(
        sheet,
        header_row,
        headers,
        suggest_mapping(headers, sample, fields),
        table.name if table else None,
        rows,
    )


def mapping_file(path: str | Path, headers: Sequence[str]) -> dict[str, str | None]:
    """A mapping from a JSON file ``{"header": "field" | null}``; AttachError if unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AttachError(f"mapping file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str | None) for v in data.values()):
        raise AttachError(
            f'mapping file {path}: must be a JSON object {{"header": "field" or null}}'
        )
    known = {header_id(h) for h in headers}
    unknown = [h for h in data if header_id(h) not in known]
    if unknown:
        raise AttachError(f"mapping file {path}: no column {unknown[0]!r} in the sheet")
    return dict(data)


def mapping_of(proposal: Proposal) -> dict[str, str | None]:
    """header -> suggested field (None: leave the column alone)."""
    return {s.header: s.field for s in proposal.suggestions if s.header}


def tracker_data(
    name: str,
    kind: str,
    source: Source,
    proposal: Proposal,
    mapping: Mapping[str, str | None],
    *,
    key: str | None = None,
    may_create: bool = False,
    status_header: str | None = None,
    append_records: bool = False,
    line_number: str | None = None,
) -> dict[str, Any]:
    """The tracker definition for a confirmed mapping; AttachError naming what is wrong.

    ``append_records``: portal records missing from the sheet are added to it (only when the
    user asks: a sheet the team brought keeps just its own rows by default).
    ``line_number``: a sheet of lines without a line id keys each on its order id and this
    column's line number, or (``position``) the row's position in its order."""
    choices = {f.name: f for f in field_choices(kind)}
    key_choice = KEY_CHOICES[kind].name
    mapped = {h: f for h, f in mapping.items() if f}
    if line_number is not None:
        mapped = _by_line_number(kind, proposal, mapped, line_number, key_choice)
    for header, chosen in mapped.items():
        if chosen not in choices:
            raise AttachError(f"{header}: {kind.replace('_', ' ')} have no field {chosen!r}")
    doubled = sorted({f for f in mapped.values() if list(mapped.values()).count(f) > 1})
    if doubled:
        raise AttachError(f"{choices[doubled[0]].label} is mapped from more than one column")
    if key is not None:
        if header_id(key) not in {header_id(h) for h in proposal.headers}:
            raise AttachError(f"no column {key!r} on row {proposal.header_row} of {proposal.sheet}")
        mapped = {
            h: f for h, f in mapped.items() if f != key_choice and header_id(h) != header_id(key)
        }
        mapped[key] = key_choice
    key_header = next((h for h, f in mapped.items() if f == key_choice), None)
    if key_header is None:
        raise AttachError(
            f"no column holds the {choices[key_choice].label}; name it with --key HEADER"
        )
    kind_spec = kind_for(TrackerSpec(name, kind, key_header, EXTERNAL_REF, ()))
    columns = []
    for header, chosen in mapped.items():
        if chosen == key_choice:
            continue
        known = kind_spec.fields[chosen]
        owner = "both" if known.editable or known.creatable else "portal"
        columns.append(Column(header, chosen, known.type, owner))
    if not columns:
        raise AttachError("map at least one column besides the key")
    return {
        "name": name,
        "kind": kind,
        "backend": source.backend,
        "location": source.location,
        "tab": proposal.sheet,
        "key_header": key_header,
        "key_field": EXTERNAL_REF,
        "columns": columns_json(columns),
        "status_header": status_header or DEFAULT_STATUS,
        "conflict_policy": "flag",
        "interval_seconds": 0,
        "may_create": may_create,
        "append_records": append_records,
        "header_row": proposal.header_row,
        "enabled": True,
        "line_key": None if line_number is None else _line_key(line_number),
    }


def _line_key(line_number: str) -> str:
    return POSITION if line_number.strip().lower() == "position" else line_number


def _by_line_number(
    kind: str,
    proposal: Proposal,
    mapped: dict[str, str],
    line_number: str,
    key_choice: str,
) -> dict[str, str]:
    """The mapping of a sheet without a line id: its line number column (or none) left
    alone, the derived key column (:data:`LINE_KEY`) as the key."""
    if kind != "order_lines":
        raise AttachError("--line-number is for a sheet of order lines (--kind order_lines)")
    if "order_ref" not in mapped.values():
        raise AttachError("lines keyed by their order need the team's order id column mapped")
    known = {header_id(h) for h in proposal.headers}
    if _line_key(line_number) != POSITION and header_id(line_number) not in known:
        raise AttachError(f"no column {line_number!r} on row {proposal.header_row}")
    if header_id(LINE_KEY) in known:
        raise AttachError(f"the sheet has a column {LINE_KEY!r}: it keys the lines itself")
    kept = {
        h: f
        for h, f in mapped.items()
        if f != key_choice and header_id(h) != header_id(line_number)
    }
    return {**kept, LINE_KEY: key_choice}


LINE_NUMBER_NAMES = frozenset(("line", "line no", "line number", "line #", "line nr", "ln"))


def suggest_line_number(
    kind: str, proposal: Proposal, mapping: Mapping[str, str | None]
) -> str | None:
    """The line key the portal suggests for a sheet of lines (``line_number`` of
    :func:`tracker_data`; the portal's default, which the user may change).

    None (the mapped line id keys the lines) unless the team's order id is mapped and no
    column with a unique value per row is mapped as the line id: then the column mapped as
    the line id when its values repeat (a number within each order), else a column named
    like a line number, else ``position``."""
    mapped = {f: h for h, f in mapping.items() if f}
    if kind != "order_lines" or "order_ref" not in mapped:
        return None
    key = mapped.get(KEY_CHOICES[kind].name)
    if key is not None:
        index = proposal.headers.index(key)
        rows = proposal.rows[proposal.header_row :]
        values = [str(r[index]) for r in rows if index < len(r) and r[index] not in (None, "")]
        return None if len(set(values)) == len(values) else key
    named = (h for h in proposal.headers if h and header_id(h) in LINE_NUMBER_NAMES)
    return next(named, POSITION)


def spec_of(data: Mapping[str, Any]) -> TrackerSpec:
    """The engine's view of a tracker definition not stored yet."""
    return Tracker(**{k: v for k, v in data.items()}).spec()


def plan_rows(
    spec: TrackerSpec,
    filter: str | None,
    rows: Sequence[Sequence[CellValue]],
    *,
    append: bool,
    header_row: int,
    base: Base | None = None,
) -> list[RowOutcome]:
    """What a sync would do with every row (``rows`` from the header row), nothing written:
    rows created, updated, written, refused (with the reason), unmatched or left alone. The
    sheet's edits are rehearsed through the services (:func:`adapters.rehearse_updates`), so
    an edit a business rule refuses shows as refused with the service's reason."""
    rows = [list(r) for r in rows]
    adoption = adopt.adopt_rows(spec, filter, rows, dry=True)
    portal = adopt.portal_side(spec, filter, rows, append)
    plan = plan_sync(spec, base or {}, rows, portal)
    if plan.fatal:
        raise AttachError(plan.fatal)
    if spec.key_field == EXTERNAL_REF:  # a blank key is refused by the sync (team_keys.NO_KEY)
        adoption.refused.update({c.row: NO_KEY[spec.kind] for c in plan.creates})
    adoption.mark(plan)
    refused = adapters.rehearse_updates(spec, plan.updates)
    outcomes = [
        replace(o, outcome=REFUSED, message=f"not applied: {refused[o.row]}")
        if o.row in refused and o.header is None
        else o
        for o in adoption.outcomes(plan_outcomes(plan))
    ]
    return sheet_rows(outcomes, header_row)


def dry_run(data: Mapping[str, Any], proposal: Proposal) -> list[RowOutcome]:
    """The first sync of a tracker not created yet, planned against the rows read."""
    rows = proposal.rows[proposal.header_row - 1 :]
    if data.get("line_key"):
        spec = spec_of(data)
        order = next(c.header for c in spec.columns if c.field == "order_ref")
        rows = with_line_keys(rows, LINE_KEY, order, data["line_key"])
    return plan_rows(
        spec_of(data),
        data.get("filter"),
        rows,
        append=bool(data.get("append_records")),
        header_row=proposal.header_row,
    )


def tracker_dry_run(tracker: Tracker) -> list[RowOutcome]:
    """A sync of an existing tracker, planned (its stored base, the sheet now), not done."""
    spec = tracker.spec()
    with _reading(f"cannot read {tracker.name}'s sheet"):
        snapshot: SheetSnapshot = open_tracker_backend(tracker).read()
    base, _ = trackers.load_base(tracker.id, spec)
    return plan_rows(
        spec,
        tracker.filter,
        snapshot.rows,
        append=tracker.append_records,
        header_row=tracker.header_row,
        base=base,
    )


def add_status_column(source: Source, proposal: Proposal, header: str) -> None:
    """Write ``header`` in the first free cell right of the header row (the user allowed a
    status column); nothing if the sheet has that header already."""
    if header_id(header) in {header_id(h) for h in proposal.headers}:
        return
    used = [i for i, h in enumerate(proposal.headers) if h]
    col = (used[-1] + 2) if used else 1
    target = _Target(source.backend, source.location, proposal.sheet)
    with _reading(f"cannot add the column {header!r}"):
        backend = HeaderRowBackend(open_tracker_backend(target), proposal.header_row)
        backend.write([CellWrite(1, col, header)], backend.read())


def attach(data: Mapping[str, Any], actor: Actor) -> Tracker:
    """Create the tracker (the tracker service validates it); AttachError with its reasons."""
    try:
        return trackers.attached.create(dict(data), actor)
    except ValidationFailed as error:
        raise AttachError(
            "; ".join(f"{k}: {', '.join(v)}" for k, v in error.field_errors.items())
        ) from None
    except ServiceError as error:
        raise AttachError(error.message) from None
