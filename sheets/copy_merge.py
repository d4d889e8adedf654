"""An edited copy of a tracker tab merged into the tab as it is now (pure, no I/O).

A user downloads the workbook (``downloaded``), edits their copy (``uploaded``) while a sync
writes to the server's file (``current``). The user's edits are the cells of ``uploaded``
that differ from ``downloaded``; :func:`copy_edits` turns them into cell writes on
``current``, by key and header (rows and columns may have moved), and appends the copy's new
rows. The next sync then merges those cells like any sheet edit. Rows deleted in the copy
are not deleted (a cell write cannot delete a row): they are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sheets.grid import CellValue, CellWrite
from sheets.plan import normalize_key
from sheets.trackers import header_id

Rows = Sequence[Sequence[CellValue]]


@dataclass
class CopyEdits:
    """The writes that carry the copy's edits into the current tab, and what could not."""

    writes: list[CellWrite] = field(default_factory=list)
    edited_rows: int = 0
    added_rows: int = 0
    deleted_keys: list[str] = field(default_factory=list)


def _same(a: CellValue, b: CellValue) -> bool:
    blank_a = a is None or (isinstance(a, str) and not a.strip())
    blank_b = b is None or (isinstance(b, str) and not b.strip())
    return (blank_a and blank_b) or a == b


def _columns(rows: Rows) -> dict[str, int]:
    header = rows[0] if rows else []
    out: dict[str, int] = {}
    for i, h in enumerate(header):
        hid = header_id(h)
        if hid and hid not in out:
            out[hid] = i
    return out


def _by_key(rows: Rows, key_col: int | None) -> dict[str, int]:
    out: dict[str, int] = {}
    if key_col is None:
        return out
    for i in range(1, len(rows)):
        row = rows[i]
        key = normalize_key(row[key_col]) if key_col < len(row) else None
        if key is not None and key not in out:
            out[key] = i
    return out


def _cell(rows: Rows, i: int, j: int | None) -> CellValue:
    if j is None or i >= len(rows) or j >= len(rows[i]):
        return None
    return rows[i][j]


def copy_edits(key_header: str, downloaded: Rows, uploaded: Rows, current: Rows) -> CopyEdits:
    """The cell writes that apply the copy's edits (``uploaded`` vs ``downloaded``) to
    ``current``; every sequence holds the tab's rows, row 0 the header."""
    out = CopyEdits()
    cols_d, cols_u, cols_c = _columns(downloaded), _columns(uploaded), _columns(current)
    kid = header_id(key_header)
    rows_d = _by_key(downloaded, cols_d.get(kid))
    rows_u = _by_key(uploaded, cols_u.get(kid))
    rows_c = _by_key(current, cols_c.get(kid))
    shared = [h for h in cols_u if h in cols_c]
    last_used = max([0, *(i for i, r in enumerate(current) if any(not _same(v, None) for v in r))])
    next_row = last_used + 2
    for i in range(1, len(uploaded)):
        row = uploaded[i]
        if all(_same(v, None) for v in row):
            continue
        key = normalize_key(_cell(uploaded, i, cols_u.get(kid)))
        if key is not None and key in rows_d:
            at = rows_c.get(key)
            if at is None:
                continue  # gone from the server's tab meanwhile: nothing to carry it into
            before = len(out.writes)
            for h in shared:
                new = _cell(uploaded, i, cols_u[h])
                if not _same(new, _cell(downloaded, rows_d[key], cols_d.get(h))):
                    out.writes.append(CellWrite(at + 1, cols_c[h] + 1, new))
            out.edited_rows += len(out.writes) > before
        elif key is None or key not in rows_c:
            for h in shared:
                value = _cell(uploaded, i, cols_u[h])
                if not _same(value, None):
                    out.writes.append(CellWrite(next_row, cols_c[h] + 1, value))
            next_row += 1
            out.added_rows += 1
    out.deleted_keys = sorted(k for k in rows_d if k not in rows_u and k in rows_c)
    return out
