"""The .xlsx package (OPC zip): locate a tab's parts and rewrite the zip member by member.

Untouched members are copied as raw compressed bytes (local header, data and data descriptor
verbatim; central directory record verbatim except the offset), so they stay byte-identical,
in the same order, with the same names and compression. Only replaced members are recompressed.
Archives this fast path does not handle (zip64, encryption, exotic methods) are rewritten with
:mod:`zipfile` instead, which keeps every member's content, order, name and method.
"""

from __future__ import annotations

import io
import posixpath
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from xml.etree import ElementTree

_EOCD = struct.Struct("<4s4H2LH")
_CDIR = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
_DATA_DESCRIPTOR_FLAG = 0x08
_MAX32 = 0xFFFFFFFF


@dataclass(frozen=True)
class SheetParts:
    """Where one tab lives inside the package."""

    sheet: str
    sheet_id: int
    styles: str | None
    calc_chain: str | None
    date1904: bool
    shared_strings: str | None = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _rels_of(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", name + ".rels")


def _targets(
    zf: zipfile.ZipFile, names: Mapping[str, str], part: str
) -> list[tuple[str, str, str]]:
    """(Id, type suffix, member name) for each internal relationship of ``part``."""
    rels = names.get(_rels_of(part).lower())
    if rels is None:
        return []
    base = posixpath.dirname(part)
    out = []
    for rel in ElementTree.fromstring(zf.read(rels)):
        if rel.get("TargetMode") == "External":
            continue
        target = rel.get("Target", "")
        path = target[1:] if target.startswith("/") else posixpath.join(base, target)
        member = names.get(posixpath.normpath(path).lower())
        if member is not None:
            out.append((rel.get("Id", ""), rel.get("Type", "").rsplit("/", 1)[-1], member))
    return out


def resolve_parts(zf: zipfile.ZipFile, tab: str) -> SheetParts:
    """Find the worksheet part of ``tab`` via the root rels, workbook.xml and its rels."""
    names = {name.lower(): name for name in zf.namelist()}
    workbook = next((m for _, kind, m in _targets(zf, names, "") if kind == "officeDocument"), None)
    if workbook is None:
        raise ValueError("not an .xlsx package: no officeDocument relationship")
    rels = {rid: (kind, member) for rid, kind, member in _targets(zf, names, workbook)}
    root = ElementTree.fromstring(zf.read(workbook))
    date1904 = False
    sheet_rid = sheet_id = None
    for el in root.iter():
        name = _local(el.tag)
        if name == "workbookPr":
            date1904 = el.get("date1904", "0").lower() in ("1", "true")
        elif name == "sheet" and el.get("name") == tab:
            sheet_rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), None)
            sheet_id = int(el.get("sheetId", "0"))
    if sheet_rid is None or sheet_rid not in rels or rels[sheet_rid][0] != "worksheet":
        raise KeyError(f"no worksheet named {tab!r} in the workbook")
    by_kind = {kind: member for kind, member in rels.values()}
    return SheetParts(
        sheet=rels[sheet_rid][1],
        sheet_id=sheet_id or 0,
        styles=by_kind.get("styles"),
        calc_chain=by_kind.get("calcChain"),
        date1904=date1904,
        shared_strings=by_kind.get("sharedStrings"),
    )


@dataclass(frozen=True)
class _Entry:
    name: str
    record: bytes  # central directory record, verbatim
    segment: tuple[int, int]  # local header .. end of data (descriptor included)
    method: int
    flags: int


def _entries(data: bytes) -> list[_Entry] | None:
    """Central directory entries, or None if the archive needs the zipfile fallback."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or data[at - 20 : at - 16] == b"PK\x06\x07":
        return None
    _, disk, _, _, total, _, cd_offset, _ = _EOCD.unpack_from(data, at)
    if disk or total == 0xFFFF or cd_offset == _MAX32:
        return None
    entries, pos = [], cd_offset
    for _ in range(total):
        fields = _CDIR.unpack_from(data, pos)
        flags, method, csize, usize = fields[3], fields[4], fields[8], fields[9]
        nlen, elen, clen, offset = fields[10], fields[11], fields[12], fields[16]
        if flags & 1 or method not in (0, 8) or _MAX32 in (csize, usize, offset):
            return None
        end = pos + _CDIR.size + nlen + elen + clen
        raw_name = data[pos + _CDIR.size : pos + _CDIR.size + nlen]
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
        lf = _LOCAL.unpack_from(data, offset)
        stop = offset + _LOCAL.size + lf[9] + lf[10] + csize
        if lf[2] & _DATA_DESCRIPTOR_FLAG:
            stop += 16 if data[stop : stop + 4] == b"PK\x07\x08" else 12
        entries.append(_Entry(name, data[pos:end], (offset, stop), method, flags))
        pos = end
    return entries


# Level 1: a large sheet part compresses about 3x faster than at the default 6 and ends
# up a little larger; Excel reads either, and writes its own level when the user saves.
DEFLATE_LEVEL = 1


def _deflate(content: bytes) -> bytes:
    comp = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)
    return comp.compress(content) + comp.flush()


def _new_record(name: str, like: bytes | None) -> bytes:
    """A central directory record for a new deflated member (times taken from ``like``)."""
    when = _CDIR.unpack_from(like)[5:7] if like else (0, 33)  # else 1980-01-01 00:00
    raw = name.encode("utf-8")
    flags = 0x800 if not raw.isascii() else 0
    fields = (b"PK\x01\x02", 20, 20, flags, 8, *when, 0, 0, 0, len(raw), 0, 0, 0, 0, 0, 0)
    return _CDIR.pack(*fields) + raw


def rewrite(
    data: bytes,
    replacements: Mapping[str, bytes],
    additions: Mapping[str, bytes] | None = None,
    removals: frozenset[str] = frozenset(),
) -> bytes:
    """A copy of the package ``data`` with the named members' contents replaced.

    ``additions`` are new members (deflated, after the existing ones); ``removals`` are
    members left out. Every other member is copied as raw bytes.
    """
    entries = _entries(data)
    if entries is None:
        return _rewrite_with_zipfile(data, replacements, additions or {}, removals)
    like = entries[0].record if entries else None
    for name, content in (additions or {}).items():
        entries.append(_Entry(name, _new_record(name, like), (0, 0), 8, 0))
        replacements = {**replacements, name: content}
    out = io.BytesIO()
    directory = []
    for entry in entries:
        if entry.name in removals:
            continue
        offset = out.tell()
        content = replacements.get(entry.name)
        if content is None:
            out.write(data[entry.segment[0] : entry.segment[1]])
            directory.append(entry.record[:42] + struct.pack("<L", offset) + entry.record[46:])
            continue
        fields = list(_CDIR.unpack_from(entry.record))
        payload = _deflate(content) if entry.method == 8 else content
        flags = entry.flags & ~_DATA_DESCRIPTOR_FLAG
        crc = zlib.crc32(content)
        raw_name = entry.record[_CDIR.size : _CDIR.size + fields[10]]
        out.write(
            _LOCAL.pack(
                b"PK\x03\x04",
                fields[2],
                flags,
                entry.method,
                fields[5],
                fields[6],
                crc,
                len(payload),
                len(content),
                len(raw_name),
                0,
            )
        )
        out.write(raw_name)
        out.write(payload)
        fields[3], fields[7], fields[8], fields[9], fields[16] = (
            flags,
            crc,
            len(payload),
            len(content),
            offset,
        )
        directory.append(_CDIR.pack(*fields) + entry.record[_CDIR.size :])
    cd_offset = out.tell()
    for record in directory:
        out.write(record)
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    comment = data[at + _EOCD.size :]
    n = len(directory)
    out.write(
        _EOCD.pack(b"PK\x05\x06", 0, 0, n, n, out.tell() - cd_offset, cd_offset, len(comment))
    )
    out.write(comment)
    return out.getvalue()


def _rewrite_with_zipfile(
    data: bytes,
    replacements: Mapping[str, bytes],
    additions: Mapping[str, bytes],
    removals: frozenset[str],
) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        dst.comment = src.comment
        for info in src.infolist():
            if info.filename in removals:
                continue
            content = replacements.get(info.filename)
            dst.writestr(info, src.read(info) if content is None else content)
        for name, content in additions.items():
            dst.writestr(name, content, zipfile.ZIP_DEFLATED)
    return out.getvalue()
