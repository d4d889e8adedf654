"""Benchmark writing a tracker tab (`orderbridge sheets init`) at growing row counts.

Run: .venv/bin/python bench/init_xlsx.py [--rows 1000 2000 4000 50000] [--old PATH]

Rows are 12 columns shaped like the orders preset (key, text, integers, dates, money, blank
status). Timed per size: a new workbook, and the tab added to a copy of the Superstore
workbook (../shared/data, if present). ``--old PATH`` also times the openpyxl writer of an
older ``xlsx_init.py`` (e.g. ``git show main~N:sheets/backends/xlsx_init.py > /tmp/old.py``)
for the before/after figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sheets.backends.xlsx_init import write_tracker

SUPERSTORE = Path(__file__).resolve().parents[2] / "shared/data/superstore/Sample - Superstore.xlsx"
HEADERS = [
    "Order", "Customer", "Customer PO", "Status", "Incoterm", "Ordered", "Requested",
    "Promised", "Lines", "Total", "Notes", "Sync status",
]  # fmt: skip
CHOICES = {"Incoterm": ("EXW", "FCA", "DAP", "DDP", "FOB", "CIF"), "Sync status": ("ok",)}


def rows(n: int) -> list[list[object]]:
    day = date(2024, 1, 1)
    return [
        [
            f"SO-{i:06d}",
            f"Customer {i % 97}",
            f"PO-{i}",
            "confirmed",
            "FOB",
            day + timedelta(days=i % 300),
            day + timedelta(days=i % 300 + 7),
            None,
            1 + i % 5,
            Decimal(f"{i % 9999}.50"),
            "",
            None,
        ]
        for i in range(n)
    ]


def _timed(write, path: Path, data: list[list[object]]) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    write(path, "Tracker", HEADERS, data, key_header="Order", status_header="Sync status",
          status_choices=CHOICES)  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 2_000, 4_000, 50_000])
    parser.add_argument("--old", type=Path, help="an older xlsx_init.py to time as well")
    args = parser.parse_args()
    old = None
    if args.old:
        spec = importlib.util.spec_from_file_location("old_xlsx_init", args.old)
        old = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(old)  # type: ignore[union-attr]
    print("rows\tnew file (s)\tadded to Superstore (s)" + ("\told writer (s)" if old else ""))
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            data = rows(n)
            new = _timed(write_tracker, Path(tmp) / f"new{n}.xlsx", data)
            added = float("nan")
            if SUPERSTORE.exists():
                copy = Path(tmp) / f"ss{n}.xlsx"
                shutil.copyfile(SUPERSTORE, copy)
                added = _timed(write_tracker, copy, data)
            line = f"{n}\t{new:.2f}\t{added:.2f}"
            if old is not None and n <= 8_000:
                line += f"\t{_timed(old.write_new_tracker, Path(tmp) / f'old{n}.xlsx', data):.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
