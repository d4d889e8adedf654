"""Benchmark a full tracker sync on a 50,000-row x 12-column orders tracker (.xlsx).

Run: .venv/bin/python bench/sync_xlsx.py [--rows 50000] [--changes 100] [--paste 10000]
[--rounds 3]

Setup (not timed): a throw-away instance (SQLite, embedded Valkey) built by migrations, a
catalog made through the services, then ``--rows`` orders with one line each inserted in bulk
with SQL — the ONLY place that bypasses the services, for setup speed. The tracker is the
orders preset (key + 10 mapped columns + status = 12 columns); its workbook is written with
openpyxl's write-only mode (``write_new_tracker`` styles every cell and is slow at this size)
and a first sync stores the base.

Timed:
1. a sync after ``--changes`` rows were edited in the sheet (Customer PO, patched into the
   file as a user's save would) and ``--changes`` orders were changed in the portal (notes,
   through the services): read, merge, apply through the services, write, store the base;
2. a sync with no change on either side (must write nothing);
3. the naive baseline: openpyxl loads the same workbook, sets the same cells, saves it;
4. a ``--paste``-row paste (10,000 by default: Customer PO and Notes of that many rows), once
   applied through the orders' batch path and once one transaction per row (the kind's
   batch path switched off), another paste of the same rows each time: the apply step and
   the whole sync, and the ratio. ``--rounds`` repeats the pair, the two variants
   interleaved (batch, per row, batch, per row ...) so both see the same machine load; the
   median of each is reported, with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--paste", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            ORDERBRIDGE_MODE="test",
            ORDERBRIDGE_INSTANCE_DIR=tmp,
            DATABASE_URL=f"sqlite:///{tmp}/bench.db",
        )
        os.environ.pop("REDIS_URL", None)
        from portal import create_app

        app = create_app()
        with app.app_context():
            try:
                run(Path(tmp), args.rows, args.changes, args.paste, max(1, args.rounds))
            finally:
                from jobs.queue import stop_embedded_server

                stop_embedded_server()


def _bulk_orders(rows: int, customer_id: int, product_id: int) -> None:
    """Insert orders and lines with SQL (setup only: bypasses the services for speed)."""
    from portal.extensions import db
    from portal.models import NumberSequence, OrderLine, SalesOrder, utcnow

    now, today = utcnow(), date.today()
    orders_t, lines_t = SalesOrder.__table__, OrderLine.__table__
    batch = 5000
    for start in range(0, rows, batch):
        chunk = range(start, min(rows, start + batch))
        db.session.execute(
            orders_t.insert(),
            [
                {
                    "id": i + 1,
                    "number": f"SO-{i + 1:06d}",
                    "customer_id": customer_id,
                    "customer_po": f"PO-{i + 1}",
                    "order_date": today,
                    "requested_date": today + timedelta(days=30 + i % 60),
                    "promised_date": None,
                    "incoterm": ("FOB", "CIF", "DAP", None)[i % 4],
                    "currency": "USD",
                    "status": "draft",
                    "notes": f"note {i + 1}",
                    "revision": 0,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
                for i in chunk
            ],
        )
        db.session.execute(
            lines_t.insert(),
            [
                {
                    "order_id": i + 1,
                    "line_no": 1,
                    "product_id": product_id,
                    "quantity": i % 17 + 1,
                    "unit_price": Decimal("9.5000"),
                    "list_price": Decimal("9.5000"),
                    "discount_pct": Decimal("0"),
                    "qty_allocated": 0,
                    "qty_backordered": 0,
                    "qty_shipped": 0,
                    "qty_delivered": 0,
                    "qty_cancelled": 0,
                    "qty_returned": 0,
                    "version": 1,
                }
                for i in chunk
            ],
        )
    seq = db.session.get(NumberSequence, "sales_order")
    if seq is not None:
        seq.next_value = rows + 1
    db.session.commit()


def _write_workbook(path: Path, headers: list[str], rows: list[list[object]]) -> None:
    """The tracker workbook, written with openpyxl's write-only mode (setup speed)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Orders")
    ws.append(headers)
    for row in rows:
        ws.append(row)
    wb.save(path)


def run(tmp: Path, rows: int, changes: int, paste: int, rounds: int = 1) -> None:
    from flask_migrate import upgrade
    from openpyxl import load_workbook

    from jobs.sync import sync_tracker
    from portal.extensions import db
    from portal.models import SalesOrder
    from portal.services import orders, trackers
    from portal.services.base import Actor
    from portal.sync.adapters import new_workbook_rows
    from sheets.backends.xlsx import XlsxBackend
    from sheets.grid import CellWrite
    from tests.factories import make_catalog

    t0 = time.perf_counter()
    upgrade()
    cat = make_catalog(stock=0)
    _bulk_orders(rows, cat.customer.id, cat.products[0].id)
    path = tmp / "orders.xlsx"
    admin = Actor.system("system:bench")
    tracker = trackers.trackers.create(
        {"name": "bench", "kind": "orders", "location": str(path), "tab": "Orders"}, admin
    )
    spec = tracker.spec()
    _write_workbook(path, spec.headers, new_workbook_rows(spec, None))
    first = _timed(sync_tracker, tracker.id)
    print(
        f"setup {time.perf_counter() - t0:.1f} s: {rows} orders, tracker {len(spec.headers)} "
        f"columns, {path.stat().st_size / 1e6:.1f} MB; first sync (stores the base) "
        f"{first[0]:.2f} s"
    )

    rng = random.Random(5)
    picked = rng.sample(range(2, rows + 2), 2 * changes)
    sheet_rows, portal_rows = picked[:changes], picked[changes:]
    po_col = spec.headers.index("Customer PO") + 1
    sheet_edits = [CellWrite(r, po_col, f"EDITED-{r}") for r in sheet_rows]
    backend = XlsxBackend(path, "Orders")
    backend.write(sheet_edits, backend.read())
    bench_actor = Actor.system("system:bench")
    for r in portal_rows:
        order = db.session.query(SalesOrder).filter_by(number=f"SO-{r - 1:06d}").one()
        orders.orders.update(order, {"notes": f"portal change {r}"}, bench_actor)

    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        cProfile.runctx("sync_tracker(tracker.id)", globals(), locals(), sort="cumtime")
        return
    seconds, outcome = _timed(sync_tracker, tracker.id)
    assert outcome["applied"] == changes and outcome["written"] == changes, outcome
    mtime = path.stat().st_mtime_ns
    idle, quiet = _timed(sync_tracker, tracker.id)
    assert quiet["written"] == 0 and path.stat().st_mtime_ns == mtime, quiet

    notes_col = spec.headers.index("Notes") + 1

    def baseline() -> None:
        wb = load_workbook(path)
        ws = wb["Orders"]
        for r in sheet_rows:
            ws.cell(r, po_col).value = f"EDITED-{r}"
        for r in portal_rows:
            ws.cell(r, notes_col).value = f"portal change {r}"
        wb.save(tmp / "baseline.xlsx")

    naive, _ = _timed(baseline)
    print(f"sync, {changes} sheet edits + {changes} portal changes: {seconds:.2f} s")
    print(f"sync, no change:                                {idle:.2f} s")
    print(f"baseline, openpyxl load + edit + save:          {naive:.2f} s")
    print(f"speed-up over baseline:                         {naive / seconds:.1f}x")
    if paste:
        bench_paste(tracker.id, path, spec.headers, min(paste, rows), rounds)


def bench_paste(
    tracker_id: int, path: Path, headers: list[str], count: int, rounds: int = 1
) -> None:
    """A ``count``-row paste applied in batches, then one transaction per row, ``rounds``
    times interleaved; the medians."""
    import jobs.sync as sync_job
    from portal.sync.orders import OrdersKind
    from sheets.backends.xlsx import XlsxBackend
    from sheets.grid import CellWrite

    po_col, notes_col = headers.index("Customer PO") + 1, headers.index("Notes") + 1
    apply_seconds: list[float] = []
    original = sync_job._apply

    def timed_apply(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            apply_seconds.append(time.perf_counter() - start)

    sync_job._apply = timed_apply
    timings: dict[str, list[tuple[float, float]]] = {"batch": [], "per row": []}
    print(f"load average before the paste rounds: {_load()}")
    for round_no in range(1, rounds + 1):
        for label, batched in (("batch", True), ("per row", False)):
            backend = XlsxBackend(path, "Orders")
            text = f"{label} {round_no}"
            cells = [CellWrite(r, po_col, f"{text}-PO-{r}") for r in range(2, count + 2)]
            cells += [CellWrite(r, notes_col, f"{text} paste {r}") for r in range(2, count + 2)]
            backend.write(cells, backend.read())
            OrdersKind.batch_updates = batched
            seconds, outcome = _timed(sync_job.sync_tracker, tracker_id)
            assert outcome["applied"] == count and outcome["errors"] == 0, outcome
            timings[label].append((apply_seconds[-1], seconds))
            print(
                f"round {round_no}, paste of {count} rows, {label:7}: "
                f"apply {apply_seconds[-1]:.2f} s, sync {seconds:.2f} s"
            )
    sync_job._apply = original
    OrdersKind.batch_updates = True
    print(f"load average after the paste rounds: {_load()}")
    medians = {
        label: (median(a for a, _ in runs), median(s for _, s in runs))
        for label, runs in timings.items()
    }
    for label, (applying, syncing) in medians.items():
        print(
            f"paste of {count} rows, {label:7}: apply {applying:.2f} s, sync {syncing:.2f} s"
            f" (median of {rounds})"
        )
    (batch_apply, batch_sync), (row_apply, row_sync) = medians["batch"], medians["per row"]
    print(
        f"batches over a transaction per row:  apply {row_apply / batch_apply:.1f}x, "
        f"sync {row_sync / batch_sync:.1f}x"
    )


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _timed(func, *args):
    start = time.perf_counter()
    result = func(*args)
    return time.perf_counter() - start, result


if __name__ == "__main__":
    main()
