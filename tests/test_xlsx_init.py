"""Tracker tabs written into existing workbooks: nothing else in the package changes.

Real files: the Superstore workbook from ../shared/data (copied to tmp) and workbooks made here
with openpyxl. Linear cost is asserted by counting the cells and style edits the writer makes.
"""

from __future__ import annotations

import shutil
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from sheets.backends import xlsx_tracker
from sheets.backends.xlsx import XlsxBackend
from sheets.backends.xlsx_files import NotAWorkbook
from sheets.backends.xlsx_init import TabExists, write_tracker
from sheets.grid import CellWrite
from tests.conftest import shared_path

SUPERSTORE = ("data", "superstore", "Sample - Superstore.xlsx")
HEADERS = ["Order", "Status", "Qty", "Due", "Amount", "Sync status"]
CHOICES = {"Status": ["open", "shipped"], "Sync status": ["ok", "error"]}
# the only parts adding a tab may change (by inserting into them)
ADD_TOUCHES = {
    "[Content_Types].xml",
    "xl/workbook.xml",
    "xl/_rels/workbook.xml.rels",
    "xl/styles.xml",
}


def _rows(n: int, status: str = "open") -> list[list[object]]:
    return [[f"SO-{i:05d}", status, i, date(2024, 1, 2), Decimal("12.50"), None] for i in range(n)]


def _write(path: Path, tab: str, rows: list[list[object]], **kw: object) -> str:
    return write_tracker(
        path,
        tab,
        HEADERS,
        rows,
        key_header="Order",
        status_header="Sync status",
        status_choices=CHOICES,
        **kw,  # type: ignore[arg-type]
    )


def _members(path: Path) -> dict[str, tuple[int, int, bytes]]:
    """name -> (CRC, compressed size, raw compressed bytes) of every zip member."""
    out = {}
    data = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            at = info.header_offset  # the local header's own name and extra lengths
            lengths = int.from_bytes(data[at + 26 : at + 28], "little") + int.from_bytes(
                data[at + 28 : at + 30], "little"
            )
            start = at + 30 + lengths
            raw = data[start : start + info.compress_size]
            out[info.filename] = (info.CRC, info.compress_size, raw)
    return out


def _is_insertion(old: bytes, new: bytes) -> bool:
    """Whether ``new`` is ``old`` with one run of bytes inserted somewhere."""
    prefix = 0
    while prefix < len(old) and old[prefix] == new[prefix]:
        prefix += 1
    return new.endswith(old[prefix:]) and len(new) > len(old)


def _styles_only_appended(old: bytes, new: bytes) -> None:
    """styles.xml: numFmts/fonts/fills/cellXfs only gain entries at their end; the rest same."""
    old_root, new_root = ElementTree.fromstring(old), ElementTree.fromstring(new)
    grown = {"numFmts", "fonts", "fills", "cellXfs"}
    old_children = {c.tag.rsplit("}", 1)[-1]: c for c in old_root}
    new_children = {c.tag.rsplit("}", 1)[-1]: c for c in new_root}
    assert set(old_children) <= set(new_children) <= set(old_children) | {"numFmts"}
    for tag, element in new_children.items():
        before = [ElementTree.tostring(c) for c in old_children.get(tag, [])]
        after = [ElementTree.tostring(c) for c in element]
        if tag in grown:
            assert after[: len(before)] == before, tag
        else:
            assert ElementTree.tostring(element) == ElementTree.tostring(old_children[tag])


@pytest.fixture
def superstore(tmp_path: Path) -> Path:
    path = tmp_path / "superstore.xlsx"
    shutil.copyfile(shared_path(*SUPERSTORE), path)
    return path


def test_adding_a_tab_to_superstore_keeps_every_other_part(superstore: Path) -> None:
    before = _members(superstore)
    with zipfile.ZipFile(superstore) as zf:
        before_xml = {n: zf.read(n) for n in ADD_TOUCHES}
    assert _write(superstore, "Tracker", _rows(30)) == "added"
    after = _members(superstore)
    assert set(after) == set(before) | {"xl/worksheets/sheet4.xml"}
    for name, member in before.items():
        if name not in ADD_TOUCHES:
            assert after[name] == member, name  # same CRC, compressed size and raw bytes
    with zipfile.ZipFile(superstore) as zf:
        for name in ADD_TOUCHES - {"xl/styles.xml"}:
            assert _is_insertion(before_xml[name], zf.read(name)), name
        _styles_only_appended(before_xml["xl/styles.xml"], zf.read("xl/styles.xml"))
    wb = openpyxl.load_workbook(superstore)
    assert wb.sheetnames == ["Orders", "Returns", "People", "Tracker"]
    ws = wb["Tracker"]
    assert ws["A1"].font.bold and ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:F31"
    assert ws["D2"].value == datetime(2024, 1, 2) and ws["D2"].number_format == "yyyy-mm-dd"
    assert ws["E2"].number_format == "0.00" and ws["A2"].protection.locked
    assert not ws["B2"].protection.locked and ws.protection.sheet
    names = CalamineWorkbook.from_path(str(superstore)).sheet_names
    assert names == ["Orders", "Returns", "People", "Tracker"]
    snap = XlsxBackend(superstore, "Tracker").read()
    assert snap.rows[0] == HEADERS and snap.rows[1][:3] == ["SO-00000", "open", 0.0]
    XlsxBackend(superstore, "Tracker").write([CellWrite(2, 6, "ok")], snap)
    assert XlsxBackend(superstore, "Orders").read().rows[1][1] == "CA-2016-152156"


def test_refreshing_the_tab_touches_only_that_tab(superstore: Path) -> None:
    original = _members(superstore)
    _write(superstore, "Tracker", _rows(30))
    first = _members(superstore)
    unchanged = superstore.read_bytes()
    with pytest.raises(TabExists):
        _write(superstore, "Tracker", _rows(5))
    assert superstore.read_bytes() == unchanged
    assert _write(superstore, "Tracker", _rows(5, "shipped"), replace=True) == "replaced"
    second = _members(superstore)
    assert {n for n in second if second[n] != first.get(n)} == {"xl/worksheets/sheet4.xml"}
    assert all(second[n] == m for n, m in original.items() if n not in ADD_TOUCHES)
    rows = XlsxBackend(superstore, "Tracker").read().rows
    assert len(rows) == 6 and rows[5][1] == "shipped"


def test_an_existing_tab_of_the_users_is_refreshed_alone(tmp_path: Path) -> None:
    """A workbook made by someone else (openpyxl here): a chart, a defined name, formulas."""
    from openpyxl.chart import BarChart, Reference
    from openpyxl.workbook.defined_name import DefinedName

    path = tmp_path / "team.xlsx"
    wb = openpyxl.Workbook()
    data = wb.active
    data.title = "Data"
    for i in range(1, 6):
        data.append([f"r{i}", i, f"=B{i}*2"])
    chart = BarChart()
    chart.add_data(Reference(data, min_col=2, min_row=1, max_row=5))
    data.add_chart(chart, "E2")
    wb.defined_names["Totals"] = DefinedName("Totals", attr_text="Data!$B$1:$B$5")
    wb.create_sheet("Orders").append(["old", "stuff"])
    wb.save(path)
    before = _members(path)
    assert _write(path, "Orders", _rows(3), replace=True) == "replaced"
    after = _members(path)
    changed = {n for n in after if after[n] != before.get(n)}
    assert changed == {"xl/worksheets/sheet2.xml", "xl/styles.xml"}
    again = openpyxl.load_workbook(path)
    assert again["Data"]["C3"].value == "=B3*2" and again["Data"]._charts
    assert again.defined_names["Totals"].attr_text == "Data!$B$1:$B$5"
    assert [c.value for c in again["Orders"][1]] == HEADERS


def test_a_new_file_gets_the_tracker_tab(tmp_path: Path) -> None:
    path = tmp_path / "new.xlsx"
    assert _write(path, "Orders", _rows(2)) == "created"
    assert openpyxl.load_workbook(path).sheetnames == ["Orders"]
    long = {"Status": [f"status number {i}" for i in range(40)]}
    write_tracker(
        tmp_path / "lists.xlsx",
        "Orders",
        HEADERS,
        _rows(2),
        key_header="Order",
        status_header="Sync status",
        status_choices=long,
    )
    wb = openpyxl.load_workbook(tmp_path / "lists.xlsx")
    assert wb["Orders lists"].sheet_state == "hidden" and wb["Orders lists"]["A40"].value
    formulas = {dv.formula1 for dv in wb["Orders"].data_validations.dataValidation}
    assert formulas == {"'Orders lists'!$A$1:$A$40"}


def test_not_a_workbook_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "renamed.xlsx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    with pytest.raises(NotAWorkbook, match="Excel 97-2003"):
        _write(path, "Orders", _rows(2), replace=True)
    assert path.read_bytes()[:4] == b"\xd0\xcf\x11\xe0"


def test_cost_is_linear_in_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per row: one call per cell and no style edit (the quadratic openpyxl writer is gone)."""
    calls = {"cell": 0, "style": 0}
    cell, append = xlsx_tracker._cell, xlsx_tracker.TrackerStyles._append

    def counting_cell(*args: object) -> str:
        calls["cell"] += 1
        return cell(*args)  # type: ignore[arg-type]

    def counting_append(self: xlsx_tracker.TrackerStyles, *args: object) -> int:
        calls["style"] += 1
        return append(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(xlsx_tracker, "_cell", counting_cell)
    monkeypatch.setattr(xlsx_tracker.TrackerStyles, "_append", counting_append)
    seen = {}
    for n in (2_000, 8_000):
        calls.update(cell=0, style=0)
        _write(tmp_path / f"{n}.xlsx", "Orders", _rows(n))
        seen[n] = dict(calls)
    assert seen[2_000]["cell"] == 6 * 2_001 and seen[8_000]["cell"] == 6 * 8_001
    assert seen[2_000]["style"] == seen[8_000]["style"] <= 12
