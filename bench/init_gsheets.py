"""Benchmark adding a Google tracker tab (`orderbridge sheets init` of a gsheets tracker) at
growing row counts, against the bundled emulator over HTTP (real gspread).

Run: .venv/bin/python bench/init_gsheets.py [--rows 12500 25000 50000]

Rows are 12 columns shaped like the orders preset (the rows of ``bench/init_xlsx.py``), with
date and money columns typed, so the tab gets their number formats. Printed per size: the
seconds and the requests made (the same three whatever the size: linear time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.init_xlsx import CHOICES, HEADERS, rows
from sheets.backends.gsheets_init import init_google_tracker
from sheets.emulator import Config
from sheets.emulator.testing import gspread_client, start_emulator

TYPES = {"Ordered": "date", "Requested": "date", "Promised": "date", "Total": "decimal"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[12_500, 25_000, 50_000])
    args = parser.parse_args()
    url, _, stop = start_emulator(config=Config(quota_reads=10**6, quota_writes=10**6))
    gc = gspread_client(url)
    try:
        for n in args.rows:
            data = rows(n)
            key = gc.create(f"bench {n}").id
            requests.delete(f"{url}/_admin/requests", timeout=10)
            start = time.perf_counter()
            init_google_tracker(
                gc,
                key,
                "Orders",
                HEADERS,
                data,
                key_header="Order",
                status_header="Sync status",
                status_choices=CHOICES,
                types=TYPES,
            )
            seconds = time.perf_counter() - start
            counters = requests.get(f"{url}/_admin/requests", timeout=10).json()["counters"]
            calls = dict(sorted(counters.items()))
            print(f"{n:>7} rows: {seconds:6.2f} s, requests {calls}")
    finally:
        stop()


if __name__ == "__main__":
    main()
