"""Excel tables (ListObjects) in an .xlsx package: which sheet, where, which header row.

A team's tracker is often an Excel table; attaching it takes the table's sheet and header
row without asking. Reads the package's XML only (no cell values).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from xml.etree import ElementTree

from sheets.backends.xlsx_package import _local, _targets

_REF = re.compile(r"^\$?([A-Z]{1,3})\$?(\d+)(?::\$?([A-Z]{1,3})\$?(\d+))?$")


@dataclass(frozen=True)
class ExcelTable:
    """One table: its name, sheet, range (``A3:F40``) and header row (1-based; 0: none)."""

    name: str
    sheet: str
    ref: str
    header_row: int


def _sheets(zf: zipfile.ZipFile, names: dict[str, str]) -> list[tuple[str, str]]:
    """(tab name, worksheet member) in workbook order."""
    workbook = next((m for _, kind, m in _targets(zf, names, "") if kind == "officeDocument"), None)
    if workbook is None:
        return []
    rels = {
        rid: member for rid, kind, member in _targets(zf, names, workbook) if kind == "worksheet"
    }
    out = []
    for el in ElementTree.fromstring(zf.read(workbook)).iter():
        if _local(el.tag) == "sheet":
            rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), None)
            if rid in rels:
                out.append((el.get("name", ""), rels[rid]))
    return out


def find_tables(data: bytes) -> list[ExcelTable]:
    """The tables of a workbook, in sheet order; [] when it has none (or is not a package)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return []
    with zf:
        names = {name.lower(): name for name in zf.namelist()}
        found = []
        for tab, member in _sheets(zf, names):
            for _, kind, part in _targets(zf, names, member):
                if kind != "table":
                    continue
                root = ElementTree.fromstring(zf.read(part))
                match = _REF.match(root.get("ref", ""))
                if match is None:
                    continue
                headers = root.get("headerRowCount", "1") != "0"
                found.append(
                    ExcelTable(
                        root.get("displayName") or root.get("name") or part,
                        tab,
                        root.get("ref", ""),
                        int(match.group(2)) if headers else 0,
                    )
                )
        return found
