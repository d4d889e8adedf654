"""Add or replace one worksheet of an existing .xlsx package, leaving every other part alone.

Adding a tab touches exactly: the new worksheet part, ``workbook.xml`` (one ``<sheet>`` in
``<sheets>``), the workbook's rels (one ``Relationship``), ``[Content_Types].xml`` (one
``Override``) and styles.xml (the appended formats). Replacing a tab touches its worksheet part
(its rels emptied, so the old drawings/tables/comments it pointed to are no longer shown on
it), styles.xml and, only if that sheet had formulas, ``calcChain.xml``. Each edit is a byte
splice: the rest of those parts, and every other member of the zip, stays byte-identical
(see :func:`sheets.backends.xlsx_package.rewrite`).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

from sheets.backends.xlsx import _CALC_CELL, _drop_calc_entries
from sheets.backends.xlsx_limits import XlsxLimits, check_package
from sheets.backends.xlsx_package import _targets, rewrite

REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_WORKSHEET_TYPE = REL_NS + "/worksheet"
_WORKSHEET_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
_EMPTY_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships '
    b'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>'
)
_BAD_NAME = re.compile(r"[\[\]:*?/\\]")


def check_tab_name(name: str) -> None:
    """Excel's rules for a sheet name."""
    if not 1 <= len(name) <= 31 or _BAD_NAME.search(name) or name.startswith("'"):
        raise ValueError(
            f"{name!r} cannot be a sheet name (1-31 characters, none of [ ] : * ? / \\, "
            "not starting with ')"
        )


@dataclass
class _Sheet:
    member: str
    sheet_id: int
    kind: str  # worksheet, chartsheet, ...


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass
class Book:
    """The parts of a package that adding or replacing a tab reads and edits."""

    data: bytes
    workbook: str
    workbook_xml: bytes
    rels: str
    rels_xml: bytes
    types: str
    types_xml: bytes
    styles: str | None
    styles_xml: bytes | None
    calc_chain: str | None
    calc_chain_xml: bytes | None
    date1904: bool
    sheets: dict[str, _Sheet]
    names: dict[str, str]  # lower-cased member name -> member name
    replacements: dict[str, bytes] = field(default_factory=dict)
    additions: dict[str, bytes] = field(default_factory=dict)
    removals: set[str] = field(default_factory=set)
    workbook_xml_changed: bool = False

    def put_sheet(self, name: str, xml: bytes, *, hidden: bool = False) -> str:
        """Replace the worksheet ``name`` (``"replaced"``) or add it (``"added"``)."""
        check_tab_name(name)
        existing = next((s for n, s in self.sheets.items() if n.lower() == name.lower()), None)
        if existing is not None:
            if existing.kind != "worksheet":
                raise ValueError(f"{name!r} is a {existing.kind}, not a worksheet")
            self._replace(existing, xml)
            return "replaced"
        self._add(name, xml, hidden)
        return "added"

    def set_styles(self, xml: bytes) -> None:
        if self.styles is None or xml == self.styles_xml:
            return
        self.replacements[self.styles] = xml

    def package(self) -> bytes:
        """The new package bytes."""
        if self.workbook_xml_changed:
            self.replacements[self.workbook] = self.workbook_xml
        return rewrite(self.data, self.replacements, self.additions, frozenset(self.removals))

    def _replace(self, sheet: _Sheet, xml: bytes) -> None:
        self.replacements[sheet.member] = xml
        folder, base = posixpath.split(sheet.member)
        rels = self.names.get(posixpath.join(folder, "_rels", base + ".rels").lower())
        if rels is not None:
            self.replacements[rels] = _EMPTY_RELS
        if self.calc_chain is not None and self.calc_chain_xml is not None:
            self._drop_calc_chain_of(sheet.sheet_id)

    def _drop_calc_chain_of(self, sheet_id: int) -> None:
        class _Every:
            def __contains__(self, _: object) -> bool:
                return True

        chain = _drop_calc_entries(self.calc_chain_xml or b"", sheet_id, _Every())  # type: ignore[arg-type]
        if chain == self.calc_chain_xml:
            return
        if _CALC_CELL.search(chain) is not None:
            self.replacements[self.calc_chain] = chain  # type: ignore[index]
            return
        # the sheet held the workbook's last formulas: calcChain goes (Excel rebuilds it)
        assert self.calc_chain is not None
        self.removals.add(self.calc_chain)
        target = posixpath.relpath(self.calc_chain, posixpath.dirname(self.workbook))
        self.rels_xml = re.sub(
            rb"<(?:[\w.-]+:)?Relationship\b[^>]*Target=\"/?(?:%b|%b)\"[^>]*/>"
            % (re.escape(target.encode()), re.escape(self.calc_chain.encode())),
            b"",
            self.rels_xml,
        )
        self.replacements[self.rels] = self.rels_xml
        self.types_xml = re.sub(
            rb"<(?:[\w.-]+:)?Override\b[^>]*PartName=\"/%b\"[^>]*/>"
            % re.escape(self.calc_chain.encode()),
            b"",
            self.types_xml,
        )
        self.replacements[self.types] = self.types_xml

    def _new_member(self) -> str:
        folders = [posixpath.dirname(s.member) for s in self.sheets.values()]
        folder = (
            folders[0]
            if folders
            else posixpath.join(posixpath.dirname(self.workbook), "worksheets")
        )
        n = 1
        while posixpath.join(folder, f"sheet{n}.xml").lower() in self.names:
            n += 1
        return posixpath.join(folder, f"sheet{n}.xml")

    def _add(self, name: str, xml: bytes, hidden: bool) -> None:
        member = self._new_member()
        self.names[member.lower()] = member
        self.additions[member] = xml
        rel_ids = set(re.findall(rb'\bId="([^"]*)"', self.rels_xml))
        n = 1
        while b"rIdOB%d" % n in rel_ids:
            n += 1
        rid = f"rIdOB{n}"
        target = posixpath.relpath(member, posixpath.dirname(self.workbook))
        close = re.search(rb"</((?:[\w.-]+:)?)Relationships>", self.rels_xml)
        if close is None:
            raise ValueError(f"{self.rels} has no Relationships element")
        rel = b'<%bRelationship Id="%b" Type="%b" Target="%b"/>' % (
            close.group(1),
            rid.encode(),
            _WORKSHEET_TYPE.encode(),
            target.encode(),
        )
        self.rels_xml = self.rels_xml[: close.start()] + rel + self.rels_xml[close.start() :]
        self.replacements[self.rels] = self.rels_xml
        self._add_sheet_element(name, rid, hidden)
        close = re.search(rb"</((?:[\w.-]+:)?)Types>", self.types_xml)
        if close is None:
            raise ValueError("[Content_Types].xml has no Types element")
        override = b'<%bOverride PartName="/%b" ContentType="%b"/>' % (
            close.group(1),
            member.encode(),
            _WORKSHEET_CT.encode(),
        )
        self.types_xml = (
            self.types_xml[: close.start()] + override + self.types_xml[close.start() :]
        )
        self.replacements[self.types] = self.types_xml
        self.sheets[name] = _Sheet(member, 0, "worksheet")

    def _add_sheet_element(self, name: str, rid: str, hidden: bool) -> None:
        xml = self.workbook_xml
        close = re.search(rb"</((?:[\w.-]+:)?)sheets>", xml)
        if close is None:
            raise ValueError(f"{self.workbook} has no <sheets>")
        ids = [int(i) for i in re.findall(rb'<(?:[\w.-]+:)?sheet\b[^>]*?\ssheetId="(\d+)"', xml)]
        # only a binding on the root element is in scope here: openpyxl with lxml declares
        # the prefix on each <sheet> instead, which does not reach a new sibling
        root = re.search(rb"<(?![?!])[^>]*>", xml)
        bound = re.search(rb'\sxmlns:([\w.-]+)="%b"' % REL_NS.encode(), root.group(0))
        prefix, declare = (
            (bound.group(1), b"") if bound else (b"r", b' xmlns:r="%b"' % REL_NS.encode())
        )
        state = b' state="hidden"' if hidden else b""
        element = b'<%bsheet name=%b sheetId="%d"%b%b %b:id="%b"/>' % (
            close.group(1),
            quoteattr(name).encode("utf-8"),
            max(ids, default=0) + 1,
            state,
            declare,
            prefix,
            rid.encode(),
        )
        self.workbook_xml = xml[: close.start()] + element + xml[close.start() :]
        self.workbook_xml_changed = True


def open_book(data: bytes, limits: XlsxLimits | None = None) -> Book:
    """Read the package parts a tab edit needs (sizes checked first, from the central directory)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        check_package(zf, limits or XlsxLimits())
        names = {name.lower(): name for name in zf.namelist()}
        workbook = next(
            (m for _, kind, m in _targets(zf, names, "") if kind == "officeDocument"), None
        )
        types = names.get("[content_types].xml")
        if workbook is None or types is None:
            raise ValueError("not an .xlsx package: no workbook part")
        wb_folder, wb_base = posixpath.split(workbook)
        rels = names.get(posixpath.join(wb_folder, "_rels", wb_base + ".rels").lower())
        if rels is None:
            raise ValueError(f"not an .xlsx package: {workbook} has no relationships part")
        targets = {rid: (kind, member) for rid, kind, member in _targets(zf, names, workbook)}
        by_kind = {kind: member for kind, member in targets.values()}
        workbook_xml = zf.read(workbook)
        sheets, date1904 = {}, False
        for el in ElementTree.fromstring(workbook_xml).iter():
            tag = _local(el.tag)
            if tag == "workbookPr":
                date1904 = el.get("date1904", "0").lower() in ("1", "true")
            elif tag == "sheet":
                rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), "")
                kind, member = targets.get(rid, ("missing", ""))
                sheets[el.get("name", "")] = _Sheet(member, int(el.get("sheetId", "0")), kind)
        styles, chain = by_kind.get("styles"), by_kind.get("calcChain")
        return Book(
            data=data,
            workbook=workbook,
            workbook_xml=workbook_xml,
            rels=rels,
            rels_xml=zf.read(rels),
            types=types,
            types_xml=zf.read(types),
            styles=styles,
            styles_xml=zf.read(styles) if styles else None,
            calc_chain=chain,
            calc_chain_xml=zf.read(chain) if chain else None,
            date1904=date1904,
            sheets=sheets,
            names=names,
        )
