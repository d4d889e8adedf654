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
from typing import Any, Protocol

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


@dataclass
class CellBlock:
    """A rectangle of cells to write: top-left (1-based), width and values row by row."""

    row: int
    col: int
    width: int
    values: list[list[Any]]


def cell_blocks(cells: dict[tuple[int, int], Any], max_gap: int = 0) -> list[CellBlock]:
    """Group ``{(row, col): value}`` into rectangles: runs along a row (bridging gaps of up to
    ``max_gap`` cells with ``None``: only for a backend whose write leaves a ``None`` alone),
    then equal runs on consecutive rows stacked (appended rows, a status column)."""
    runs: list[tuple[int, int, list[Any]]] = []
    last: tuple[int, int] | None = None
    for (r, c), value in sorted(cells.items()):
        if last is not None and last[0] == r and c - last[1] - 1 <= max_gap:
            runs[-1][2].extend([None] * (c - last[1] - 1))
            runs[-1][2].append(value)
        else:
            runs.append((r, c, [value]))
        last = (r, c)
    blocks: list[CellBlock] = []
    open_blocks: dict[tuple[int, int], CellBlock] = {}
    for r, c, values in runs:
        block = open_blocks.get((c, len(values)))
        if block is not None and block.row + len(block.values) == r:
            block.values.append(values)
        else:
            block = CellBlock(r, c, len(values), [values])
            open_blocks[c, len(values)] = block
            blocks.append(block)
    return blocks


class SheetChangedError(RuntimeError):
    """The sheet changed between read and write; nothing was written, the sync must retry."""


class SheetBackend(Protocol):
    """What every backend (xlsx, gsheets, xlwings) provides to the sync job."""

    def read(self) -> SheetSnapshot: ...

    def write(self, writes: Sequence[CellWrite], expected: SheetSnapshot) -> None: ...
