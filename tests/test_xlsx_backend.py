"""XlsxBackend: typed reads, every value type written in place, conflicts, no-op writes."""

from __future__ import annotations

import os
import re
import stat
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from openpyxl.styles import Font
from python_calamine import CalamineWorkbook

from sheets.backends.xlsx import XlsxBackend
from sheets.backends.xlsx_init import write_new_tracker
from sheets.backends.xlsx_sheet import SharedFormulaError
from sheets.grid import CellWrite, SheetChangedError


@pytest.fixture
def book(tmp_path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Orders"
    ws.append(["Order", "Qty", "Price", "Due", "Paid", "Note", "Total"])
    ws.append(["SO-1", 3, 2.5, date(2024, 5, 6), True, "first", "=B2*C2"])
    ws.append(["SO-2", 4, 1.25, datetime(2024, 5, 7, 13, 30), False, None, "=B3*C3"])
    ws["A1"].font = Font(bold=True)
    ws["F2"].font = Font(italic=True, color="FF0000")
    ws["D2"].number_format = "yyyy-mm-dd"
    ws["D3"].number_format = "yyyy-mm-dd hh:mm"
    wb.create_sheet("Other")["A1"] = "=Orders!G2"
    path = tmp_path / "tracker.xlsx"
    wb.save(path)
    return path


def _write(path: Path, *writes: CellWrite) -> XlsxBackend:
    backend = XlsxBackend(path, "Orders")
    backend.write(list(writes), backend.read())
    return backend


def test_read_types_and_empty_cells(book: Path) -> None:
    snap = XlsxBackend(book, "Orders").read()
    assert snap.rows[0] == ["Order", "Qty", "Price", "Due", "Paid", "Note", "Total"]
    order, qty, price, due, paid, note, _ = snap.rows[1]
    assert (order, qty, price, due, paid, note) == (
        "SO-1",
        3.0,
        2.5,
        date(2024, 5, 6),
        True,
        "first",
    )
    assert snap.rows[2][3] == datetime(2024, 5, 7, 13, 30)
    assert snap.rows[2][5] is None
    assert snap.fingerprint and snap.fingerprint.startswith("sha256:")


def test_read_pads_from_a1(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active["C3"] = "x"
    wb.active.title = "T"
    wb.save(tmp_path / "p.xlsx")
    assert XlsxBackend(tmp_path / "p.xlsx", "T").read().rows == [
        [None, None, None],
        [None, None, None],
        [None, None, "x"],
    ]


def test_unknown_tab(book: Path) -> None:
    with pytest.raises(KeyError):
        XlsxBackend(book, "Nope").read()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("héllo <&> ", "héllo <&> "),
        ("line1\nline2", "line1\nline2"),
        ("_x0041_ literal\r", "_x0041_ literal\r"),
        (42, 42.0),
        (-0.125, -0.125),
        (Decimal("1234.5678"), 1234.5678),
        (True, True),
        (False, False),
        (date(2025, 2, 28), date(2025, 2, 28)),
        (datetime(2025, 2, 28, 23, 59, 58), datetime(2025, 2, 28, 23, 59, 58)),
        (date(1900, 1, 1), date(1900, 1, 1)),
        (date(1900, 3, 1), date(1900, 3, 1)),
        (None, None),
        ("", None),
    ],
)
def test_write_each_type(book: Path, value: object, expected: object) -> None:
    backend = _write(book, CellWrite(2, 6, value), CellWrite(9, 2, value))  # type: ignore[arg-type]
    rows = backend.read().rows
    assert rows[1][5] == expected
    assert (rows[8][1] if len(rows) > 8 else None) == expected  # clearing adds no row
    assert openpyxl.load_workbook(book)["Orders"]["F2"].font.italic  # style kept


def test_decimal_written_exactly(book: Path) -> None:
    _write(book, CellWrite(2, 3, Decimal("0.1000000000000000055511151231257827")))
    xml = zipfile.ZipFile(book).read("xl/worksheets/sheet1.xml")
    assert b"<v>0.1000000000000000055511151231257827</v>" in xml


def test_dates_get_a_date_format(book: Path) -> None:
    _write(book, CellWrite(5, 6, date(2030, 1, 2)), CellWrite(6, 6, datetime(2030, 1, 2, 3, 4)))
    ws = openpyxl.load_workbook(book)["Orders"]
    assert ws["F5"].value == datetime(2030, 1, 2)
    assert ws["F5"].number_format == "mm-dd-yy"  # built-in 14
    assert ws["F6"].number_format == "m/d/yy h:mm"  # built-in 22
    _write(book, CellWrite(2, 6, date(2030, 1, 2)))
    ws = openpyxl.load_workbook(book)["Orders"]
    assert ws["F2"].number_format == "mm-dd-yy"
    assert ws["F2"].font.italic and ws["F2"].font.color.rgb == "00FF0000"


def test_new_rows_beyond_the_end_and_dimension(book: Path) -> None:
    backend = _write(
        book,
        CellWrite(10, 1, "SO-9"),
        CellWrite(10, 9, 1),
        CellWrite(7, 3, 2.0),
        CellWrite(1, 8, "X"),
    )
    rows = backend.read().rows
    assert rows[9][0] == "SO-9" and rows[9][8] == 1.0 and rows[6][2] == 2.0
    assert rows[0][7] == "X"
    ws = openpyxl.load_workbook(book)["Orders"]
    assert ws.dimensions == "A1:I10"
    rows_xml = zipfile.ZipFile(book).read("xl/worksheets/sheet1.xml")
    order = [int(r) for r in re.findall(rb'<row r="(\d+)"', rows_xml)]
    assert order == sorted(order)


def test_formulas_elsewhere_preserved_and_written_formula_dropped(book: Path) -> None:
    _write(book, CellWrite(2, 2, 10), CellWrite(3, 7, 99))
    ws = openpyxl.load_workbook(book)["Orders"]
    assert ws["G2"].value == "=B2*C2"
    assert ws["G3"].value == 99
    assert openpyxl.load_workbook(book)["Other"]["A1"].value == "=Orders!G2"


def test_shared_formula_anchor_refused(tmp_path: Path) -> None:
    path = tmp_path / "shared.xlsx"
    openpyxl.Workbook().save(path)
    _replace_member(
        path,
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(
            b"<sheetData></sheetData>",
            b'<sheetData><row r="1"><c r="A1"><f t="shared" ref="A1:A2" si="0">1+1</f><v>2</v>'
            b'</c></row><row r="2"><c r="A2"><f t="shared" si="0"/><v>2</v></c></row></sheetData>',
        ),
    )
    backend = XlsxBackend(path, "Sheet")
    with pytest.raises(SharedFormulaError):
        backend.write([CellWrite(1, 1, 5)], backend.read())
    backend.write([CellWrite(2, 1, 5)], backend.read())  # a dependent cell is fine
    assert backend.read().rows[1][0] == 5.0


def test_saved_by_someone_else_between_read_and_write(book: Path) -> None:
    backend = XlsxBackend(book, "Orders")
    snap = backend.read()
    wb = openpyxl.load_workbook(book)
    wb["Orders"]["F3"] = "their edit"
    wb.save(book)
    theirs = book.read_bytes()
    with pytest.raises(SheetChangedError):
        backend.write([CellWrite(2, 6, "ours")], snap)
    assert book.read_bytes() == theirs
    assert backend.read().rows[2][5] == "their edit"
    assert [p.name for p in book.parent.iterdir()] == [book.name]  # no temp file left


def test_change_during_write_is_detected(book: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A save landing after our patch was built but before the replace wins."""
    import sheets.backends.xlsx as xlsx

    backend = XlsxBackend(book, "Orders")
    snap = backend.read()
    real_patch = xlsx.patch_package

    def patch_then_someone_saves(data: bytes, tab: str, cells: dict) -> bytes:
        out = real_patch(data, tab, cells)
        book.write_bytes(data)  # same bytes, but a new save (mtime) all the same
        os.utime(book, ns=(1, 1))
        return out

    monkeypatch.setattr(xlsx, "patch_package", patch_then_someone_saves)
    with pytest.raises(SheetChangedError):
        backend.write([CellWrite(2, 6, "ours")], snap)
    assert [p.name for p in book.parent.iterdir()] == [book.name]


def test_no_writes_never_touches_the_file(book: Path) -> None:
    backend = XlsxBackend(book, "Orders")
    snap = backend.read()
    before = os.stat(book)
    backend.write([], snap)
    after = os.stat(book)
    assert (before.st_mtime_ns, before.st_ino) == (after.st_mtime_ns, after.st_ino)


def test_permissions_and_symlink_kept(book: Path) -> None:
    os.chmod(book, 0o640)
    link = book.with_name("link.xlsx")
    link.symlink_to(book.name)
    backend = XlsxBackend(link, "Orders")
    backend.write([CellWrite(2, 1, "SO-1b")], backend.read())
    assert link.is_symlink()
    assert stat.S_IMODE(os.stat(book).st_mode) == 0o640
    assert XlsxBackend(book, "Orders").read().rows[1][0] == "SO-1b"


def test_invalid_values_rejected_before_writing(book: Path) -> None:
    backend = XlsxBackend(book, "Orders")
    snap = backend.read()
    before = book.read_bytes()
    for bad in (float("nan"), Decimal("Infinity"), object(), "x" * 40_000):
        with pytest.raises((ValueError, TypeError)):
            backend.write([CellWrite(2, 1, "ok"), CellWrite(2, 2, bad)], snap)  # type: ignore[arg-type]
    assert book.read_bytes() == before


def test_round_trip_with_calamine_and_openpyxl(book: Path) -> None:
    values = ["text", 7, 1.5, Decimal("2.25"), True, date(2024, 1, 31), None]
    _write(book, *(CellWrite(4, c, v) for c, v in enumerate(values, start=1)))
    ws = openpyxl.load_workbook(book)["Orders"]
    assert [c.value for c in ws[4]] == ["text", 7, 1.5, 2.25, True, datetime(2024, 1, 31), None]
    cal = CalamineWorkbook.from_path(str(book)).get_sheet_by_name("Orders").to_python()
    assert cal[3] == ["text", 7.0, 1.5, 2.25, True, date(2024, 1, 31), ""]
    # openpyxl's own save of our output still opens in calamine (no structural damage)
    openpyxl.load_workbook(book).save(book.with_name("resaved.xlsx"))
    assert CalamineWorkbook.from_path(str(book.with_name("resaved.xlsx"))).sheet_names


def test_new_tracker(tmp_path: Path) -> None:
    path = tmp_path / "new.xlsx"
    write_new_tracker(
        path,
        "Orders",
        ["Order", "Status", "Qty", "Due", "Amount", "Sync status"],
        [
            ["SO-1", "open", 3, date(2024, 1, 2), Decimal("12.34"), None],
            ["SO-2", "shipped", 1, date(2024, 1, 3), Decimal("0.10"), None],
        ],
        key_header="Order",
        status_header="Sync status",
        status_choices={"Status": ["open", "packed", "shipped"], "Sync status": ["ok", "error"]},
        widths={"Order": 14},
    )
    wb = openpyxl.load_workbook(path)
    ws = wb["Orders"]
    assert ws["A1"].font.bold and ws["A1"].fill.fgColor.rgb.endswith("305496")
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:F3"
    assert ws.column_dimensions["A"].width == 14
    assert ws.protection.sheet and ws.protection.sort is False and ws.protection.insertRows is False
    assert ws["A2"].protection.locked and not ws["B2"].protection.locked
    lists = {dv.formula1 for dv in ws.data_validations.dataValidation}
    assert lists == {'"open,packed,shipped"', '"ok,error"'}
    assert ws["E2"].value == 12.34 and ws["D2"].value == datetime(2024, 1, 2)
    snap = XlsxBackend(path, "Orders").read()
    assert snap.rows[1][:3] == ["SO-1", "open", 3.0]
    XlsxBackend(path, "Orders").write([CellWrite(2, 6, "error: bad qty")], snap)
    assert openpyxl.load_workbook(path)["Orders"]["F2"].value == "error: bad qty"


def _replace_member(path: Path, name: str, edit) -> None:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(path) as src:
        items = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in items:
            dst.writestr(info, edit(data) if info.filename == name else data)
