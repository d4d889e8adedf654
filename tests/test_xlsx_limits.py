"""Bounded workbook reads: zip bombs, huge cells, lying sizes, big trackers, every boundary.

The hostile files are built here (tests/xlsx_hostile.py, streamed, nothing committed). Reads
whose memory matters run in a subprocess that reports its own peak RSS (VmHWM).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from array import array
from dataclasses import replace
from pathlib import Path

import pytest

from sheets.backends.xlsx import XlsxBackend
from sheets.backends.xlsx_limits import WorkbookTooLarge, XlsxLimits, scan_tab
from sheets.grid import CellWrite
from tests import xlsx_hostile as h

ROOT = Path(__file__).resolve().parents[1]
MB = 1 << 20

_CHILD = """
import json, sys
sys.path.insert(0, {root!r})
from sheets.backends.xlsx import XlsxBackend
from sheets.backends.xlsx_limits import WorkbookTooLarge, XlsxLimits, scan_tab
limits = XlsxLimits(**json.loads({limits!r}))
try:
    rows = XlsxBackend({path!r}, "Orders", limits=limits).read().rows
    out = {{"rows": len(rows), "last": rows[-1]}}
except WorkbookTooLarge as exc:
    out = {{"limit": exc.limit, "message": str(exc)}}
# VmHWM, not ru_maxrss: ru_maxrss keeps the forking parent's peak across exec
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
out["peak_mb"] = int(hwm.split()[1]) / 1024
print(json.dumps(out))
"""


def read_in_child(path: Path, **limits: object) -> dict:
    code = _CHILD.format(root=str(ROOT), path=str(path), limits=json.dumps(limits))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fails(path: Path, limit: str, limits: XlsxLimits | None = None) -> WorkbookTooLarge:
    before = digest(path)
    with pytest.raises(WorkbookTooLarge) as caught:
        XlsxBackend(path, "Orders", limits=limits).read()
    assert caught.value.limit == limit, str(caught.value)
    assert "\n" not in str(caught.value)
    assert digest(path) == before
    return caught.value


# (a) zip bomb ------------------------------------------------------------------------------


def test_zip_bomb_fails_fast_untouched_and_bounded(tmp_path: Path) -> None:
    bomb = h.workbook(tmp_path / "bomb.xlsx", h.sheet([(b"<row/>" * 200_000, 1000)]))
    assert bomb.stat().st_size < 2 * MB  # inflates to 1.2 GB
    before = digest(bomb)
    err = fails(bomb, "max_part_bytes")
    child = read_in_child(bomb)  # stopped at the limit: never inflated to 1.2 GB
    assert child["limit"] == "max_part_bytes" and child["peak_mb"] < 300, child
    assert "xl/worksheets/sheet1.xml" in str(err) and "XLSX_MAX_PART_BYTES" in str(err)
    backend = XlsxBackend(bomb, "Orders")
    snap = type("Snap", (), {"fingerprint": None})()
    with pytest.raises(Exception):  # noqa: B017 (any refusal; the point is the bytes)
        backend.write([CellWrite(1, 1, "x")], snap)  # type: ignore[arg-type]
    child = read_in_child(bomb)
    assert child["limit"] == "max_part_bytes" and child["peak_mb"] < 300, child
    assert digest(bomb) == before


def test_bomb_below_size_limit_is_caught_by_ratio(tmp_path: Path) -> None:
    bomb = h.workbook(tmp_path / "b.xlsx", h.sheet([(b"<row/>" * 200_000, 500)]))  # 600 MB
    fails(bomb, "max_ratio")


def test_part_lying_about_its_size_is_caught_while_inflating(tmp_path: Path) -> None:
    """The central directory says 5 MB; the deflate stream holds 1.2 GB."""
    sheet = h.sheet([(b"<row/>" * 200_000, 1000)])
    lying = h.workbook(tmp_path / "lie.xlsx", sheet, declared={"xl/worksheets/sheet1.xml": 5 * MB})
    before = digest(lying)
    err = fails(lying, "max_part_bytes", XlsxLimits(max_ratio=10_000))
    assert err.maximum == 5 * MB
    child = read_in_child(lying, max_ratio=10_000)
    assert child["limit"] == "max_part_bytes" and child["peak_mb"] < 300, child
    assert digest(lying) == before


# (b) huge cells ----------------------------------------------------------------------------


def test_cell_over_excels_limit(tmp_path: Path) -> None:
    path = h.workbook(tmp_path / "c.xlsx", h.sheet(h.text_cell("B2", "x", 32_768)))
    err = fails(path, "max_cell_chars")
    assert "cell B2" in str(err) and "32,768 > 32,767" in str(err)


def test_hundred_megabyte_cell_bounded(tmp_path: Path) -> None:
    path = h.workbook(tmp_path / "big.xlsx", h.sheet(h.text_cell("A1", "abcdefgh" * 131_072, 110)))
    fails(path, "max_ratio")  # default limits: this text compresses ~1000x
    loose = XlsxLimits(max_ratio=1e9)
    err = fails(path, "max_cell_chars", loose)
    assert "cell A1" in str(err)
    child = read_in_child(path, max_ratio=1e9)
    assert child["limit"] == "max_cell_chars" and child["peak_mb"] < 300, child


def test_huge_shared_string_and_rich_text_runs(tmp_path: Path) -> None:
    runs = [(b"<sst><si>", 1), (b"<r><t>" + b"y" * 20_000 + b"</t></r>", 2), (b"</si></sst>", 1)]
    body = [(b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>', 1)]
    path = h.workbook(tmp_path / "s.xlsx", h.sheet(body), shared=runs)
    err = fails(path, "max_cell_chars")
    assert "xl/sst.xml string 0" in str(err)
    inline = [(b'<row r="1"><c r="A1" t="inlineStr"><is>', 1),
              (b"<r><t>" + b"y" * 20_000 + b"</t></r>", 2), (b"</is></c></row>", 1)]  # fmt: skip
    fails(h.workbook(tmp_path / "i.xlsx", h.sheet(inline)), "max_cell_chars")


# (c) a legitimate large tracker ------------------------------------------------------------


def test_full_size_tracker_reads_within_the_memory_setting(tmp_path: Path) -> None:
    """Excel's maximum: 1,048,576 rows (header + 1,048,575 orders) of a narrow tracker
    (key, status as a shared string, qty, amount, due date), built streaming in seconds."""
    rows, setting = 1_048_575, 720  # estimate 703 MB, measured peak ~650 MB
    path = h.workbook(
        tmp_path / "full.xlsx",
        h.sheet(h.narrow_tracker_rows(rows)),
        shared=h.status_strings(),
        shared_name="sharedStrings.xml",
        level=1,
    )
    child = read_in_child(path, read_memory_mb=setting)
    r = rows + 1
    due = 45_000.0 + r % 730
    amount = float(f"{r % 9973}.{r % 100:02d}")
    last = [f"SO-{r:07d}", h.STATUSES[r % 4].decode(), r % 50 + 1.0, amount, due]
    assert child.get("rows") == 1_048_576 and child["last"] == last, child
    assert child["peak_mb"] <= setting, child
    # a setting too small: refused by the scan, part-way through, before calamine is called
    refused = read_in_child(path, read_memory_mb=120)
    assert refused["limit"] == "read_memory_mb", refused
    assert refused["message"].startswith("xl/worksheets/sheet1.xml: read memory mb exceeded: ")
    assert refused["message"].endswith(" > 120 (setting XLSX_READ_MEMORY_MB)"), refused
    assert refused["peak_mb"] < 120, refused


def test_sparse_corner_cell_is_refused_not_allocated(tmp_path: Path) -> None:
    """calamine allocates the whole rectangle: A1 + XFD1048576 would be 550 GB (abort)."""
    body = [(b'<row r="1"><c r="A1"><v>1</v></c></row>'
             b'<row r="1048576"><c r="XFD1048576"><v>2</v></c></row>', 1)]  # fmt: skip
    child = read_in_child(h.workbook(tmp_path / "corner.xlsx", h.sheet(body)))
    assert child["limit"] == "read_memory_mb" and child["peak_mb"] < 100, child


# (d) every boundary: at the limit passes, one over fails -----------------------------------


@pytest.fixture
def small(tmp_path: Path) -> Path:
    body = [(b'<row r="3"><c r="E3" t="inlineStr"><is><t>' + b"z" * 40 + b"</t></is></c></row>", 1)]
    return h.workbook(tmp_path / "small.xlsx", h.sheet([*h.tracker_rows(3000, start=5), *body]))


def _measured(path: Path) -> dict[str, float]:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        sheet = next(i for i in infos if i.filename.endswith("sheet1.xml"))
        xml = zf.read(sheet)
    # the whole tab's estimate (a refusal stops the scan early and reports less)
    size = path.stat().st_size
    extent = scan_tab(iter([xml]), array("q"), sheet.filename, XlsxLimits(), size)
    return {
        "max_file_bytes": path.stat().st_size,
        "max_part_compressed_bytes": sheet.compress_size,
        "max_part_bytes": sheet.file_size,
        "max_total_bytes": sum(i.file_size for i in infos),
        "max_ratio": sheet.file_size / sheet.compress_size,
        "max_rows": 3004,
        "max_columns": 12,
        "max_cell_chars": 40,
        "read_memory_mb": round(extent.estimate_bytes(array("q"), size) / MB),
    }


LIMITS = [
    "max_file_bytes",
    "max_part_compressed_bytes",
    "max_part_bytes",
    "max_total_bytes",
    "max_ratio",
    "max_rows",
    "max_columns",
    "max_cell_chars",
    "read_memory_mb",
]


@pytest.mark.parametrize("limit", LIMITS)
def test_boundary(small: Path, limit: str) -> None:
    at = _measured(small)[limit]
    base = XlsxLimits(ratio_min_bytes=0)
    assert (
        len(XlsxBackend(small, "Orders", limits=replace(base, **{limit: at})).read().rows) == 3004
    )
    over = at - 1 if isinstance(getattr(base, limit), int) else at * (1 - 1e-9)
    err = fails(small, limit, replace(base, **{limit: over}))
    assert limit.upper() in str(err)


def test_excel_cell_length_boundary(tmp_path: Path) -> None:
    at = h.workbook(tmp_path / "at.xlsx", h.sheet(h.text_cell("A1", "é", 32_767)))
    assert XlsxBackend(at, "Orders").read().rows == [["é" * 32_767]]
    fails(
        h.workbook(tmp_path / "over.xlsx", h.sheet(h.text_cell("A1", "é", 32_768))),
        "max_cell_chars",
    )


def test_write_respects_row_and_column_limits(small: Path) -> None:
    limits = XlsxLimits(max_rows=5000, max_columns=20)
    backend = XlsxBackend(small, "Orders", limits=limits)
    snap = backend.read()
    before = digest(small)
    for cell, limit in (((5001, 1), "max_rows"), ((2, 21), "max_columns")):
        with pytest.raises(WorkbookTooLarge) as caught:
            backend.write([CellWrite(*cell, "x")], snap)
        assert caught.value.limit == limit
    assert digest(small) == before
    backend.write([CellWrite(5000, 20, "edge")], snap)
    assert backend.read().rows[4999][19] == "edge"


def test_write_refuses_a_package_over_the_limits(small: Path) -> None:
    backend = XlsxBackend(small, "Orders")
    snap = backend.read()
    tight = XlsxBackend(small, "Orders", limits=XlsxLimits(max_part_bytes=1000))
    before = digest(small)
    with pytest.raises(WorkbookTooLarge):
        tight.write([CellWrite(2, 2, 1)], snap)
    assert digest(small) == before


# (e) the fast scan: upper bounds of the expat scan, at any chunk boundary ------------------

_LONG = b'<c r="C2" t="inlineStr"><is><t>' + b"q" * 300 + b"</t></is></c>"
_RICH = b"<is><r><t>" + b"a" * 150 + b"</t></r><r><t>" + b"b" * 150 + b"</t></r></is></c></row>"
_CORNER = b'<row r="1048576"><c r="XFD1048576"><v>2</v></c></row>'
_NO_R = b'<c t="inlineStr"><is><t>hh</t></is></c>' * 30
_ROW7 = b'</row><row r="7"><c r="C7"><v>1</v></c><c/><c><v>2</v></c></row><row><c/></row>'
_BODIES = {
    "long run": h.sheet([(b'<row r="2"><c r="B2"><v>1</v></c>' + _LONG + b"</row>", 1)]),
    "rich runs": h.sheet([(b'<row r="2"><c r="A2" t="inlineStr">' + _RICH, 1)]),
    "max ref": h.sheet([(b'<row r="1"><c r="A1"><v>1</v></c></row>' + _CORNER, 1)]),
    "no r": h.sheet([(b"<row>" + _NO_R + _ROW7, 1)]),
    "tracker": h.sheet(h.tracker_rows(40)),
}


def _chunks(xml: bytes, size: int):
    return lambda: (xml[i : i + size] for i in range(0, len(xml), size))


def _outcome(fn):
    try:
        return fn()
    except WorkbookTooLarge as exc:
        return exc.limit


_LIMITS = {
    "default": XlsxLimits(),
    "chars": XlsxLimits(max_cell_chars=299),
    "extent": XlsxLimits(max_rows=1000, max_columns=20),
    "memory": XlsxLimits(read_memory_mb=1),
    "columns": XlsxLimits(max_columns=31),
    "roomy": XlsxLimits(read_memory_mb=10**7),
}


@pytest.mark.parametrize("name", sorted(_BODIES))
@pytest.mark.parametrize("limits", _LIMITS.values(), ids=_LIMITS.keys())
def test_fast_scan_bounds_expat_at_every_chunk_size(name: str, limits: XlsxLimits) -> None:
    """Refs, text runs and rows straddle chunk and segment boundaries at every offset; the
    fast scan either vouches with bounds at least expat's, or defers to expat (None)."""
    from array import array

    from sheets.backends.xlsx_limits import scan_tab
    from sheets.backends.xlsx_scan import fast_tab

    xml = b"".join(piece * times for piece, times in _BODIES[name])
    exact = _outcome(lambda: scan_tab(iter([xml]), array("q"), "s", limits, 1000))
    # where the fast scan must vouch (a plain sheet within every limit)
    vouches = not isinstance(exact, str) and name != "rich runs"
    for chunk in (1, 3, 7, 64, 333, 1 << 20):
        for segment in (1, 50, 4096):
            fast = fast_tab(_chunks(xml, chunk), array("q"), limits, 1000, segment)
            assert (fast is not None) == vouches, (name, chunk, segment)
            if fast is None:
                continue
            assert not isinstance(exact, str), (name, chunk, segment, exact)
            assert fast.rows >= exact.rows and fast.columns >= exact.columns
            assert fast.cells >= exact.cells and fast.text_chars >= exact.text_chars


def test_check_read_refuses_the_same_at_small_segments(tmp_path: Path) -> None:
    """The whole read at tiny segments: the same refusal as the expat scan alone."""
    from array import array
    from functools import partial

    from sheets.backends.xlsx import check_read
    from sheets.backends.xlsx_limits import scan_tab

    for name, body in _BODIES.items():
        data = h.workbook(tmp_path / "f.xlsx", body).read_bytes()
        xml = b"".join(piece * times for piece, times in body)
        part = "xl/worksheets/sheet1.xml"
        for limits in (XlsxLimits(), XlsxLimits(max_cell_chars=299, max_columns=20)):
            exact = _outcome(partial(scan_tab, iter([xml]), array("q"), part, limits, len(data)))
            expected = str(exact) if isinstance(exact, str) else "ok"
            for segment in (1, 200, 1 << 20):
                try:
                    check_read(data, "Orders", limits, segment)
                    got = "ok"
                except WorkbookTooLarge as exc:
                    got = exc.limit
                assert got == expected, (name, limits, segment)
