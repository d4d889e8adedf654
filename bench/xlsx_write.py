"""Benchmark the .xlsx backend on a 50,000 x 12 tracker: read, patch 200 cells, naive baseline.

Run: .venv/bin/python bench/xlsx_write.py [--rows 50000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook, load_workbook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sheets.backends.xlsx import XlsxBackend
from sheets.grid import CellWrite

HEADERS = ["Order", "Customer", "Date", "Status", "Qty", "Price", "Total", "Region", "Rep",
           "Shipped", "Notes", "Flag"]  # fmt: skip


def build(path: Path, rows: int) -> None:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Orders")
    ws.append(HEADERS)
    start = date(2024, 1, 1)
    for i in range(rows):
        qty, price = i % 17 + 1, round(1 + (i % 997) / 7, 2)
        ws.append([f"SO-{i:06d}", f"CUST-{i % 3000:04d}", start + timedelta(days=i % 700),
                   ("open", "packed", "shipped")[i % 3], qty, price, f"=E{i + 2}*F{i + 2}",
                   ("North", "South", "East", "West")[i % 4], f"rep{i % 40}",
                   start + timedelta(days=i % 700 + 3), f"note {i}", i % 2 == 0])  # fmt: skip
    wb.save(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--cells", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tracker.xlsx"
        t0 = time.perf_counter()
        build(path, args.rows)
        print(f"built {args.rows} x {len(HEADERS)} in {time.perf_counter() - t0:.2f} s "
              f"({path.stat().st_size / 1e6:.1f} MB)")  # fmt: skip
        targets = [(rng.randrange(2, args.rows + 2), rng.choice([2, 4, 5, 6, 11]))
                   for _ in range(args.cells)]  # fmt: skip
        values = {2: "CUST-X", 4: "shipped", 5: 3, 6: Decimal("9.99"), 11: "edited"}
        writes = [CellWrite(r, c, values[c]) for r, c in targets]

        backend = XlsxBackend(path, "Orders")
        t0 = time.perf_counter()
        snap = backend.read()
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        backend.write(writes, snap)
        write_s = time.perf_counter() - t0

        naive = Path(tmp) / "naive.xlsx"
        shutil.copy(path, naive)
        t0 = time.perf_counter()
        wb = load_workbook(naive)
        ws = wb["Orders"]
        for w in writes:
            ws.cell(w.row, w.col).value = w.value
        wb.save(naive)
        naive_s = time.perf_counter() - t0

    print(f"calamine read            : {read_s:6.2f} s ({len(snap.rows)} rows)")
    print(f"XlsxBackend.write {args.cells} cells: {write_s:6.2f} s")
    print(f"openpyxl load+edit+save  : {naive_s:6.2f} s")
    print(f"speed-up (write)         : {naive_s / write_s:6.1f}x")
    print(f"speed-up (read + write)  : {naive_s / (read_s + write_s):6.1f}x")


if __name__ == "__main__":
    main()
