"""Tabs whose headers are not on row 1: a title, notes or a table start above them.

The engine reads ``rows[0]`` as the header row and numbers rows from 1. A
:class:`HeaderRowBackend` hides the rows above the header row from it and moves its cell
writes back down, so the rows above are never read as data nor written. Pure wrapper, no I/O
of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

from sheets.grid import CellWrite, SheetBackend, SheetSnapshot

_INNER = "header_row_inner"
T = TypeVar("T")


class HeaderRowBackend:
    """``inner``'s tab seen from its header row ``header_row`` (1-based) down."""

    def __init__(self, inner: SheetBackend, header_row: int) -> None:
        if header_row < 1:
            raise ValueError("the header row is 1 or more")
        self.inner = inner
        self.skip = header_row - 1

    def read(self) -> SheetSnapshot:
        """The tab from the header row down (the header row is ``rows[0]``)."""
        snap = self.inner.read()
        meta = {**snap.meta, _INNER: snap}
        return SheetSnapshot(snap.rows[self.skip :], snap.fingerprint, meta)

    def write(self, writes: Sequence[CellWrite], expected: SheetSnapshot) -> None:
        """Write the cells ``self.skip`` rows further down than the engine numbers them."""
        inner = expected.meta.get(_INNER, expected)
        moved = [CellWrite(w.row + self.skip, w.col, w.value) for w in writes]
        self.inner.write(moved, inner)  # type: ignore[arg-type]


def sheet_rows(items: Sequence[T], header_row: int) -> list[T]:
    """Items with a ``row`` numbered from the header row, renumbered as the sheet's rows
    (a ``row`` of 0, "no row", stays 0)."""
    skip = header_row - 1
    if not skip:
        return list(items)
    return [replace(i, row=i.row + skip) if i.row else i for i in items]  # type: ignore[type-var]
