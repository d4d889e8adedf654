"""Shared vocabulary between the sync engine and the sheet backends.

Coordinates are 1-based like a spreadsheet: row 1 is the header row, column 1 is column A.
Backends read a whole tab into a :class:`SheetSnapshot` and write back a list of
:class:`CellWrite` operations; the engine never does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

CellValue = str | int | float | Decimal | bool | date | datetime | None


@dataclass(frozen=True)
class CellWrite:
    """Set one cell to a value. Idempotent: applying it twice gives the same sheet."""

    row: int
    col: int
    value: CellValue


@dataclass
class SheetSnapshot:
    """The values of one tab as read, plus an opaque token naming the version read."""

    rows: list[list[CellValue]]
    fingerprint: str | None = None
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def header(self) -> list[CellValue]:
        return self.rows[0] if self.rows else []


class SheetChangedError(RuntimeError):
    """The sheet changed between read and write; nothing was written, the sync must retry."""


class SheetBackend(Protocol):
    """What every backend (xlsx, gsheets, xlwings) provides to the sync job."""

    def read(self) -> SheetSnapshot: ...

    def write(self, writes: Sequence[CellWrite], expected: SheetSnapshot) -> None: ...
