"""What a sync plans and what the glue answers: the plan, its row messages and results.

:func:`sheets.engine.plan_sync` builds a :class:`SyncPlan`; the glue applies its updates and
creates through the services and answers with :class:`UpdateResult` / :class:`CreateResult`;
:func:`sheets.finalize.finalize` turns both into a :class:`SyncResult`. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sheets.grid import CellWrite
from sheets.trackers import TrackerSpec
from sheets.values import ValueParseError, normalize

Base = dict[str, dict[str, Any]]

#: Row message kinds. "error", "conflict" and "not_synced" describe a condition and are
#: cleared from the status cell once it is gone; a "note" reports something the sync did and
#: stays until the row has something new to say.
ERROR, CONFLICT, NOT_SYNCED, NOTE = "error", "conflict", "not_synced", "note"
STATUS_PREFIX = {
    ERROR: "Error: ",
    CONFLICT: "Conflict: ",
    NOT_SYNCED: "Not synced: ",
    NOTE: "Note: ",
}
CONDITION_PREFIXES = (STATUS_PREFIX[ERROR], STATUS_PREFIX[CONFLICT], STATUS_PREFIX[NOT_SYNCED])
STATUS_SEPARATOR = " | "


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
        return STATUS_PREFIX[self.kind] + self.message


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
class SheetColumn:
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
    _cols: dict[str, SheetColumn] = field(default_factory=dict, repr=False)
    _key_col: int | None = field(default=None, repr=False)
    _status_col: int | None = field(default=None, repr=False)

    def key_write(self, row: int, key: str) -> CellWrite:
        """The cell write that puts a newly created record's key into its row."""
        if self._key_col is None:
            raise ValueError("the sheet has no key column")
        return CellWrite(row, self._key_col + 1, key)

    @property
    def row_keys(self) -> Mapping[int, str | None]:
        """Every used data row (1-based) -> its key (``None``: blank key)."""
        return self._row_keys

    @property
    def key_column(self) -> int | None:
        """The key column (0-based), once found."""
        return self._key_col

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
