"""Benchmark a Google Sheets sync on the emulator: 50,000 rows x 12 columns, ~200 changes.

Ours: GSheetsBackend.read + plan_sync + finalize + write (only the changed cells).
Naive: gspread open_by_key + worksheet + get_all_values, change the cells, rewrite everything
with Worksheet.update. Prints requests by kind, bytes sent/received and seconds per sync.

Run: .venv/bin/python bench/sync_gsheets.py [--rows 50000] [--changes 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sheets.backends.gsheets import GSheetsBackend, MetadataCache
from sheets.emulator import Config
from sheets.emulator.testing import gspread_client, start_emulator
from sheets.engine import finalize, plan_sync
from sheets.trackers import TrackerSpec
from sheets.values import normalize

HEADERS = ["Order", "Customer", "Date", "Status", "Qty", "Price", "Total", "Region", "Rep",
           "Shipped", "Notes", "Sync status"]  # fmt: skip
SPEC = TrackerSpec.build(
    "bench", "orders", ("Order", "order_no"),
    [("Customer", "customer"), ("Date", "date", "date"), ("Status", "status"),
     ("Qty", "qty", "int"), ("Price", "price", "decimal"), ("Total", "total", "decimal"),
     ("Region", "region"), ("Rep", "rep"), ("Shipped", "shipped", "date"),
     ("Notes", "notes")],
    status_header="Sync status",
)  # fmt: skip
EPOCH = date(1899, 12, 30)


def rows(n: int) -> list[list[Any]]:
    start = date(2024, 1, 1)
    out = []
    for i in range(n):
        qty, price = i % 17 + 1, round(1 + (i % 997) / 8, 3)
        day = (start - EPOCH).days + i % 700
        status, region = ("open", "packed", "shipped")[i % 3], ("N", "S", "E", "W")[i % 4]
        total = round(qty * price, 3)
        out.append([f"SO-{i:06d}", f"CUST-{i % 3000:04d}", day, status, qty, price, total,
                    region, f"rep{i % 40}", day + 3, f"note {i}"])  # fmt: skip
    return out


def portal_of(data: list[list[Any]]) -> dict[str, dict[str, Any]]:
    cols = SPEC.columns
    return {
        r[0]: {c.header: normalize(c.type, v) for c, v in zip(cols, r[1:], strict=True)}
        for r in data
    }


class Meter:
    """Bytes and requests by kind, from the emulator's counters and a session hook."""

    def __init__(self, url: str, session: requests.Session) -> None:
        self.url = url
        self.sent = self.received = 0
        session.hooks["response"].append(self._hook)

    def _hook(self, r: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.sent += len(r.request.body or b"")
        self.received += len(r.content)

    def reset(self) -> None:
        requests.delete(self.url + "/_admin/requests", timeout=30)
        self.sent = self.received = 0

    def counters(self) -> Counter[str]:
        time.sleep(0.05)  # the emulator counts a request just after replying
        c = requests.get(self.url + "/_admin/requests", timeout=30).json()["counters"]
        return Counter({k: v for k, v in c.items() if k not in ("token", "drive")})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    url, _, stop = start_emulator(config=Config(quota_reads=10**6, quota_writes=10**6))
    gc = gspread_client(url)
    meter = Meter(url, gc.http_client.session)
    data = rows(args.rows)
    t0 = time.perf_counter()
    seed = {"sheets": [{"title": "Orders", "values": [HEADERS, *data], "raw": True}]}
    seeded = requests.post(url + "/_admin/spreadsheets", json=seed, timeout=300)
    key = seeded.json()["spreadsheetId"]
    print(f"seeded {args.rows} x {len(HEADERS)} in {time.perf_counter() - t0:.2f} s")
    portal = portal_of(data)
    backend = GSheetsBackend(key, "Orders", client=gc, metadata_cache=MetadataCache())
    base = finalize(plan_sync(SPEC, {}, backend.read().rows, portal)).base
    rng = random.Random(7)

    ours: list[tuple[float, Counter[str], int, int, int]] = []
    phases: list[tuple[float, float, float]] = []
    for _ in range(args.repeat):
        for i in rng.sample(range(args.rows), args.changes):
            portal[f"SO-{i:06d}"]["Notes"] = f"changed {rng.random():.6f}"
        backend = GSheetsBackend(key, "Orders", client=gc, metadata_cache=MetadataCache())
        meter.reset()
        t0 = time.perf_counter()
        snap = backend.read()
        t1 = time.perf_counter()
        plan = plan_sync(SPEC, base, snap.rows, portal)
        result = finalize(plan)
        t2 = time.perf_counter()
        backend.write(result.writes, snap)
        t3 = time.perf_counter()
        phases.append((t1 - t0, t2 - t1, t3 - t2))
        ours.append((t3 - t0, meter.counters(), meter.sent, meter.received, len(result.writes)))
        base = result.base

    naive: list[tuple[float, Counter[str], int, int]] = []
    for _ in range(args.repeat):
        targets = [(rng.randrange(1, args.rows + 1), 10) for _ in range(args.changes)]
        meter.reset()
        t0 = time.perf_counter()
        ws = gc.open_by_key(key).worksheet("Orders")
        values = ws.get_all_values()
        for r, c in targets:
            values[r][c] = f"naive {rng.random():.6f}"
        ws.update(values, "A1")
        naive.append((time.perf_counter() - t0, meter.counters(), meter.sent, meter.received))
    stop()

    def line(name: str, runs: list[Any]) -> float:
        secs = statistics.median(r[0] for r in runs)
        kinds = dict(sorted(runs[-1][1].items()))
        mb = (runs[-1][2] / 1e6, runs[-1][3] / 1e6)
        total = sum(kinds.values())
        print(f"{name:6} {secs:7.3f} s/sync (median of {len(runs)})  requests {total} {kinds}  "
              f"sent {mb[0]:.2f} MB  received {mb[1]:.2f} MB")  # fmt: skip
        return secs

    read, plan, write = (statistics.median(p[i] for p in phases) for i in range(3))
    print(f"ours: {ours[-1][4]} cell writes per sync; read {read:.3f} s, plan+finalize "
          f"{plan:.3f} s, write {write:.3f} s")  # fmt: skip
    a = line("ours", ours)
    b = line("naive", naive)
    sent_ratio = naive[-1][2] / max(ours[-1][2], 1)
    print(f"ratio naive/ours: {b / a:.1f}x time, {sent_ratio:.0f}x bytes sent")


if __name__ == "__main__":
    main()
