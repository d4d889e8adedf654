"""Patch cells directly in a worksheet's XML bytes, without parsing the sheet into a DOM.

Row start tags are indexed with one regex scan; only rows that receive writes are re-emitted,
everything else (other rows, cols, merges, validations, conditional formats, extLst, ...) is
copied byte for byte. Values are encoded by :func:`encode_value`.
"""

from __future__ import annotations

import math
import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from xml.sax.saxutils import escape

from sheets.backends.xlsx_styles import attrs
from sheets.grid import CellValue

MAX_TEXT = 32_767  # Excel's limit on characters in a cell
_ILLEGAL = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff]")
_ESCAPE_LOOKALIKE = re.compile("_x[0-9A-Fa-f]{4}_")
_REF = re.compile(rb"([A-Z]+)(\d+)")
_SPANS = re.compile(rb"""(\sspans\s*=\s*)["'](\d+):(\d+)["']""")
_DROPPED_CELL_ATTRS = frozenset([b"r", b"s", b"t", b"cm", b"vm"])


@dataclass(frozen=True)
class Encoded:
    """A value ready for the XML: kind is str, n, b, date, datetime, time or clear."""

    kind: str
    text: bytes = b""
    preserve: bool = False


CLEAR = Encoded("clear")


def _serial(value: date | datetime | time, date1904: bool) -> str:
    if isinstance(value, time):
        day, seconds = 0, value.hour * 3600 + value.minute * 60 + value.second
        micros = value.microsecond
    else:
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                raise ValueError(f"Excel has no time zones; write naive datetimes, got {value!r}")
            seconds = value.hour * 3600 + value.minute * 60 + value.second
            micros = value.microsecond
        else:
            seconds = micros = 0
        day = (
            (value.toordinal() - date(1904, 1, 1).toordinal())
            if date1904
            else (value.toordinal() - date(1899, 12, 31).toordinal())
        )
        if not date1904 and day >= 60:
            day += 1  # Excel counts the non-existent 1900-02-29 (serial 60)
        if day < (0 if date1904 else 1):
            raise ValueError(f"{value!r} is before the workbook's first date")
    if not seconds and not micros:
        return str(day)
    return repr(day + (seconds * 1_000_000 + micros) / 86_400_000_000)


def encode_value(value: CellValue | time, date1904: bool) -> Encoded:
    """Validate and encode one value; raises ValueError/TypeError before anything is written."""
    if value is None or value == "":
        return CLEAR
    if isinstance(value, bool):
        return Encoded("b", b"1" if value else b"0")
    if isinstance(value, int):
        return Encoded("n", str(value).encode())
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot store {value!r} in a cell")
        return Encoded("n", repr(value).encode())
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot store {value!r} in a cell")
        return Encoded("n", str(value).encode())
    if isinstance(value, datetime):
        return Encoded("datetime", _serial(value, date1904).encode())
    if isinstance(value, date):
        return Encoded("date", _serial(value, date1904).encode())
    if isinstance(value, time):
        return Encoded("time", _serial(value, date1904).encode())
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"text of {len(value)} characters exceeds Excel's {MAX_TEXT}")
        text = _ESCAPE_LOOKALIKE.sub(lambda m: "_x005F" + m.group(0), value)
        text = _ILLEGAL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)
        return Encoded("str", escape(text).encode("utf-8"), value != value.strip())
    raise TypeError(f"unsupported cell value {value!r}")


def column_letters(col: int) -> str:
    letters = ""
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


@dataclass
class PatchResult:
    xml: bytes
    overwritten_formulas: list[str]


class SharedFormulaError(ValueError):
    """The target cell anchors a shared formula of other cells; overwriting would break them."""


class _Sheet:
    """Positions inside one worksheet's XML."""

    def __init__(self, xml: bytes) -> None:
        self.xml = xml
        m = re.search(rb"<((?:[\w.-]+:)?)sheetData\b([^>]*?)(/?)>", xml)
        if m is None:
            raise ValueError("worksheet has no sheetData")
        self.p = m.group(1)
        self.open = m
        self.self_closing = bool(m.group(3))
        self.body_start = m.end()
        close = b"</%bsheetData>" % self.p
        self.body_end = m.end() if self.self_closing else xml.index(close, m.end())
        self.row_tag = re.compile(
            rb"""<%brow\b(?:[^>]*?\sr\s*=\s*["'](\d+)["'])?[^>]*?(/?)>""" % self.p
        )
        # compact (8 bytes a row, not a Match object): a 1,048,576-row sheet indexes in 16 MB
        self.row_numbers = array("q")
        self.row_starts = array("q")
        prev = 0
        for rm in self.row_tag.finditer(xml, self.body_start, self.body_end):
            prev = int(rm.group(1)) if rm.group(1) else prev + 1
            self.row_numbers.append(prev)
            self.row_starts.append(rm.start())

    def row_span(self, i: int) -> tuple[int, int]:
        tag = self.row_tag.match(self.xml, self.row_starts[i], self.body_end)
        assert tag is not None  # it matched there when indexed
        if tag.group(2):
            return tag.start(), tag.end()
        close = b"</%brow>" % self.p
        return tag.start(), self.xml.index(close, tag.end()) + len(close)


def column_styles(xml: bytes) -> Callable[[int], int | None]:
    """Column default style lookup from ``<cols>`` (what Excel gives a new cell)."""
    ranges = []
    for m in re.finditer(rb"<(?:[\w.-]+:)?col\b([^>]*?)/?>", xml[: xml.find(b"sheetData")]):
        a = attrs(m.group(1))
        if b"style" in a:
            ranges.append((int(a[b"min"]), int(a[b"max"]), int(a[b"style"])))

    def lookup(col: int) -> int | None:
        return next((s for lo, hi, s in ranges if lo <= col <= hi), None)

    return lookup


def _cell_xml(p: bytes, ref: bytes, kept: bytes, style: int | None, enc: Encoded) -> bytes:
    s = b"" if style is None else b' s="%d"' % style
    head = b'<%bc r="%b"%b%b' % (p, ref, s, kept)
    if enc.kind == "clear":
        return head + b"/>"
    if enc.kind == "str":
        space = b' xml:space="preserve"' if enc.preserve else b""
        return head + b' t="inlineStr"><%bis><%bt%b>%b</%bt></%bis></%bc>' % (
            p,
            p,
            space,
            enc.text,
            p,
            p,
            p,
        )
    t = b' t="b"' if enc.kind == "b" else b""
    return head + b"%b><%bv>%b</%bv></%bc>" % (t, p, enc.text, p, p)


class _Patcher:
    def __init__(
        self,
        sheet: _Sheet,
        date_style: Callable[[int | None, str], int],
        col_style: Callable[[int], int | None],
    ) -> None:
        self.sheet = sheet
        self.date_style = date_style
        self.col_style = col_style
        self.overwritten_formulas: list[str] = []

    def cell(
        self,
        ref: bytes,
        old_attrs: dict[bytes, bytes] | None,
        old_body: bytes,
        col: int,
        row_style: int | None,
        enc: Encoded,
    ) -> bytes:
        p = self.sheet.p
        if old_attrs is None:
            style = row_style if row_style is not None else self.col_style(col)
            kept = b""
        else:
            style = int(old_attrs[b"s"]) if b"s" in old_attrs else None
            kept = b"".join(
                b' %b="%b"' % (k, v) for k, v in old_attrs.items() if k not in _DROPPED_CELL_ATTRS
            )
            f = re.search(rb"<%bf\b([^>]*?)(/?)>" % p, old_body)
            if f is not None:
                fa = attrs(f.group(1))
                if fa.get(b"t") == b"shared" and b"ref" in fa and fa[b"ref"] != ref:
                    raise SharedFormulaError(
                        f"{ref.decode()} anchors the shared formula for {fa[b'ref'].decode()}; "
                        "re-enter those formulas in Excel (so each cell has its own) first"
                    )
                self.overwritten_formulas.append(ref.decode())
        if enc.kind in ("date", "datetime", "time"):
            style = self.date_style(style, enc.kind)
        if enc.kind == "clear" and style is None and not kept:
            return b""
        return _cell_xml(p, ref, kept, style, enc)

    def _new_cell(self, number: int, col: int, row_style: int | None, enc: Encoded) -> bytes:
        ref = b"%b%d" % (column_letters(col).encode(), number)
        return self.cell(ref, None, b"", col, row_style, enc)

    def row(self, number: int, span: tuple[int, int] | None, cells: Mapping[int, Encoded]) -> bytes:
        p, xml = self.sheet.p, self.sheet.xml
        targets = sorted(cells)
        if span is None:
            body = b"".join(self._new_cell(number, c, None, cells[c]) for c in targets)
            return b'<%brow r="%d">%b</%brow>' % (p, number, body, p) if body else b""
        start, end = span
        tag = re.compile(rb"<%brow\b([^>]*?)(/?)>" % p).match(xml, start)
        assert tag is not None
        row_attrs = attrs(tag.group(1))
        custom = row_attrs.get(b"customFormat") in (b"1", b"true")
        row_style = int(row_attrs[b"s"]) if custom and b"s" in row_attrs else None
        content_end = end if tag.group(2) else end - len(b"</%brow>" % p)
        cell_tag = re.compile(rb"<%bc\b([^>]*?)(/?)>" % p)
        close = b"</%bc>" % p
        out: list[bytes] = []
        pos = cursor = tag.end()
        prev_col = 0
        pending = iter(targets)
        nxt = next(pending, None)
        while True:
            m = cell_tag.search(xml, pos, content_end)
            if m is None:
                break
            cell_end = m.end() if m.group(2) else xml.index(close, m.end()) + len(close)
            a = attrs(m.group(1))
            ref_m = _REF.fullmatch(a[b"r"]) if b"r" in a else None
            col = _column_number(ref_m.group(1)) if ref_m else prev_col + 1
            prev_col = col
            while nxt is not None and nxt < col:
                out.append(xml[cursor : m.start()])
                cursor = m.start()
                out.append(self._new_cell(number, nxt, row_style, cells[nxt]))
                nxt = next(pending, None)
            if nxt == col:
                ref = b"%b%d" % (column_letters(col).encode(), number)
                out.append(xml[cursor : m.start()])
                out.append(self.cell(ref, a, xml[m.end() : cell_end], col, row_style, cells[col]))
                cursor = cell_end
                nxt = next(pending, None)
            pos = cell_end
        out.append(xml[cursor:pos])
        cursor = pos
        while nxt is not None:
            out.append(self._new_cell(number, nxt, row_style, cells[nxt]))
            nxt = next(pending, None)
        out.append(xml[cursor:content_end])
        body = b"".join(out)
        open_tag = b"<%brow%b>" % (p, _widen_spans(tag.group(1), targets))
        return open_tag + body + b"</%brow>" % p


def _widen_spans(row_attrs: bytes, cols: list[int]) -> bytes:
    m = _SPANS.search(row_attrs)
    if m is None:
        return row_attrs
    lo, hi = min(int(m.group(2)), cols[0]), max(int(m.group(3)), cols[-1])
    return row_attrs[: m.start()] + b'%b"%d:%d"' % (m.group(1), lo, hi) + row_attrs[m.end() :]


def _grow_dimension(xml: bytes, rows: list[int], cols: list[int]) -> bytes:
    head = xml.find(b"sheetData")  # <dimension> precedes <sheetData>
    dimension = re.compile(rb"""<(?:[\w.-]+:)?dimension\b[^>]*?\bref\s*=\s*["']([^"']*)["']""")
    m = dimension.search(xml, 0, head)
    if m is None:
        return xml
    parts = [_REF.fullmatch(x) for x in m.group(1).split(b":")]
    if not all(parts):
        return xml
    corners = [(int(x.group(2)), _column_number(x.group(1))) for x in parts if x is not None]
    top, left = min([*rows, corners[0][0]]), min([*cols, corners[0][1]])
    bottom, right = max([*rows, corners[-1][0]]), max([*cols, corners[-1][1]])
    if (top, left) == corners[0] and (bottom, right) == corners[-1]:
        return xml
    ref = b"%b%d:%b%d" % (
        column_letters(left).encode(),
        top,
        column_letters(right).encode(),
        bottom,
    )
    return xml[: m.start(1)] + ref + xml[m.end(1) :]


def patch_sheet(
    xml: bytes,
    cells: Mapping[tuple[int, int], Encoded],
    date_style: Callable[[int | None, str], int],
) -> PatchResult:
    """Apply ``{(row, col): Encoded}`` to a worksheet; everything else is copied verbatim."""
    sheet = _Sheet(xml)
    patcher = _Patcher(sheet, date_style, column_styles(xml))
    by_row: dict[int, dict[int, Encoded]] = {}
    for (r, c), enc in cells.items():
        by_row.setdefault(r, {})[c] = enc
    written = [rc for rc, enc in cells.items() if enc.kind != "clear"]
    p = sheet.p
    if sheet.self_closing:
        head = xml[: sheet.open.start()] + b"<%bsheetData%b>" % (p, sheet.open.group(2))
    else:
        head = xml[: sheet.body_start]
    if written:  # <dimension> precedes <sheetData>: it is in the head
        head = _grow_dimension(head, [r for r, _ in written], [c for _, c in written])
    # memoryview slices and one join: the patched sheet is the only copy made
    view = memoryview(xml)
    pieces: list[bytes | memoryview] = [head]
    cursor = sheet.body_start
    for number in sorted(by_row):
        i = bisect_left(sheet.row_numbers, number)
        if i < len(sheet.row_numbers) and sheet.row_numbers[i] == number:
            start, end = sheet.row_span(i)
            pieces += [view[cursor:start], patcher.row(number, (start, end), by_row[number])]
            cursor = end
        else:
            at = sheet.row_starts[i] if i < len(sheet.row_starts) else sheet.body_end
            pieces += [view[cursor:at], patcher.row(number, None, by_row[number])]
            cursor = at
    pieces.append(view[cursor : sheet.body_end])
    pieces.append(b"</%bsheetData>" % p if sheet.self_closing else b"")
    pieces.append(view[sheet.open.end() if sheet.self_closing else sheet.body_end :])
    new = b"".join(pieces)
    return PatchResult(new, patcher.overwritten_formulas)
