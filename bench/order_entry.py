"""Order entry throughput and order-list latency on PostgreSQL.

    .venv/bin/python bench/order_entry.py [--orders N] [--http-orders N] [--list-orders N]

1. Through the services: create → validate → confirm → allocate ``--orders`` orders of 5 lines
   (goal: at least 150 orders/s); prints orders/second and p50/p95 per order — one order at a
   time as three user actions (three commits) and as one unit of work, in batches of
   ``--batch`` orders (``create_many`` → ``confirm_many`` → ``allocate_many``, one commit per
   batch, as an import or bulk entry runs), and by ``--workers`` processes at once (one order
   per commit, and in batches), each started and warmed up before the clock starts.
2. Through HTTP: the same flow against a gunicorn server (2 workers) over the REST API
   (create with lines, ``/confirm``, ``/allocate``).
3. List latency: with ``--list-orders`` orders in the table, p50/p95 of the orders list, on the
   API (``GET /api/v1/sales_order/``) and in the portal (``/salesorderview/list/``); goal p95
   under 250 ms. Those rows are bulk-inserted with SQL to save time (they exercise reads only);
   everything in steps 1 and 2 goes through the services.

Uses ``DATABASE_URL`` (default ``postgresql://127.0.0.1:5432/test``) in a schema of its own,
dropped at the end, and Redis from ``REDIS_URL`` (default ``redis://127.0.0.1:6379/14``).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PASSWORD = "bench-password"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def report(label: str, seconds: list[float], wall: float) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{label}: {len(seconds)} orders in {wall:.1f} s = {len(seconds) / wall:.0f} orders/s; "
        f"per order p50 {percentile(ms, 50):.1f} ms, p95 {percentile(ms, 95):.1f} ms"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup_environment() -> tuple[str, str, object]:
    from config import normalise_database_url

    base = normalise_database_url(
        os.environ.get("DATABASE_URL", "postgresql://127.0.0.1:5432/test")
    )
    if not base.startswith("postgresql"):
        sys.exit("this benchmark needs PostgreSQL: set DATABASE_URL")
    schema = f"ob_bench_{secrets.token_hex(4)}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    os.environ.update(
        DATABASE_URL=f"{base}{sep}options=-csearch_path%3D{schema}",
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
        ORDERBRIDGE_MODE="test",
        ORDERBRIDGE_INSTANCE_DIR=tempfile.mkdtemp(prefix="ob-bench-"),
    )
    return base, schema, engine


def build_catalog():
    """Warehouses, 50 products with plenty of stock, 20 customers — through the services."""
    from portal.services import catalog, inventory
    from portal.services.base import Actor

    setup = Actor.system("system:bench")
    term = catalog.payment_terms.create({"code": "NET30", "name": "Net 30", "days": 30}, setup)
    warehouses = [
        catalog.warehouses.create({"code": f"W{n}", "name": f"DC {n}", "priority": n}, setup)
        for n in (1, 2, 3)
    ]
    products = [
        catalog.products.create(
            {"sku": f"B-{n:03d}", "name": f"Bench part {n}", "list_price": Decimal("4.25")},
            setup,
        )
        for n in range(50)
    ]
    for product in products:
        for warehouse in warehouses:
            inventory.receive(product.id, warehouse.id, 1_000_000, setup, reference="bench")
    customers = []
    for n in range(20):
        customer = catalog.customers.create(
            {
                "code": f"BC{n:03d}",
                "name": f"Bench customer {n}",
                "email": f"orders@customer{n}.example",  # so confirmations are queued
                "credit_limit": Decimal("1000000000"),
                "payment_term_id": term.id,
            },
            setup,
        )
        address = catalog.customer_addresses.create(
            {
                "customer_id": customer.id,
                "line1": "1 Bench Road",
                "city": "Leeds",
                "postal_code": "LS1",
                "country": "GB",
            },
            setup,
        )
        customers.append((customer.id, address.id))
    return customers, [p.id for p in products]


def order_payload(n: int, customers, products) -> tuple[dict, list[dict]]:
    customer_id, address_id = customers[n % len(customers)]
    header = {
        "customer_id": customer_id,
        "customer_po": f"PO-{n}",
        "requested_date": datetime.now(UTC).date() + timedelta(days=30),
        "ship_to_id": address_id,
    }
    lines = [
        {"product_id": products[(n * 5 + i) % len(products)], "quantity": 1 + (n + i) % 7}
        for i in range(5)
    ]
    return header, lines


def bench_services(count: int, customers, products, start: int = 0) -> None:
    """One order at a time: as three user actions (three commits), then as one unit of work."""
    from portal.extensions import db
    from portal.services import fulfillment, lifecycle, orders
    from portal.services.base import Actor

    actor = Actor.system("job:bench")
    timings = []
    started = time.perf_counter()
    for n in range(start, start + count):
        t0 = time.perf_counter()
        header, lines = order_payload(n, customers, products)
        order = orders.orders.create_with_lines(header, lines, actor)
        lifecycle.confirm(order, actor)
        fulfillment.allocate(order, actor)
        assert order.status == "allocated", (order.status, order.hold_reasons)
        timings.append(time.perf_counter() - t0)
        db.session.expunge_all()
    report(
        "services, 3 commits per order (create, confirm, allocate)",
        timings,
        time.perf_counter() - started,
    )
    started = time.perf_counter()
    timings = run_batches(start + count, count, 1, customers, products)
    report("services, 1 commit per order", timings, time.perf_counter() - started)


def run_batches(first: int, count: int, size: int, customers, products) -> list[float]:
    """Enter orders ``first`` … ``first + count - 1`` in batches of ``size``, each batch one
    unit of work (``create_many`` → ``confirm_many`` → ``allocate_many``; a batch of one is
    ``create_with_lines`` → ``confirm`` → ``allocate``); returns each batch's seconds."""
    from portal.extensions import db
    from portal.services import fulfillment, lifecycle, orders
    from portal.services.base import Actor, unit_of_work

    actor = Actor.system("job:bench")
    batch_seconds = []
    for start in range(first, first + count, size):
        last = min(start + size, first + count)
        entries = [order_payload(n, customers, products) for n in range(start, last)]
        t0 = time.perf_counter()
        with unit_of_work():
            created = orders.orders.create_many(entries, actor)
            lifecycle.confirm_many(created, actor)
            fulfillment.allocate_many(created, actor)
        batch_seconds.append(time.perf_counter() - t0)
        assert all(order.status == "allocated" for order in created)
        db.session.expunge_all()
    return batch_seconds


def report_batches(label: str, count: int, size: int, batch_seconds: list[float], wall: float):
    ms = [s * 1000 for s in batch_seconds]
    print(
        f"{label}: {count} orders in {wall:.1f} s = {count / wall:.0f} orders/s; "
        f"per order {percentile(ms, 50) / size:.1f} ms (p50 batch / {size}); "
        f"per batch p50 {percentile(ms, 50):.0f} ms, p95 {percentile(ms, 95):.0f} ms"
    )


def bench_batches(count: int, size: int, customers, products, start: int) -> None:
    """``count`` orders in batches of ``size``: each batch one unit of work.

    One batch more runs first, not counted, so the first measured batch does not pay for
    compiling and preparing the statements only batches use.
    """
    run_batches(start - size, size, size, customers, products)
    started = time.perf_counter()
    seconds = run_batches(start, count, size, customers, products)
    report_batches(
        f"services, batches of {size} (create_many, confirm_many, allocate_many; one commit "
        "per batch)",
        count,
        size,
        seconds,
        time.perf_counter() - started,
    )


def _parallel_worker(args: tuple) -> tuple[float, float, list[float]]:
    """One process of the parallel run: its own app and connections, like an RQ worker.

    Every process builds its app and enters one batch (not counted) before the barrier, so
    the run measures entering orders, not starting Python; returns when it started and
    finished (``time.monotonic``, the same clock in every process) and each batch's seconds.
    """
    start, count, size, customers, products, barrier = args
    from jobs.context import set_app
    from portal import create_app

    app = create_app()
    set_app(app)
    with app.app_context():
        run_batches(start - size, size, size, customers, products)
        barrier.wait()
        began = time.monotonic()
        seconds = run_batches(start, count, size, customers, products)
        return began, time.monotonic(), seconds


def bench_parallel(count: int, workers: int, size: int, customers, products, first: int):
    """``count`` orders by ``workers`` processes at once, in batches of ``size`` each."""
    from multiprocessing import Manager, get_context

    share = count // workers
    with Manager() as manager, get_context("spawn").Pool(workers) as pool:
        barrier = manager.Barrier(workers)
        jobs = [
            (first + i * (share + size), share, size, customers, products, barrier)
            for i in range(workers)
        ]
        results = pool.map(_parallel_worker, jobs)
    wall = max(end for _, end, _ in results) - min(began for began, _, _ in results)
    seconds = [t for _, _, r in results for t in r]
    if size == 1:
        report(f"services, {workers} processes in parallel (1 commit per order)", seconds, wall)
    else:
        label = f"services, {workers} processes in parallel, batches of {size}"
        report_batches(label, share * workers, size, seconds, wall)


def start_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "portal:create_app()",
        ],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            requests.get(f"http://127.0.0.1:{port}/login/", timeout=10)
            return server
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    server.kill()
    sys.exit("gunicorn did not start")


def bench_http(base_url: str, count: int, customers, products) -> None:
    session = requests.Session()
    token = session.post(
        f"{base_url}/api/v1/security/login",
        json={"username": "bench", "password": PASSWORD, "provider": "db"},
    ).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    timings = []
    started = time.perf_counter()
    for n in range(count):
        t0 = time.perf_counter()
        header, lines = order_payload(20_000_000 + n, customers, products)
        header["requested_date"] = header["requested_date"].isoformat()
        created = session.post(f"{base_url}/api/v1/sales_order/", json={**header, "lines": lines})
        order_id = created.json()["id"]
        session.post(f"{base_url}/api/v1/sales_order/{order_id}/confirm").raise_for_status()
        allocated = session.post(f"{base_url}/api/v1/sales_order/{order_id}/allocate")
        assert allocated.json()["result"]["status"] == "allocated"
        timings.append(time.perf_counter() - t0)
    report("HTTP (REST, gunicorn -w 2): same flow", timings, time.perf_counter() - started)


def bulk_orders(engine, schema: str, total: int, customers) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"SET search_path TO {schema}"))
        existing = conn.execute(text("SELECT count(*) FROM sales_order")).scalar_one()
        missing = total - existing
        if missing <= 0:
            return
        conn.execute(
            text(
                """
                INSERT INTO sales_order (number, customer_id, customer_po, order_date,
                    requested_date, currency, status, revision, version, created_at, updated_at)
                SELECT 'BULK-' || g, :customer, 'BULK-PO-' || g, CURRENT_DATE - (g % 365),
                    CURRENT_DATE + 14, 'USD',
                    (ARRAY['draft','confirmed','allocated','shipped','delivered'])[1 + g % 5],
                    0, 1, now(), now()
                FROM generate_series(1, :missing) AS g
                """
            ),
            {"customer": customers[0][0], "missing": missing},
        )
        conn.execute(text("ANALYZE sales_order"))


def bench_list(base_url: str, runs: int = 60) -> None:
    api = requests.Session()
    token = api.post(
        f"{base_url}/api/v1/security/login",
        json={"username": "bench", "password": PASSWORD, "provider": "db"},
    ).json()["access_token"]
    api.headers["Authorization"] = f"Bearer {token}"
    browser = requests.Session()
    login_page = browser.get(f"{base_url}/login/").text
    csrf = login_page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    browser.post(
        f"{base_url}/login/", data={"username": "bench", "password": PASSWORD, "csrf_token": csrf}
    )
    targets = {
        "API  GET /api/v1/sales_order/ (newest 50)": (
            api,
            f"{base_url}/api/v1/sales_order/?q=(order_column:id,order_direction:desc,page_size:50)",
        ),
        "API  GET /api/v1/sales_order/ filtered by status": (
            api,
            f"{base_url}/api/v1/sales_order/?q=(filters:!((col:status,opr:eq,value:confirmed)),page_size:50)",
        ),
        "portal /salesorderview/list/ (first page)": (browser, f"{base_url}/salesorderview/list/"),
        "portal /salesorderview/list/ page 100": (
            browser,
            f"{base_url}/salesorderview/list/?page_SalesOrderView=100",
        ),
    }
    for label, (session, url) in targets.items():
        session.get(url).raise_for_status()
        timings = []
        for _ in range(runs):
            t0 = time.perf_counter()
            session.get(url).raise_for_status()
            timings.append((time.perf_counter() - t0) * 1000)
        print(
            f"{label}: p50 {percentile(timings, 50):.0f} ms, p95 {percentile(timings, 95):.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--http-orders", type=int, default=2000)
    parser.add_argument("--list-orders", type=int, default=200_000)
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="processes for the parallel runs (default: one per core)",
    )
    parser.add_argument("--batch", type=int, default=100, help="orders per batch")
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}")
    _, schema, engine = setup_environment()
    server = None
    try:
        from flask_migrate import upgrade

        from bench.import_orders import bench_user
        from jobs.context import set_app
        from portal import create_app

        app = create_app()
        set_app(app)  # as an RQ worker does: the process's app, start-up objects frozen
        with app.app_context():
            upgrade()
            bench_user(PASSWORD, "Specialist")
            customers, products = build_catalog()
            if args.orders:
                bench_services(args.orders, customers, products)
                bench_batches(args.orders, args.batch, customers, products, 40_000_000)
        if args.orders and args.workers > 1:
            bench_parallel(args.orders, args.workers, 1, customers, products, 30_000_000)
            bench_parallel(args.orders, args.workers, args.batch, customers, products, 50_000_000)
        port = free_port()
        server = start_server(port)
        base_url = f"http://127.0.0.1:{port}"
        if args.http_orders:
            bench_http(base_url, args.http_orders, customers, products)
        if args.list_orders:
            bulk_orders(engine, schema, args.list_orders, customers)
            print(f"orders in the table: {args.list_orders:,}")
            bench_list(base_url)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


if __name__ == "__main__":
    main()
