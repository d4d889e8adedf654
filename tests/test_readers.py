"""Reading an import's rows from CSV: the encoding (a byte-order mark, Latin-1 found late in
the file), the delimiter, and files that cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from sheets.readers import ReadError, read_table


def _rows(path: Path) -> list[list]:
    return [values for _, values in read_table(path).rows]


def test_a_bom_and_each_delimiter_are_found(tmp_path: Path) -> None:
    for delimiter in (",", ";", "\t", "|"):
        path = tmp_path / "orders.csv"
        text = delimiter.join(["Order ID", "Name"]) + "\r\n" + delimiter.join(["A-1", "Zoë"])
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
        table = read_table(path)
        assert table.headers == ["Order ID", "Name"], delimiter
        assert [values for _, values in table.rows] == [["A-1", "Zoë"]], delimiter
    path.write_bytes("Order ID;Name\nA-1;Zoë\n".encode("utf-16"))
    assert _rows(path) == [["A-1", "Zoë"]]


def test_latin1_first_met_past_the_sample_is_still_latin1(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    lines = ["Order ID;Name", *(f"{n};plain {n}" for n in range(20_000)), "X;Müller Straße"]
    path.write_bytes("\n".join(lines).encode("latin-1"))
    rows = _rows(path)
    assert len(rows) == 20_001 and rows[-1] == ["X", "Müller Straße"]


def test_files_that_cannot_be_read_say_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ReadError, match=r"^broken.xlsx: not a readable workbook"):
        read_table(broken)
    with pytest.raises(ReadError, match=r"^gone.ods: no such file$"):
        read_table(tmp_path / "gone.ods")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"\n\n")
    with pytest.raises(ReadError, match=r"^empty.csv: no header in any row$"):
        read_table(empty)
