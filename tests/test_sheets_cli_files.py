"""`orderbridge sheets add / init / sync` on files that are not .xlsx workbooks: one line, exit 1.

Each bad file is made here: an OLE2 (.xls) header, CSV text, an .xls renamed .xlsx, text
renamed .xlsx and a truncated .xlsx zip. No traceback reaches the output; the sync run
records the same one-line error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result

from portal.extensions import db
from portal.models import SyncRun
from tests.sync_helpers import TAB, make_orders

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1_000


def _check_one_line(result: Result, *needles: str) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error: "), result.output
    for needle in needles:
        assert needle in line, line
    return line


def _add(runner, name: str, path: Path) -> Result:  # type: ignore[no-untyped-def]
    args = ["sheets", "add", name, "--kind", "orders", "--location", str(path), "--tab", TAB]
    return runner.invoke(args=args)


@pytest.mark.parametrize(
    ("name", "content", "needles"),
    [
        ("old.xls", OLE2, ("old.xls", "Excel 97-2003 workbook (.xls)", "save it as")),
        ("rows.csv", b"Order,Qty\nSO-1,3\n", ("rows.csv", "CSV", "import its rows")),
        ("sheet.ods", b"PK\x03\x04", ("OpenDocument",)),
        ("book.xlsb", b"PK\x03\x04", ("binary workbook (.xlsb)",)),
        ("book.numbers", b"PK\x03\x04", ("Apple Numbers",)),
    ],
)
def test_add_names_the_format_and_the_way_out(clean_db, tmp_path, name, content, needles) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    _check_one_line(_add(clean_db.test_cli_runner(), "t", path), *needles)


def _truncated_xlsx(path: Path) -> bytes:
    import openpyxl

    openpyxl.Workbook().save(path)
    return path.read_bytes()[:-200]


BAD_XLSX = [
    ("xls renamed", lambda p: OLE2, ("Excel 97-2003",)),
    ("text renamed", lambda p: b"Order,Qty\nSO-1,3\n", ("text (CSV?)",)),
    ("truncated zip", _truncated_xlsx, ("damaged or truncated zip",)),
]


@pytest.mark.parametrize(("case", "make", "needles"), BAD_XLSX, ids=[c[0] for c in BAD_XLSX])
def test_init_sync_and_add_refuse_a_file_that_is_not_a_workbook(
    clean_db, tmp_path, case, make, needles
) -> None:
    make_orders(1)
    runner = clean_db.test_cli_runner()
    path = tmp_path / "book.xlsx"
    assert _add(runner, "t", path).exit_code == 0  # no file yet: fine
    content = make(path)
    path.write_bytes(content)
    for args in (["sheets", "init", "t"], ["sheets", "init", "t", "--force"]):
        _check_one_line(runner.invoke(args=args), str(path), *needles)
        assert path.read_bytes() == content  # never replaced
    line = _check_one_line(runner.invoke(args=["sheets", "sync", "t"]), str(path), *needles)
    run = db.session.query(SyncRun).order_by(SyncRun.id.desc()).first()
    assert run.status == "failed" and run.error == line.removeprefix("error: ")
    assert "\n" not in run.error
    _check_one_line(_add(runner, "t2", path), str(path), *needles)


def test_init_on_an_existing_workbook_adds_then_refreshes_only_its_tab(clean_db, tmp_path) -> None:
    import openpyxl

    numbers = [o.number for o in make_orders(2)]
    path = tmp_path / "team.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "Notes"
    wb.active.append(["keep me", 42])
    wb.save(path)
    runner = clean_db.test_cli_runner()
    assert _add(runner, "t", path).exit_code == 0
    added = runner.invoke(args=["sheets", "init", "t"])
    assert added.exit_code == 0 and "added the tab to" in added.output, added.output
    again = runner.invoke(args=["sheets", "init", "t"])
    _check_one_line(again, "already has a tab", "--force")
    forced = runner.invoke(args=["sheets", "init", "t", "--force"])
    assert forced.exit_code == 0 and "refreshed the tab in" in forced.output, forced.output
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Notes", TAB]
    assert [c.value for c in book["Notes"][1]] == ["keep me", 42]
    assert {book[TAB].cell(r, 1).value for r in (2, 3)} == set(numbers)
