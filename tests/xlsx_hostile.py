"""Build .xlsx packages by hand, streaming: tracker sheets, zip bombs, huge cells, lying sizes.

Parts are raw-deflated piece by piece; a repeated piece is compressed once after a full flush
and its bytes repeated, so a 1 GB part costs ~1 MB of memory and well under a second to build.
Used by tests/test_xlsx_limits.py and bench/xlsx_limits.py.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

_LOCAL = struct.Struct("<4s5H3L2H")
_CDIR = struct.Struct("<4s6H3L5H2L")
_EOCD = struct.Struct("<4s4H2LH")
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"

Piece = tuple[bytes, int]  # content, times repeated


def _deflate(pieces: Iterable[Piece], level: int = 9) -> tuple[list[tuple[bytes, int]], int, int]:
    """(compressed blocks with repeat counts, crc, inflated size) of the concatenation."""
    blocks, crc, size = [], 0, 0
    for content, times in pieces:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15)
        blocks.append((comp.compress(content) + comp.flush(zlib.Z_FULL_FLUSH), times))
        for _ in range(times):
            crc = zlib.crc32(content, crc)
        size += len(content) * times
    blocks.append((zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH), 1))
    return blocks, crc, size


def write_package(
    path: Path, parts: dict[str, list[Piece]], declared: dict | None = None, level: int = 9
) -> None:
    """A zip of deflated ``parts``; ``declared`` overrides a part's size in its headers.

    ``level`` is zlib's: 1 deflates a few hundred MB of distinct rows in seconds, 9 minutes.
    """
    declared = declared or {}
    directory = []
    with open(path, "wb") as fh:
        for name, pieces in parts.items():
            blocks, crc, size = _deflate(pieces, level)
            packed = sum(len(b) * t for b, t in blocks)
            size = declared.get(name, size)
            raw = name.encode()
            offset = fh.tell()
            fh.write(_LOCAL.pack(b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, packed, size, len(raw), 0))
            fh.write(raw)
            for block, times in blocks:
                for _ in range(times):
                    fh.write(block)
            directory.append(
                _CDIR.pack(
                    b"PK\x01\x02",
                    20,
                    20,
                    0,
                    8,
                    0,
                    0x21,
                    crc,
                    packed,
                    size,
                    len(raw),
                    0,
                    0,
                    0,
                    0,
                    0,
                    offset,
                )
                + raw
            )
        start = fh.tell()
        for record in directory:
            fh.write(record)
        n = len(directory)
        fh.write(_EOCD.pack(b"PK\x05\x06", 0, 0, n, n, fh.tell() - start, start, 0))


def _one(text: str) -> list[Piece]:
    return [(text.encode(), 1)]


def workbook(
    path: Path,
    sheet: list[Piece],
    shared: list[Piece] | None = None,
    shared_name: str = "sst.xml",
    **kw,
) -> Path:
    """A one-tab ("Orders") workbook with the given worksheet (and sharedStrings) content.

    calamine reads shared strings only from ``xl/sharedStrings.xml`` (Excel's name), whatever
    the relationship says: a workbook calamine must read passes ``shared_name`` to match.
    """
    types = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
        'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
    )
    rels = [f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>']
    parts = {
        "[Content_Types].xml": _one(types),
        "_rels/.rels": _one(
            f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" '
            f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": _one(
            f'<workbook xmlns="{NS}" xmlns:r="{REL}"><sheets>'
            f'<sheet name="Orders" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/worksheets/sheet1.xml": sheet,
    }
    if shared is not None:
        rels.append(f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="{shared_name}"/>')
        parts[f"xl/{shared_name}"] = shared
    parts["xl/_rels/workbook.xml.rels"] = _one(
        f'<Relationships xmlns="{PKG}">{"".join(rels)}</Relationships>'
    )
    write_package(path, parts, **kw)
    return path


def sheet(body: list[Piece]) -> list[Piece]:
    head = f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}"><sheetData>'
    return [(head.encode(), 1), *body, (b"</sheetData></worksheet>", 1)]


def tracker_rows(rows: int, start: int = 2) -> list[Piece]:
    """``rows`` 12-column rows (text, numbers, a date serial), built in blocks of 1,000."""
    pieces = [
        (b'<row r="1">' + b"".join(b'<c t="inlineStr"><is><t>H%d</t></is></c>' % i
                                   for i in range(12)) + b"</row>", 1)
    ]  # fmt: skip
    for block in range(start, start + rows, 1000):
        out = []
        for r in range(block, min(block + 1000, start + rows)):
            cells = [
                b'<c r="A%d" t="inlineStr"><is><t>SO-%07d</t></is></c>' % (r, r),
                *(
                    b'<c r="%s%d"><v>%d.5</v></c>' % (col, r, r % 97)
                    for col in (b"B", b"C", b"D", b"E", b"F", b"G", b"H", b"I", b"J")
                ),
                b'<c r="K%d" t="inlineStr"><is><t>note %d</t></is></c>' % (r, r),
                b'<c r="L%d" t="b"><v>%d</v></c>' % (r, r % 2),
            ]
            out.append(b'<row r="%d">%s</row>' % (r, b"".join(cells)))
        pieces.append((b"".join(out), 1))
    return pieces


STATUSES = (b"Open", b"Packed", b"Shipped", b"Invoiced")


def status_strings() -> list[Piece]:
    """The sharedStrings part of :func:`narrow_tracker_rows` (its status values)."""
    items = b"".join(b"<si><t>%s</t></si>" % s for s in STATUSES)
    head = b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="%s">' % NS.encode()
    return [(head + items + b"</sst>", 1)]


def narrow_tracker_rows(rows: int) -> list[Piece]:
    """A header + ``rows`` rows of a narrow tracker, as Excel saves it (every cell has ``r``):
    Order (inline text key), Status (shared string), Qty, Amount, Due (a date serial).

    One ``%`` format per row, in blocks of 10,000 rows: 1,048,575 rows in a few seconds.
    """
    names = (b"Order", b"Status", b"Qty", b"Amount", b"Due")
    header = b"".join(
        b'<c r="%c1" t="inlineStr"><is><t>%s</t></is></c>' % (65 + i, name)
        for i, name in enumerate(names)
    )
    pieces = [(b'<row r="1">' + header + b"</row>", 1)]
    row = (
        b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>SO-%07d</t></is></c>'
        b'<c r="B%d" t="s"><v>%d</v></c><c r="C%d"><v>%d</v></c>'
        b'<c r="D%d"><v>%d.%02d</v></c><c r="E%d"><v>%d</v></c></row>'
    )
    last = rows + 1
    for block in range(2, last + 1, 10_000):
        pieces.append((b"".join(
            row % (r, r, r, r, r % 4, r, r % 50 + 1, r, r % 9973, r % 100, r, 45_000 + r % 730)
            for r in range(block, min(block + 10_000, last + 1))
        ), 1))  # fmt: skip
    return pieces


def text_cell(ref: str, chunk: str, times: int) -> list[Piece]:
    """One inline-string cell whose text is ``chunk`` repeated ``times``."""
    row = ref.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return [
        (f'<row r="{row}"><c r="{ref}" t="inlineStr"><is><t>'.encode(), 1),
        (chunk.encode(), times),
        (b"</t></is></c></row>", 1),
    ]
