"""Fast bounded-read scan: compiled ``re`` and ``bytes`` counts over the inflated XML.

The expat scan of :mod:`sheets.backends.xlsx_limits` is the reference; this module computes
**upper bounds** of what it measures, a segment (about ``segment_bytes``, cut just before a
``<`` so no tag or text run is split; the rest is carried into the next one) at a time:

* extent: the last row/column of *every* cell (expat: cells holding a value), from the ``r``
  references (one regex per segment finds any beyond the running maximum); segments with cells
  or rows lacking a canonical ``r`` go through a per-tag pass with expat's rules (a cell without
  ``r`` is the next column, a row without ``r`` the next row);
* cells: every ``<c`` tag; text: bytes of inline/str/e/d texts and the shared-string lengths of
  ``t="s"`` cells;
* cell length: the text bytes between two cell starts (expat counts v/t text from one cell
  start to the next); a gap longer than ``max_cell_chars`` bytes is measured, shorter ones
  cannot break it. Shared strings: the bytes of each ``<si>`` element.

Bytes are a safe upper bound of characters: a UTF-8 character is 1-4 bytes, an entity or
character reference (``&amp;``, ``&#233;``) at least 3 bytes for one character.

The bounds are trusted only if every one fits its limit and the XML is in the form this scan
understands (UTF-8, no comments/CDATA/PIs/DOCTYPE after the prolog, no tabs, newlines or
entity references inside tags, no namespace-prefixed spreadsheet elements, plain typed
cells). Otherwise the functions return ``None`` and the caller runs the exact expat scan, which
decides (and words) every refusal exactly as before. So a refusal is never new, and a workbook
near a limit only costs the slower scan.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterator
from functools import lru_cache

from sheets.backends.xlsx_limits import Extent, MiB, XlsxLimits, column_number, fixed_bytes

Source = Callable[[], Iterator[bytes]]
SEGMENT = 1 << 20

_TOKEN = re.compile(rb"<c[ >/]")  # a cell start (tabs/newlines in tags are refused below)
_TEXT = re.compile(rb">([^<]+)")
_TAG = re.compile(rb"<(row|c)(?=[ >/])([^>]*)>")
_R_ATTR = re.compile(rb"""(?:^|\s)r *= *(?:"([^"]*)"|'([^']*)')""")
_PREFIXED = re.compile(rb":(?:c|row|v|t|is|r|rPh|si|f)[\s/>]")
_SI_ATTRS = re.compile(rb"<si[\s/]")
_REF = re.compile(rb'<c r="([A-Z]{1,3})(\d{1,7})"')
_TYPED = re.compile(
    rb""" t *= *["'](?:"""
    rb"""(s)["'](?: [^>]*)?>\s*<v>\s*(\d+)\s*</v>\s*(?=</c>)"""
    rb"""|(?:inlineStr|str|e|d)["'](?: [^>/]*)?(?:/>|>\s*(?:<f(?: [^>]*)?(?:/>|>[^<]*</f>)\s*)?"""
    rb"""(?:<v>([^<]*)</v>|<is>\s*<t(?: xml:space="preserve")?>([^<]*)</t>\s*</is>)?\s*(?=</c>))"""
    rb"""|(s|inlineStr|str|e|d)["'])"""
)


def _greater(limit: str, alphabet: str) -> str:
    """A regex matching strings of ``alphabet`` (no leading zero digit) greater than ``limit``."""
    first = alphabet[1:] if alphabet[0] == "0" else alphabet
    longer = f"[{first[0]}-{first[-1]}][{alphabet[0]}-{alphabet[-1]}]{{{len(limit)},}}"
    same = []
    for i, ch in enumerate(limit):
        rest = alphabet[alphabet.index(ch) + 1 :]
        if rest:
            tail = f"[{alphabet[0]}-{alphabet[-1]}]{{{len(limit) - i - 1}}}"
            same.append(re.escape(limit[:i]) + f"[{rest[0]}-{rest[-1]}]" + tail)
    return "|".join([longer, *same])


def _letters(col: int) -> str:
    out = ""
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out or "A"


@lru_cache(maxsize=64)
def _beyond(col: int, row: int) -> re.Pattern[bytes]:
    """Cell starts whose ``r`` is not canonical or lies right of ``col`` / below ``row``."""
    cols = _greater(_letters(col), "ABCDEFGHIJKLMNOPQRSTUVWXYZ") if col else "[A-Z]"
    rows = _greater(str(row), "0123456789") if row else "[1-9]"
    # possessive (never backtracks; the same matches: a letter is no digit, a digit no quote,
    # and no row alternative starts with 0): ~30 % less per cell, the scan's largest cost
    return re.compile(
        rf'<c r="(?:(?![A-Z]{{1,3}}+\d{{1,7}}+")|(?:{cols})\d|[A-Z]{{1,3}}+0*+(?:{rows})")'.encode()
    )


@lru_cache(maxsize=8)
def _odd_row(max_rows: int) -> re.Pattern[bytes]:
    over = _greater(str(max_rows), "0123456789")
    return re.compile(rf'<row(?! r="\d{{1,7}}")|<row r="0*(?:{over})"'.encode())


def _last_token(seg: bytes) -> int:
    at = seg.rfind(b"<c")
    while at >= 0 and seg[at + 2 : at + 3] not in (b" ", b">", b"/"):
        at = seg.rfind(b"<c", 0, at)
    return at


def _text_bytes(region: bytes) -> int:
    return sum(map(len, _TEXT.findall(region)))


def _clean(seg: bytes, start: int = 0) -> bool:
    """No comment/CDATA/PI/DOCTYPE, and no tab, newline or reference inside a tag."""
    if _PREFIXED.search(seg, start):
        return False
    for ch in b"!?":
        at = seg.find(ch, start)
        while at >= 0:
            if at and seg[at - 1] == 0x3C:  # "<"
                return False
            at = seg.find(ch, at + 1)
    for ch in b"\t\n\r&":
        at = seg.find(ch, start)
        while at >= 0:
            if seg.rfind(b"<", start, at) > seg.rfind(b">", start, at):
                return False
            at = seg.find(ch, at + 1)
    return True


def _prolog(head: bytes) -> int | None:
    """Where the body starts (after an XML declaration), or None if not plain UTF-8."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
        skip = 3
    else:
        skip = 0
    if not head.startswith(b"<?xml"):
        return skip if head.lstrip()[:1] == b"<" else None
    end = head.find(b"?>")
    decl = head[:end].lower()
    if end < 0 or (b"encoding" in decl and b"utf-8" not in decl):
        return None
    return skip + end + 2


def _cell_cut(buf: bytes) -> int:
    """Just before the last cell or row start (else the last ``<``): never inside a cell."""
    cut = max(_last_token(buf), buf.rfind(b"<row"))
    return cut if cut >= 0 else buf.rfind(b"<")


def _segments(
    source: Source, size: int, cap: int, cut_at: Callable[[bytes], int] = _cell_cut
) -> Iterator[bytes | None]:
    """The stream cut before a tag (``cut_at``); None when one piece would exceed ``cap``."""
    parts: list[bytes] = []
    held, first = 0, max(size, 1024)  # the first segment holds the XML declaration
    for chunk in source():
        parts.append(chunk)
        held += len(chunk)
        if held < first:
            continue
        first = size
        buf = b"".join(parts)
        cut = cut_at(buf)
        if cut <= 0:
            if held > cap:
                yield None
                return
            parts = [buf]
            continue
        yield buf[:cut]
        parts, held = [buf[cut:]], len(buf) - cut
    yield b"".join(parts)


class _Fail(Exception):
    """A bound does not fit or the XML is not in the understood form: use the exact scan."""


def fast_shared_strings(
    source: Source, limits: XlsxLimits, segment_bytes: int = SEGMENT
) -> array | None:
    """Upper bounds of each shared string's length, or None (use the expat scan)."""
    lengths = array("q")
    cap = 4 * segment_bytes + 2 * limits.max_cell_chars
    carry, start = b"", None
    for seg in _segments(source, segment_bytes, cap, lambda buf: buf.rfind(b"<")):
        if seg is None:
            return None
        if start is None:
            start = _prolog(seg)
            if start is None:
                return None
        if not _clean(seg, start) or _SI_ATTRS.search(seg):
            return None
        start = 0
        buf = carry + seg
        cut = buf.rfind(b"<si>")
        pieces = buf[: max(cut, 0)].split(b"<si>")[1:]
        carry = buf[cut:] if cut >= 0 else buf
        if len(carry) > cap:
            return None
        # a piece is "<t>text</t></si>" at least: its text is at most len - 12 bytes
        lengths.extend(max(n - 12, 0) for n in map(len, pieces))
    lengths.extend(max(n - 12, 0) for n in map(len, carry.split(b"<si>")[1:]))
    if lengths and max(lengths) > limits.max_cell_chars:
        return None
    return lengths


class _TabScan:
    """Upper bounds of an :class:`Extent` over a worksheet, one segment at a time."""

    def __init__(self, shared: array, limits: XlsxLimits) -> None:
        self.shared, self.limits = shared, limits
        self.extent = Extent()
        self.row = self.col = 0  # expat's position state, for cells/rows without r
        self.pending = 0  # text bytes since the last cell start
        self.window = limits.max_cell_chars // 2

    def segment(self, seg: bytes) -> None:
        self._lengths(seg)
        self._positions(seg)
        self._texts(seg)

    def _lengths(self, seg: bytes) -> None:
        limit = self.limits.max_cell_chars
        first = _TOKEN.search(seg)
        if first is None:
            self.pending += _text_bytes(seg)
            if self.pending > limit:
                raise _Fail
            return
        self.pending += _text_bytes(seg[: first.start()])
        if self.pending > limit:
            raise _Fail
        last = _last_token(seg)
        self._gaps(seg, first.start(), last)
        self.pending = _text_bytes(seg[last:])

    def _gaps(self, seg: bytes, first: int, last: int) -> None:
        """Every gap between two cell starts in [first, last] holds at most the limit."""
        limit, window = self.limits.max_cell_chars, self.window
        if window < 512:
            for piece in _TOKEN.split(seg[first:last]):
                if len(piece) > limit and _text_bytes(piece) > limit:
                    raise _Fail
            return
        # a gap of 2 x window bytes or more holds a whole window of the grid without a start
        at, prev = first, first
        while at + window <= last:
            hit = _TOKEN.search(seg, at, at + window + 2)
            if hit is not None and hit.start() < at + window:
                prev, at = hit.start(), at + window
                continue
            nxt = _TOKEN.search(seg, at)
            end = nxt.start() if nxt is not None else last
            if _text_bytes(seg[prev:end]) > limit:
                raise _Fail
            prev, at = end, end

    def _positions(self, seg: bytes) -> None:
        extent, limits = self.extent, self.limits
        cells = seg.count(b"<c")
        extent.cells += cells
        if cells != seg.count(b'<c r="') or _odd_row(limits.max_rows).search(seg):
            return self._tokens(seg)
        at_cell, at_row = seg.rfind(b'<c r="'), seg.rfind(b"<row ")
        if at_cell < 0:
            if at_row >= 0:
                self.row, self.col = int(seg[at_row + 8 : seg.index(b'"', at_row + 8)]), 0
            return None
        ref = _REF.match(seg, at_cell)
        if ref is None:
            return self._tokens(seg)
        col, row = column_number(ref[1].decode()), int(ref[2])
        cand_col, cand_row = max(extent.columns, col), max(extent.rows, row)
        if _beyond(cand_col, cand_row).search(seg):
            return self._tokens(seg)
        extent.columns, extent.rows = cand_col, cand_row
        if at_row > at_cell:
            self.row, self.col = int(seg[at_row + 8 : seg.index(b'"', at_row + 8)]), 0
        else:
            self.row, self.col = row, col
        self._check()
        return None

    def _tokens(self, seg: bytes) -> None:
        """expat's rules, tag by tag: the slow path for cells/rows without a plain ``r``."""
        extent = self.extent
        for m in _TAG.finditer(seg):
            attr = _R_ATTR.search(m[2])
            ref = (attr[1] if attr[1] is not None else attr[2]).decode() if attr else None
            if m[1] == b"row":
                self.row, self.col = (int(ref) if ref and ref.isdigit() else self.row + 1), 0
                if self.row > self.limits.max_rows:
                    raise _Fail
                continue
            letters = ref.rstrip("0123456789") if ref else ""
            if letters and 0 < len(letters) < len(ref) <= 20 and letters.isupper():  # type: ignore[arg-type]
                self.col, self.row = column_number(letters), int(ref[len(letters) :])  # type: ignore[index]
            else:
                self.col += 1
            extent.rows, extent.columns = max(extent.rows, self.row), max(extent.columns, self.col)
        self._check()

    def _check(self) -> None:
        extent, limits = self.extent, self.limits
        if extent.rows > limits.max_rows or extent.columns > limits.max_columns:
            raise _Fail

    def _texts(self, seg: bytes) -> None:
        shared, n = self.shared, len(self.shared)
        total = 0
        for is_s, index, value, text, odd in _TYPED.findall(seg):
            if odd:
                raise _Fail
            if is_s:
                i = int(index)
                total += shared[i] if i < n else 0
            else:
                total += len(value) + len(text)
        self.extent.text_chars += total


def fast_tab(
    source: Source,
    shared: array,
    limits: XlsxLimits,
    file_bytes: int,
    segment_bytes: int = SEGMENT,
) -> Extent | None:
    """Upper bounds of the worksheet's :class:`Extent` if all fit ``limits``, else None."""
    scan = _TabScan(shared, limits)
    cap = 4 * segment_bytes + 2 * limits.max_cell_chars
    start: int | None = None
    fixed, most = fixed_bytes(shared, file_bytes), limits.read_memory_mb
    try:
        for seg in _segments(source, segment_bytes, cap):
            if seg is None:
                return None
            if start is None:
                start = _prolog(seg)
                if start is None:
                    return None
            if not _clean(seg, start):
                return None
            start = 0
            scan.segment(seg)
            if round((fixed + scan.extent.grid_bytes()) / MiB) > most:
                return None  # over already (bounds only grow): expat decides, and early
        if scan.pending > limits.max_cell_chars:
            return None
    except _Fail:
        return None
    if round((fixed + scan.extent.grid_bytes()) / MiB) > most:
        return None
    return scan.extent
