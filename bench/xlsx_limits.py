"""Peak memory and time of an .xlsx tracker read, bounded (XlsxBackend) vs the old way.

Run: .venv/bin/python bench/xlsx_limits.py [--rows 1048575]
Builds a 12-column tracker (header + ``rows`` rows) with tests/xlsx_hostile.py, then reads it
in fresh subprocesses and prints each one's peak RSS (VmHWM) and wall time:

* ``bounded``: XlsxBackend.read() (limit checks + fast regex scan + calamine iter_rows);
* ``expat``: the same with the fast scan switched off (every part through the expat scan, as
  before the fast scan existed);
* ``old``: calamine ``to_python`` plus the list copy the backend used to make (no checks).

``--repeat N`` runs the modes interleaved N times (same load for each) and prints each run
and the median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import xlsx_hostile as h  # noqa: E402

CHILD = """
import io, json, sys, time
sys.path.insert(0, {root!r})
from python_calamine import CalamineWorkbook
from sheets.backends.xlsx import XlsxBackend
from sheets.backends.xlsx_limits import XlsxLimits
if {mode!r} == "expat":
    import sheets.backends.xlsx as x
    x.fast_tab = lambda *a, **k: None
t = time.perf_counter()
if {mode!r} in ("bounded", "expat"):
    rows = len(XlsxBackend({path!r}, "Orders", limits=XlsxLimits(read_memory_mb={mb})).read().rows)
else:
    data = open({path!r}, "rb").read()
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name("Orders")
    grid = sheet.to_python(skip_empty_area=False)
    rows = len([[None if v == "" else v for v in r] for r in grid])
hwm = next(x for x in open("/proc/self/status") if x.startswith("VmHWM"))
print(json.dumps({{"rows": rows, "s": time.perf_counter() - t, "mb": int(hwm.split()[1]) / 1024}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_048_575)
    parser.add_argument("--memory-mb", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--modes", default="bounded,expat,old")
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tracker.xlsx"
        t0 = time.perf_counter()
        h.workbook(path, h.sheet(h.tracker_rows(args.rows)))
        print(f"built {args.rows + 1} x 12 in {time.perf_counter() - t0:.1f} s "
              f"({path.stat().st_size / 1e6:.1f} MB)")  # fmt: skip
        for _ in range(args.repeat):
            for mode in args.modes.split(","):
                code = CHILD.format(root=str(ROOT), path=str(path), mode=mode, mb=args.memory_mb)
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
                if out.returncode:
                    print(f"{mode:8} failed: {out.stderr.strip().splitlines()[-1]}")
                    continue
                r = json.loads(out.stdout)
                seconds.setdefault(mode, []).append(r["s"])
                print(f"{mode:8} {r['rows']} rows  {r['s']:6.2f} s  peak {r['mb']:7.0f} MB")
    for mode, runs in seconds.items():
        print(f"median {mode:8} {statistics.median(runs):6.2f} s over {len(runs)} runs")


if __name__ == "__main__":
    main()
