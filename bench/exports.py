"""Benchmark: export 100,000 invoices as CSV and XLSX with bounded memory.

Usage: ``.venv/bin/python bench/exports.py [--rows 100000] [--repeat N]``

Set-up builds one customer, order and shipment through the services, then bulk-inserts the
bench's invoices with a single ``INSERT … executemany`` per batch (going through the invoice
services 100,000 times would measure the set-up, not the export). Each format is then
exported by ``portal.services.exports`` — the code behind ``GET /api/v1/invoice/export`` —
in a fresh child process, which reports its wall time and peak RSS (``VmHWM`` of
``/proc/self/status``; also that peak with the app loaded, before the export starts). The
files are opened again with openpyxl and python-calamine and their row count checked. Goal:
under 300 MB and under 60 s each.
``--repeat N`` then exports the XLSX N more times, each in a fresh process.
Uses a temporary SQLite database (or ``DATABASE_URL``) and its own instance folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _app():
    from portal import create_app

    return create_app()


def setup(rows: int) -> None:
    """Migrate, create the master data through services, bulk-insert ``rows`` invoices."""
    from flask_migrate import upgrade

    from portal.extensions import db
    from portal.models import Invoice
    from portal.services import fulfillment, lifecycle, orders
    from tests.factories import SETUP, make_catalog

    app = _app()
    with app.app_context():
        upgrade()
        data = make_catalog()
        order = orders.orders.create_with_lines(
            {
                "customer_id": data.customer.id,
                "customer_po": "BENCH",
                "requested_date": date.today() + timedelta(days=14),
                "ship_to_id": data.customer.addresses[0].id,
            },
            [{"product_id": data.products[0].id, "quantity": 1}],
            SETUP,
        )
        lifecycle.confirm(order, SETUP)
        fulfillment.allocate(order, SETUP)
        shipment = fulfillment.ship(
            order,
            SETUP,
            warehouse_id=data.warehouses[0].id,
            lines={order.lines[0].id: 1},
            carrier="DHL",
        )
        now = datetime.now(UTC)
        table = Invoice.__table__
        batch: list[dict] = []
        for n in range(1, rows + 1):
            subtotal = Decimal(n % 9000 + 1) + Decimal("0.25")
            tax = (subtotal * Decimal("0.2")).quantize(Decimal("0.01"))
            batch.append(
                {
                    "number": f"INV-{n:07d}",
                    "order_id": order.id,
                    "shipment_id": shipment.id,
                    "customer_id": data.customer.id,
                    "payment_term_id": data.customer.payment_term_id,
                    "status": ("issued", "partially_paid", "paid")[n % 3],
                    "currency": "USD",
                    "tax_rate": Decimal("0.2"),
                    "subtotal": subtotal,
                    "tax_amount": tax,
                    "total": subtotal + tax,
                    "amount_paid": Decimal("0") if n % 3 == 0 else subtotal,
                    "amount_credited": Decimal("0"),
                    "issue_date": date(2025, 1, 1) + timedelta(days=n % 365),
                    "due_date": date(2025, 1, 31) + timedelta(days=n % 365),
                    "notes": "=1+1" if n % 1000 == 0 else None,
                    "created_by": "bench",
                    "created_at": now,
                    "issued_by": "bench",
                    "issued_at": now,
                    "version": 1,
                }
            )
            if len(batch) == 5000:
                db.session.execute(table.insert(), batch)
                batch.clear()
        if batch:
            db.session.execute(table.insert(), batch)
        db.session.commit()


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started, in MB (``VmHWM``: unlike
    ``ru_maxrss``, it does not carry over the peak of the bench process it was forked from,
    which has just read the last file back)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(fmt: str, out: Path) -> dict:
    """Export every invoice as ``fmt`` into ``out`` (run in a fresh child process)."""
    from portal.services import exports

    app = _app()
    with app.app_context():
        kind, fmt, filters = exports.parse_request("invoice", fmt, None, None, None)
        before_mb = peak_rss_mb()
        started = time.perf_counter()
        if fmt == "csv":
            with open(out, "wb") as handle:
                for chunk in exports.csv_chunks(kind, exports.rows(kind, filters)):
                    handle.write(chunk)
            written = None
        else:
            written = exports.write_xlsx(kind, exports.rows(kind, filters), out)
        seconds = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    return {
        "format": fmt,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_mb),
        "peak_before_mb": round(before_mb),
        "rows": written,
    }


def verify(path: Path, rows: int) -> str:
    """Re-open the file with openpyxl (read-only) and python-calamine; check the row count."""
    if path.suffix == ".csv":
        with open(path, encoding="utf-8-sig") as handle:
            count = sum(1 for _ in handle) - 1
        assert count == rows, count
        return f"csv rows {count}"
    import openpyxl
    import python_calamine

    book = openpyxl.load_workbook(path, read_only=True)
    opened = sum(1 for _ in book.active.iter_rows(min_row=2, values_only=True))
    book.close()
    sheet = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
    calamine_rows = len(sheet.to_python()) - 1
    assert opened == calamine_rows == rows, (opened, calamine_rows)
    return f"openpyxl rows {opened}, calamine rows {calamine_rows}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--repeat", type=int, default=0, metavar="N", help="then N more XLSX exports"
    )
    parser.add_argument("--measure", choices=("csv", "xlsx"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.out)))
        return
    with tempfile.TemporaryDirectory(prefix="ob-bench-exports-") as tmp:
        env = {**os.environ, "ORDERBRIDGE_MODE": "test", "ORDERBRIDGE_INSTANCE_DIR": tmp}
        env.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.db")
        os.environ.update(env)
        started = time.perf_counter()
        setup(args.rows)
        print(f"set-up: {args.rows} invoices in {time.perf_counter() - started:.1f} s")
        database = env["DATABASE_URL"].split(":")[0]
        print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {database}")
        for fmt in ["csv", "xlsx"] + ["xlsx"] * args.repeat:
            out = Path(tmp) / f"invoices.{fmt}"
            child = subprocess.run(
                [sys.executable, __file__, "--measure", fmt, "--out", str(out)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(child.stdout.strip().splitlines()[-1])
            size_mb = out.stat().st_size / 1e6
            print(
                f"{fmt}: {result['seconds']} s, "
                f"peak RSS {result['peak_rss_mb']} MB "
                f"({result['peak_before_mb']} MB before the export), "
                f"{size_mb:.1f} MB file; {verify(out, args.rows)}"
            )


if __name__ == "__main__":
    main()
