"""Sheets of one row per order line without a line id: each line keyed ``<order id>/<n>``.

``n`` is the row's value in the team's line number column, or (no such column, ``POSITION``)
the row's position among the rows of its order, top to bottom. :class:`LineKeyBackend`
shows the engine that key as one more column right of the headers, computed on every read;
writes to it are dropped and writes right of it move back one column, so the sheet never
holds it. Pure wrapper, no I/O of its own (see docs/sync-attach.md for what re-sorting a
sheet keyed by position does).
"""

from __future__ import annotations

from collections.abc import Sequence

from sheets.engine import normalize_key
from sheets.grid import CellValue, CellWrite, SheetBackend, SheetSnapshot
from sheets.trackers import header_id

POSITION = "#"  # the line number setting that means "the row's position in its order"
_INNER = "line_key_inner"
_AT = "line_key_column"


def with_line_keys(
    rows: Sequence[Sequence[CellValue]], key_header: str, order_header: str, number: str
) -> list[list[CellValue]]:
    """``rows`` (header first) with the key column appended: ``<order id>/<n>`` per row,
    blank where the row has no order id (or no line number)."""
    if not rows:
        return []
    where = {header_id(h): i for i, h in enumerate(rows[0])}
    order_at = where.get(header_id(order_header))
    number_at = None if number == POSITION else where.get(header_id(number))
    if order_at is None or (number != POSITION and number_at is None):
        missing = order_header if order_at is None else number
        raise KeyError(f"no column {missing!r} in the sheet's headers")
    width = len(rows[0])
    seen: dict[str, int] = {}
    out = [[*rows[0], key_header]]
    for row in rows[1:]:
        cells = [*row, *([None] * (width - len(row)))]
        order = normalize_key(row[order_at]) if order_at < len(row) else None
        n: str | None = None
        if order is not None and number_at is None:
            seen[order] = seen.get(order, 0) + 1
            n = str(seen[order])
        elif order is not None and number_at is not None and number_at < len(row):
            n = normalize_key(row[number_at])
        out.append([*cells[:width], f"{order}/{n}" if order and n else None, *cells[width:]])
    return out


class LineKeyBackend:
    """``inner``'s tab with the derived line key as its last column (see the module)."""

    def __init__(
        self, inner: SheetBackend, key_header: str, order_header: str, number: str
    ) -> None:
        self.inner = inner
        self.key_header, self.order_header, self.number = key_header, order_header, number

    def read(self) -> SheetSnapshot:
        snap = self.inner.read()
        rows = with_line_keys(snap.rows, self.key_header, self.order_header, self.number)
        width = len(snap.rows[0]) if snap.rows else 0
        meta = {**snap.meta, _INNER: snap, _AT: width + 1}
        return SheetSnapshot(rows, snap.fingerprint, meta)

    def write(self, writes: Sequence[CellWrite], expected: SheetSnapshot) -> None:
        """The writes without the key column's, those right of it one column back."""
        inner = expected.meta.get(_INNER, expected)
        at = int(expected.meta.get(_AT, 0)) or None  # type: ignore[call-overload]
        kept = [
            CellWrite(w.row, w.col - 1, w.value) if at and w.col > at else w
            for w in writes
            if not (at and w.col == at)
        ]
        self.inner.write(kept, inner)  # type: ignore[arg-type]
