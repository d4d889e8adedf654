"""Bounds on what an .xlsx read or write may cost, checked before anything is inflated.

:func:`check_package` looks only at the zip central directory (sizes and ratios as declared).
:func:`inflate` then streams a part's raw deflate data in bounded chunks and refuses a part
that inflates beyond what it declared, so the declared sizes cannot lie. :func:`scan_tab`
streams sharedStrings and the worksheet XML through expat without keeping them: it checks cell
lengths and the row/column extent and estimates what calamine plus the Python rows will take,
which must fit ``read_memory_mb`` before calamine is called (calamine allocates the whole
``rows x columns`` rectangle up front, so one cell at XFD1048576 is a 550 GB allocation).

Every breach raises :class:`WorkbookTooLarge`, a ``ValueError`` whose one-line message names the
limit (with its setting name), the part and the value. See docs/xlsx-backend.md.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from xml.parsers import expat

_LOCAL = struct.Struct("<4s5H3L2H")
_CHUNK = 1 << 16
MiB = 1 << 20


@dataclass(frozen=True)
class XlsxLimits:
    """Limits of one backend. The portal maps its settings (names in SETTINGS) onto these."""

    max_file_bytes: int = 256 * MiB
    max_part_compressed_bytes: int = 128 * MiB
    max_part_bytes: int = 1024 * MiB  # inflated, per part
    max_total_bytes: int = 2048 * MiB  # inflated, all parts together
    max_ratio: float = 200.0  # inflated / compressed, per part ...
    ratio_min_bytes: int = 1 * MiB  # ... of parts inflating to more than this
    max_rows: int = 1_048_576
    max_columns: int = 16_384
    max_cell_chars: int = 32_767
    read_memory_mb: int = 2048  # estimated calamine + Python rows of one read


SETTINGS = {
    "max_file_bytes": "XLSX_MAX_FILE_BYTES",
    "max_part_compressed_bytes": "XLSX_MAX_PART_COMPRESSED_BYTES",
    "max_part_bytes": "XLSX_MAX_PART_BYTES",
    "max_total_bytes": "XLSX_MAX_TOTAL_BYTES",
    "max_ratio": "XLSX_MAX_RATIO",
    "ratio_min_bytes": "XLSX_RATIO_MIN_BYTES",
    "max_rows": "XLSX_MAX_ROWS",
    "max_columns": "XLSX_MAX_COLUMNS",
    "max_cell_chars": "XLSX_MAX_CELL_CHARS",
    "read_memory_mb": "XLSX_READ_MEMORY_MB",
}


class WorkbookTooLarge(ValueError):
    """A workbook breaks one of the :class:`XlsxLimits`; nothing was written."""

    def __init__(self, limit: str, part: str, value: float, maximum: float) -> None:
        self.limit, self.part, self.value, self.maximum = limit, part, value, maximum
        super().__init__(
            f"{part}: {limit.replace('_', ' ')} exceeded: {_num(value)} > {_num(maximum)} "
            f"(setting {SETTINGS[limit]})"
        )


def _num(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _over(limit: str, part: str, value: float, maximum: float) -> None:
    if value > maximum:
        raise WorkbookTooLarge(limit, part, value, maximum)


def check_file_size(size: int, path: str, limits: XlsxLimits) -> None:
    _over("max_file_bytes", path, size, limits.max_file_bytes)


def check_package(zf: zipfile.ZipFile, limits: XlsxLimits) -> None:
    """Every member's declared sizes and ratio, from the central directory only."""
    total = 0
    for info in zf.infolist():
        name, inflated = info.filename, info.file_size
        packed = info.compress_size
        _over("max_part_compressed_bytes", name, packed, limits.max_part_compressed_bytes)
        _over("max_part_bytes", name, inflated, limits.max_part_bytes)
        if inflated > limits.ratio_min_bytes:
            _over("max_ratio", name, inflated / max(info.compress_size, 1), limits.max_ratio)
        total += inflated
        _over("max_total_bytes", "the workbook", total, limits.max_total_bytes)


def inflate(data: bytes, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """A member's content in bounded chunks; it may not inflate beyond its declared size."""
    lf = _LOCAL.unpack_from(data, info.header_offset)
    start = info.header_offset + _LOCAL.size + lf[9] + lf[10]
    raw = memoryview(data)[start : start + info.compress_size]
    if info.compress_type == zipfile.ZIP_STORED:
        for at in range(0, len(raw), _CHUNK):
            yield bytes(raw[at : at + _CHUNK])
        return
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise ValueError(f"{info.filename}: unsupported compression method {info.compress_type}")
    inflater, produced, at, crc = zlib.decompressobj(-15), 0, 0, 0
    pending = b""
    while True:
        if not pending:
            if at >= len(raw) or inflater.eof:
                break
            pending, at = bytes(raw[at : at + _CHUNK]), at + _CHUNK
        chunk = inflater.decompress(pending, _CHUNK)
        pending = inflater.unconsumed_tail
        produced += len(chunk)
        if produced > info.file_size:
            raise WorkbookTooLarge("max_part_bytes", info.filename, produced, info.file_size)
        crc = zlib.crc32(chunk, crc)
        yield chunk
    if not inflater.eof or produced != info.file_size or crc != info.CRC:
        raise zipfile.BadZipFile(f"{info.filename}: content does not match its declared size/CRC")


def _local_name(name: str) -> str:
    return name.rpartition(":")[2]


def _parser() -> expat.XMLParserType:
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.buffer_size = _CHUNK

    def no_entities(*_: object) -> None:
        raise ValueError("XML entity declarations are not allowed in a workbook")

    parser.EntityDeclHandler = no_entities
    return parser


def _feed(parser: expat.XMLParserType, chunks: Iterator[bytes]) -> None:
    for chunk in chunks:
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


def scan_shared_strings(chunks: Iterator[bytes], part: str, limits: XlsxLimits) -> array:
    """The length of each shared string; a string over ``max_cell_chars`` raises."""
    lengths = array("q")
    state = {"text": False, "phonetic": 0, "n": 0}

    def start(name: str, _attrs: dict[str, str]) -> None:
        local = _local_name(name)
        if local == "si":
            state["n"] = 0
        elif local == "t":
            state["text"] = True
        elif local == "rPh":
            state["phonetic"] += 1

    def end(name: str) -> None:
        local = _local_name(name)
        if local == "si":
            lengths.append(state["n"])
        elif local == "t":
            state["text"] = False
        elif local == "rPh":
            state["phonetic"] -= 1

    def chars(data: str) -> None:
        if state["text"] and not state["phonetic"]:
            state["n"] += len(data)
            where = f"{part} string {len(lengths)}"
            _over("max_cell_chars", where, state["n"], limits.max_cell_chars)

    parser = _parser()
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = chars
    _feed(parser, chunks)
    return lengths


def column_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


@dataclass
class Extent:
    """What a worksheet holds: last row and column with a value, cells and their text."""

    rows: int = 0
    columns: int = 0
    cells: int = 0
    text_chars: int = 0

    def estimate_bytes(self, shared: array, file_bytes: int) -> int:
        """Peak of calamine's range plus the Python rows built from it (measured, rounded up).

        calamine: 32 bytes per cell of the rectangle plus each string; Python: a list per row
        (56 bytes + 8 per slot), a float or str object per value (str: 56 + its characters).
        The package bytes are held twice (ours and calamine's copy); shared strings once more.
        """
        return fixed_bytes(shared, file_bytes) + self.grid_bytes()

    def grid_bytes(self) -> int:
        """The part of the estimate that grows with the scan (never shrinks as cells come)."""
        return (
            self.rows * self.columns * 40 + self.rows * 64 + self.cells * 64 + 3 * self.text_chars
        )


def fixed_bytes(shared: array, file_bytes: int) -> int:
    """The part of the estimate known before the worksheet is scanned."""
    return 2 * file_bytes + sum(shared) + 64 * len(shared)


class _SheetScan:
    """expat handlers computing an :class:`Extent`; every check fails as early as it can.

    Hot path (one call per element and text node): local names are cached, refs are split
    with str methods, limits are compared inline and only formatted on a breach.
    """

    def __init__(self, part: str, shared: array, limits: XlsxLimits) -> None:
        self.part, self.shared, self.limits = part, shared, limits
        self.extent = Extent()
        self.row = self.col = 0
        self.kind: str | None = None
        self.text = self.phonetic = 0
        self.collecting = self.has_value = False
        self.digits: list[str] = []
        self.names: dict[str, str] = {}
        self.max_rows, self.max_columns = limits.max_rows, limits.max_columns
        self.max_chars = limits.max_cell_chars

    def _local(self, name: str) -> str:
        local = self.names.get(name)
        if local is None:
            local = self.names[name] = _local_name(name)
        return local

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = self._local(name)
        if local == "c":
            self.kind, self.text, self.has_value = attrs.get("t"), 0, False
            self.digits = []
            ref = attrs.get("r")
            letters = ref.rstrip("0123456789") if ref else ""
            if letters and 0 < len(letters) < len(ref) <= 20 and letters.isupper():  # type: ignore[arg-type]
                self.col, self.row = column_number(letters), int(ref[len(letters) :])  # type: ignore[index]
            else:
                self.col += 1
            if self.col > self.max_columns or self.row > self.max_rows:
                self._breach()
        elif local == "row":
            r = attrs.get("r")
            self.row, self.col = (int(r) if r and r.isdigit() else self.row + 1), 0
            if self.row > self.max_rows:
                _over("max_rows", self.part, self.row, self.max_rows)
        elif local == "v" or local == "t":
            self.collecting = True
        elif local == "rPh":
            self.phonetic += 1

    def _breach(self) -> None:
        _over("max_columns", self.part, self.col, self.max_columns)
        _over("max_rows", self.part, self.row, self.max_rows)

    def end(self, name: str) -> None:
        local = self._local(name)
        if local == "c":
            if self.has_value:
                self._value()
        elif local == "v" or local == "t":
            self.collecting = False
        elif local == "rPh":
            self.phonetic -= 1

    def chars(self, data: str) -> None:
        if self.collecting and not self.phonetic:
            self.text += len(data)
            self.has_value = True
            if self.text > self.max_chars:
                _over("max_cell_chars", self._where(), self.text, self.max_chars)
            if self.kind == "s":
                self.digits.append(data)

    def _where(self) -> str:
        letters, col = "", self.col
        while col:
            col, rem = divmod(col - 1, 26)
            letters = chr(65 + rem) + letters
        return f"{self.part} cell {letters}{self.row}"

    def _value(self) -> None:
        extent = self.extent
        if self.row > extent.rows:
            extent.rows = self.row
        if self.col > extent.columns:
            extent.columns = self.col
        extent.cells += 1
        kind = self.kind
        if kind is None or kind == "n":
            return
        if kind == "s":
            index = "".join(self.digits).strip()
            if index.isdigit() and int(index) < len(self.shared):
                extent.text_chars += self.shared[int(index)]
        elif kind in ("inlineStr", "str", "e", "d"):
            extent.text_chars += self.text


def scan_tab(
    sheet: Iterator[bytes],
    shared: array,
    part: str,
    limits: XlsxLimits,
    file_bytes: int,
) -> Extent:
    """Stream the worksheet once; raise unless its read fits every limit.

    The memory estimate is checked after every chunk too: a tab far over ``read_memory_mb``
    is refused once the part scanned so far is over it (the message then gives that part's
    estimate), not after the whole tab.
    """
    scan = _SheetScan(part, shared, limits)
    parser = _parser()
    parser.StartElementHandler, parser.EndElementHandler = scan.start, scan.end
    parser.CharacterDataHandler = scan.chars
    fixed, extent, most = fixed_bytes(shared, file_bytes), scan.extent, limits.read_memory_mb
    for chunk in sheet:  # the estimate only grows: refuse as soon as it is over
        parser.Parse(chunk, False)
        _over("read_memory_mb", part, round((fixed + extent.grid_bytes()) / MiB), most)
    parser.Parse(b"", True)
    _over("read_memory_mb", part, round((fixed + extent.grid_bytes()) / MiB), most)
    return extent
