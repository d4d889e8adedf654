"""Fidelity: after a write, everything outside the written cells is as Excel left it.

Runs on copies of the real Superstore and Northwind workbooks (../shared/data) and on a
synthetic workbook carrying Excel-only extLst content (x14 validations, sparklines).
"""

from __future__ import annotations

import re
import shutil
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from sheets.backends.xlsx import XlsxBackend
from sheets.grid import CellWrite
from tests.conftest import shared_path

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _copy(tmp_path: Path, relative: str) -> Path:
    source = shared_path("data", relative)
    return Path(shutil.copy(source, tmp_path / source.name))


def _members(path: Path) -> dict[str, tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: (i, zf.read(i)) for i in zf.infolist()}


def _canon(el: ET.Element) -> tuple:
    return el.tag, el.attrib, el.text, [_canon(x) for x in el]


def _cells(xml: bytes) -> tuple[dict[str, tuple], dict[str, dict], list[tuple[str, bytes]]]:
    """Cells (attrs, children) and row attrs of sheetData, and every other top-level element."""
    root = ET.fromstring(xml)
    cells, rows, others = {}, {}, []
    for child in root:
        if child.tag != NS + "sheetData":
            others.append((child.tag, ET.tostring(child)))
            continue
        for row in child:
            rows[row.get("r")] = dict(row.attrib)
            for c in row:
                cells[c.get("r")] = _canon(c)
    return cells, rows, others


def _assert_only_written_changed(
    before: Path,
    after: Path,
    sheet: str,
    written: set[str],
    changed_parts: frozenset[str] = frozenset(),
) -> None:
    old, new = _members(before), _members(after)
    assert list(old) == list(new)  # same members, same order
    for name, (info, data) in old.items():
        new_info, new_data = new[name]
        assert new_info.compress_type == info.compress_type, name
        if name == sheet or name in changed_parts:
            continue
        assert new_data == data, f"{name} changed"
        assert (new_info.CRC, new_info.compress_size) == (info.CRC, info.compress_size), name
    old_cells, old_rows, old_other = _cells(old[sheet][1])
    new_cells, new_rows, new_other = _cells(new[sheet][1])
    for ref in set(old_cells) | set(new_cells):
        if ref not in written:
            assert old_cells.get(ref) == new_cells.get(ref), ref
    for r, attrs in old_rows.items():
        assert {k: v for k, v in new_rows[r].items() if k != "spans"} == {
            k: v for k, v in attrs.items() if k != "spans"
        }, r
    dimension = NS + "dimension"
    assert [o for o in old_other if o[0] != dimension] == [
        o for o in new_other if o[0] != dimension
    ]


CASES = [
    (
        "superstore/Sample - Superstore.xlsx",
        "Orders",
        "xl/worksheets/sheet1.xml",
        [
            CellWrite(2, 5, "Same Day"),  # shared string -> inline string
            CellWrite(3, 18, Decimal("999.99")),
            CellWrite(4, 3, date(2020, 2, 29)),  # date-styled cell keeps s="1"
            CellWrite(5, 7, None),  # cleared
            CellWrite(10_000, 2, "CA-2099-000001"),  # new row past the table
        ],
    ),
    (
        "northwind/Northwind.xlsx",
        "Orders",
        "xl/worksheets/sheet6.xml",
        [
            CellWrite(2, 12, "Marne"),  # missing cell inserted mid-row
            CellWrite(3, 8, 12.5),
            CellWrite(4, 6, date(1996, 7, 20)),
            CellWrite(831, 9, "Richter & Söhne <GmbH>"),
            CellWrite(832, 1, 11078),
        ],
    ),
]


@pytest.mark.parametrize(("relative", "tab", "sheet", "writes"), CASES)
def test_real_workbook_fidelity(
    tmp_path: Path, relative: str, tab: str, sheet: str, writes: list[CellWrite]
) -> None:
    original = _copy(tmp_path, relative)
    target = Path(shutil.copy(original, tmp_path / "synced.xlsx"))
    backend = XlsxBackend(target, tab)
    snap = backend.read()
    backend.write(writes, snap)

    written = {f"{openpyxl.utils.get_column_letter(w.col)}{w.row}" for w in writes}
    _assert_only_written_changed(original, target, sheet, written)

    rows = backend.read().rows
    wanted = {(w.row, w.col): w.value for w in writes}
    wb = openpyxl.load_workbook(target, read_only=True)
    first = min(r for r, _ in wanted)
    seen = {
        (first + i, j + 1): value
        for i, row in enumerate(wb[tab].iter_rows(min_row=first, values_only=True))
        for j, value in enumerate(row)
        if (first + i, j + 1) in wanted
    }
    for (r, c), value in wanted.items():
        expected = float(value) if isinstance(value, Decimal | int) else value
        assert rows[r - 1][c - 1] == expected
        cell = seen.get((r, c))
        assert (cell.date() if isinstance(value, date) else cell) == expected
    original_names = openpyxl.load_workbook(original, read_only=True).defined_names
    assert {n: d.attr_text for n, d in wb.defined_names.items()} == {
        n: d.attr_text for n, d in original_names.items()
    }
    assert (
        CalamineWorkbook.from_path(str(target)).sheet_names
        == CalamineWorkbook.from_path(str(original)).sheet_names
    )


def test_overwriting_a_formula_updates_only_calc_chain(tmp_path: Path) -> None:
    original = _copy(tmp_path, "northwind/Northwind.xlsx")
    target = Path(shutil.copy(original, tmp_path / "synced.xlsx"))
    backend = XlsxBackend(target, "Orders Details")
    backend.write([CellWrite(2, 6, 1.5)], backend.read())
    _assert_only_written_changed(
        original, target, "xl/worksheets/sheet5.xml", {"F2"}, frozenset({"xl/calcChain.xml"})
    )
    old_chain = _members(original)["xl/calcChain.xml"][1]
    new_chain = _members(target)["xl/calcChain.xml"][1]
    assert b'<c r="F2" i="4" l="1"/><c r="F3" i="4"/>' in old_chain
    assert b'<c r="F3" i="4"/>' in new_chain and b'r="F2"' not in new_chain
    assert len(new_chain) == len(old_chain) - len(b'<c r="F2" i="4" l="1"/>')
    assert openpyxl.load_workbook(target)["Orders Details"]["F3"].value.startswith("=")


EXT = (
    b'<extLst><ext uri="{CCE6A557-97BC-4b89-ADB6-D9C93CAAB3DF}" '
    b'xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main">'
    b'<x14:dataValidations count="1" xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main">'
    b'<x14:dataValidation type="list" allowBlank="1"><x14:formula1><xm:f>Lists!$A$1:$A$3</xm:f>'
    b"</x14:formula1><xm:sqref>B2:B50</xm:sqref></x14:dataValidation></x14:dataValidations></ext>"
    b'<ext uri="{05C60535-1F16-4fd2-B633-F4F36F0B64E0}" '
    b'xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main">'
    b'<x14:sparklineGroups xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main">'
    b'<x14:sparklineGroup displayEmptyCellsAs="gap"><x14:colorSeries rgb="FF376092"/>'
    b"<x14:sparklines><x14:sparkline><xm:f>Data!C2:E2</xm:f><xm:sqref>F2</xm:sqref>"
    b"</x14:sparkline></x14:sparklines></x14:sparklineGroup></x14:sparklineGroups></ext></extLst>"
)


def _synthetic(tmp_path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append(["Key", "Status", "Q1", "Q2", "Q3", "Trend"])
    for i in range(2, 6):
        ws.append([f"K{i}", "open", i, i * 2, i * 3, None])
    ws.merge_cells("A8:C8")
    ws.conditional_formatting.add(
        "C2:E5", openpyxl.formatting.rule.CellIsRule(operator="greaterThan", formula=["5"])
    )
    wb.create_sheet("Lists").append(["open"])
    path = tmp_path / "synthetic.xlsx"
    wb.save(path)
    with zipfile.ZipFile(path) as src:
        items = [(i, src.read(i)) for i in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in items:
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</worksheet>", EXT + b"</worksheet>")
            dst.writestr(info, data)
    return path


def test_extlst_validation_and_sparklines_survive_byte_for_byte(tmp_path: Path) -> None:
    original = _synthetic(tmp_path)
    target = Path(shutil.copy(original, tmp_path / "synced.xlsx"))
    backend = XlsxBackend(target, "Data")
    writes = [CellWrite(3, 2, "closed"), CellWrite(9, 1, "K9"), CellWrite(2, 3, 42)]
    backend.write(writes, backend.read())
    sheet = "xl/worksheets/sheet1.xml"
    _assert_only_written_changed(original, target, sheet, {"B3", "A9", "C2"})
    old_xml, new_xml = _members(original)[sheet][1], _members(target)[sheet][1]
    assert EXT in new_xml
    tail = old_xml[old_xml.index(b"</sheetData>") :]
    assert new_xml.endswith(tail)  # merges, conditional formats, extLst: verbatim bytes
    assert backend.read().rows[8][0] == "K9"
    assert openpyxl.load_workbook(target)["Data"]["C2"].value == 42


def test_prefixed_namespace_and_empty_sheet_data(tmp_path: Path) -> None:
    """Some generators write ``<x:worksheet>`` and ``<x:sheetData/>``."""
    path = tmp_path / "prefixed.xlsx"
    openpyxl.Workbook().save(path)
    with zipfile.ZipFile(path) as src:
        items = [(i, src.read(i)) for i in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in items:
            if info.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb"<(/?)(\w)", rb"<\1x:\2", data)
                data = data.replace(b"<x:worksheet xmlns=", b"<x:worksheet xmlns:x=")
                data = data.replace(b"<x:sheetData></x:sheetData>", b"<x:sheetData/>")
            dst.writestr(info, data)
    backend = XlsxBackend(path, "Sheet")
    backend.write([CellWrite(1, 1, "Key"), CellWrite(3, 2, 7)], backend.read())
    xml = _members(path)["xl/worksheets/sheet1.xml"][1]
    assert b'<x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>Key</x:t>' in xml
    assert backend.read().rows == [["Key", None], [None, None], [None, 7.0]]
    assert openpyxl.load_workbook(path)["Sheet"]["B3"].value == 7
