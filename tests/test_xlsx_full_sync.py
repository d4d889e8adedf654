"""A whole sync of Excel's largest tracker (1,048,576 rows) stays within the memory setting.

tests/test_xlsx_limits.py bounds the read alone; here one subprocess (so VmHWM measures only
it) holds the stored base and the portal rows, reads the sheet through the bounded backend,
plans, finalizes and writes a handful of cells back. Timing lives in bench/ (see
docs/benchmarks.md), not here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from tests import xlsx_hostile as h

ROOT = Path(__file__).resolve().parents[1]
ROWS = 1_048_575  # + the header row: Excel's 1,048,576
# The default XLSX_READ_MEMORY_MB: the default setting bounds the whole sync, not just the
# read (measured peak ~1.7 GB: base + portal + sheet rows + plan, then the write on top)
SYNC_MEMORY_MB = 2048
SHEET_EDITED = (2, 77_777, 500_001, 900_000, ROWS + 1)  # sheet rows whose Qty the sheet changed
PORTAL_EDITED = (3, 123_456, 600_000, 1_000_000, ROWS)  # sheet rows whose Status the portal did

_CHILD = """
import json, sys, time
from datetime import date, timedelta
from decimal import Decimal
sys.path.insert(0, {root!r})
from sheets.backends.xlsx import XlsxBackend
from sheets.backends.xlsx_limits import XlsxLimits
from sheets.engine import plan_sync
from sheets.finalize import finalize
from sheets.plan import UpdateResult
from sheets.trackers import Column, TrackerSpec

rows, setting = {rows}, {setting}
sheet_edited, portal_edited = set({sheet_edited}), set({portal_edited})
t0 = time.perf_counter()
spec = TrackerSpec("full", "order", "Order", "number", (
    Column("Status", "status", "text"),
    Column("Qty", "qty", "int"),
    Column("Amount", "amount", "decimal"),
    Column("Due", "due", "date"),
))
# the stored base, canonical values of what tests/xlsx_hostile.py narrow_tracker_rows wrote
statuses = ("Open", "Packed", "Shipped", "Invoiced")
days = [date(1899, 12, 30) + timedelta(days=45_000 + d) for d in range(730)]
base, portal = {{}}, {{}}
for r in range(2, rows + 2):
    key = "SO-%07d" % r
    rec = {{"Status": statuses[r % 4], "Qty": r % 50 + 1,
           "Amount": Decimal("%d.%02d" % (r % 9973, r % 100)).normalize(),
           "Due": days[r % 730]}}
    if r in sheet_edited:  # the sheet's Qty was edited since the last sync
        rec = {{**rec, "Qty": rec["Qty"] + 1000}}
    base[key] = portal[key] = rec  # no change on the portal side: the same row objects
    if r in portal_edited:
        portal[key] = {{**rec, "Status": "Cancelled"}}
built = time.perf_counter()
backend = XlsxBackend({path!r}, "Orders", limits=XlsxLimits(read_memory_mb=setting))
snapshot = backend.read()
read = time.perf_counter()
plan = plan_sync(spec, base, snapshot.rows, portal)
result = finalize(plan, [UpdateResult(u.key) for u in plan.updates])
planned = time.perf_counter()
backend.write(result.writes, snapshot)
written = time.perf_counter()
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({{
    "rows_read": plan.rows_read, "fatal": plan.fatal, "warnings": plan.warnings,
    "updates": sorted((u.row, u.changes) for u in plan.updates),
    "writes": [[w.row, w.col, w.value] for w in result.writes],
    "conflicts": len(plan.conflicts), "creates": len(plan.creates),
    "issues": len(result.issues), "base_rows": len(result.base),
    "base_qty": [result.base["SO-%07d" % r]["Qty"] for r in sorted(sheet_edited)],
    "seconds": {{"build": built - t0, "read": read - built, "plan": planned - read,
                "write": written - planned}},
    "peak_mb": int(hwm.split()[1]) / 1024,
}}))
"""


def _sheet_rows_holding(path: Path, rows: set[int]) -> dict[int, bytes]:
    """The XML of the given rows of the written sheet, streamed (the sheet is ~200 MB)."""
    found: dict[int, bytes] = {}
    pattern = re.compile(rb'<row r="(\d+)".*?</row>')
    tail = b""
    with zipfile.ZipFile(path) as zf, zf.open("xl/worksheets/sheet1.xml") as part:
        while chunk := part.read(1 << 22):
            buf = tail + chunk
            end = 0
            for m in pattern.finditer(buf):
                if int(m.group(1)) in rows:
                    found[int(m.group(1))] = m.group(0)
                end = m.end()
            tail = buf[end:]
    return found


def test_full_size_tracker_syncs_within_the_memory_setting(tmp_path: Path) -> None:
    """Base, portal rows, the bounded read, plan, finalize and the write of a few cells:
    1,048,575 orders, five edited in the sheet and five in the portal, the rest unchanged."""
    path = h.workbook(
        tmp_path / "full.xlsx",
        h.sheet(h.narrow_tracker_rows(ROWS)),
        shared=h.status_strings(),
        shared_name="sharedStrings.xml",
        level=1,
    )
    code = _CHILD.format(
        root=str(ROOT),
        path=str(path),
        rows=ROWS,
        setting=SYNC_MEMORY_MB,
        sheet_edited=SHEET_EDITED,
        portal_edited=PORTAL_EDITED,
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    child = json.loads(done.stdout)
    print(child)  # the figures, for docs/benchmarks.md (pytest -s)
    assert child["fatal"] is None and child["rows_read"] == ROWS, child
    # the narrow tracker has no "Sync status" column: a warning, and no status writes
    assert child["warnings"] == ["status column 'Sync status' not found; messages not written"]
    # the sheet's edits go to the portal, the portal's to the sheet; nothing else moves
    assert child["updates"] == [[r, {"qty": r % 50 + 1}] for r in SHEET_EDITED], child
    assert child["writes"] == [[r, 2, "Cancelled"] for r in PORTAL_EDITED], child
    assert (child["conflicts"], child["creates"], child["issues"]) == (0, 0, 0), child
    assert child["base_rows"] == ROWS
    assert child["base_qty"] == [r % 50 + 1 for r in SHEET_EDITED]
    assert child["peak_mb"] <= SYNC_MEMORY_MB, child
    # the cells landed: the portal's status in the written rows, the others untouched
    written = _sheet_rows_holding(path, {*PORTAL_EDITED, *SHEET_EDITED})
    for r in PORTAL_EDITED:
        assert b"Cancelled" in written[r], written[r]
    for r in SHEET_EDITED:
        assert b"Cancelled" not in written[r] and b"<v>%d</v>" % (r % 50 + 1) in written[r]
