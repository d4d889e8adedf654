"""Benchmark: import 500,000 order lines (a Superstore-like line list) with bounded memory,
against entering the same orders with one REST call each.

Usage: ``.venv/bin/python bench/import_orders.py [--lines 500000] [--rest-orders 200]``

Writes a CSV of ``--lines`` lines (5 lines an order, 2,000 customers, 5,000 products) and
imports it with ``portal.services.imports.import_orders`` — the code behind
``orderbridge import orders`` — in a fresh child process that reports its wall time and peak
RSS (``ru_maxrss``). Then ``--rest-orders`` orders of 5 lines are created with one
``POST /api/v1/sales_order`` each over HTTP, as a user's script would: the app under gunicorn
(``gunicorn.conf.py``, on a free port) and one kept-alive connection. ``--test-client`` adds
the same through Flask's test client (no network, no server), labelled as such.
Uses ``DATABASE_URL`` (PostgreSQL for the issue's figure) or a temporary SQLite database.
Goal (issue 13): 500,000 lines into PostgreSQL in under 3 minutes, peak memory under 500 MB.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
HEADERS = ["Row ID", "Order ID", "Order Date", "Ship Date", "Ship Mode", "Customer ID"]
HEADERS += ["Customer Name", "Segment", "Region", "Product ID", "Category", "Product Name"]
HEADERS += ["Sales", "Quantity", "Discount"]


def write_file(path: Path, lines: int) -> None:
    start = date(2015, 1, 1)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(HEADERS)
        for n in range(lines):
            order = n // 5
            customer = order % 2000
            product = (n * 7) % 5000
            when = start + timedelta(days=order % 3000)
            out.writerow(
                [
                    n + 1,
                    f"BN-{order:07d}",
                    when.isoformat(),
                    (when + timedelta(days=3)).isoformat(),
                    "Standard Class",
                    f"CU-{customer:05d}",
                    f"Customer {customer}",
                    ("Consumer", "Corporate", "Home Office")[customer % 3],
                    ("East", "West", "Central", "South")[customer % 4],
                    f"PR-{product:05d}",
                    ("Furniture", "Office Supplies", "Technology")[product % 3],
                    f"Product {product}",
                    f"{(product % 500) + 1}.{n % 100:02d}",
                    1 + n % 9,
                    "0.2" if n % 10 == 0 else "0",
                ]
            )


def import_child(path: str) -> None:
    """Import ``path`` in this (fresh) process; print the result as JSON."""
    from portal import create_app
    from portal.services import imports
    from portal.services.base import Actor
    from portal.services.imports_fields import preset_mapping
    from sheets.readers import read_table

    app = create_app()
    with app.app_context():
        table = read_table(Path(path))
        options = imports.ImportOptions(preset_mapping("superstore", table.headers))
        started = time.perf_counter()
        result = imports.import_orders(Path(path), table, Actor.system("system:bench"), options)
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "counts": result.counts}))


def bench_user(password: str, role: str = "Admin") -> None:
    """The ``bench`` user (of ``role``; Admin holds every permission), made when missing,
    signing in with ``password`` (inside an app context; committed)."""
    from portal.extensions import appbuilder, db
    from portal.security import sync_roles

    sync_roles(appbuilder)
    user = appbuilder.sm.find_user(username="bench")
    if user is not None:  # a database reused from an earlier run: this run's password
        appbuilder.sm.reset_password(user.id, password)
    else:
        appbuilder.sm.add_user(
            "bench",
            "Bench",
            "User",
            "bench@example.test",
            appbuilder.sm.find_role(role),
            password=password,
        )
    db.session.commit()


def _bench_user(app) -> tuple[int, list[int]]:
    """An Admin ``bench`` user; a customer and 5 products to order."""
    from portal.extensions import db
    from portal.models import Customer, Product
    from tests.conftest import TEST_PASSWORD

    with app.app_context():
        bench_user(TEST_PASSWORD)
        customer_id = db.session.query(Customer.id).first()[0]
        product_ids = [row[0] for row in db.session.query(Product.id).limit(5)]
    return customer_id, product_ids


def _order_bodies(customer_id: int, product_ids: list[int], count: int, tag: str) -> list[dict]:
    return [
        {
            "customer_id": customer_id,
            "customer_po": f"{tag}-{n}",
            "lines": [{"product_id": pid, "quantity": 1 + n % 9} for pid in product_ids],
        }
        for n in range(count)
    ]


def _rate(count: int, seconds: float) -> dict:
    return {"orders": count, "seconds": seconds, "lines_per_s": count * 5 / seconds}


def rest_test_client(app, bodies: list[dict]) -> dict:
    """One REST call per order through Flask's test client (in process, no HTTP)."""
    from tests.conftest import TEST_PASSWORD

    client = app.test_client()
    login = client.post(
        "/api/v1/security/login",
        json={"username": "bench", "password": TEST_PASSWORD, "provider": "db"},
    )
    assert login.status_code == 200, login.get_data(as_text=True)
    headers = {"Authorization": f"Bearer {login.json['access_token']}"}
    started = time.perf_counter()
    for body in bodies:
        answer = client.post("/api/v1/sales_order/", json=body, headers=headers)
        assert answer.status_code == 201, answer.get_data(as_text=True)
    return _rate(len(bodies), time.perf_counter() - started)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(conn: http.client.HTTPConnection, path: str, body: dict, headers: dict) -> tuple:
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **headers})
    answer = conn.getresponse()
    return answer.status, json.loads(answer.read() or b"null")


def gunicorn_server(log_path: Path, **settings: str) -> tuple[subprocess.Popen, int]:
    """The app under gunicorn (the repository's gunicorn.conf.py) on a free port, up;
    ``settings`` are added to its environment (e.g. ``GUNICORN_TIMEOUT="300"``)."""
    port = _free_port()
    env = {**os.environ, "GUNICORN_BIND": f"127.0.0.1:{port}", **settings}
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "portal:create_app()"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited: see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, port
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not start within 60 s")


def rest_http(folder: str, bodies: list[dict]) -> dict:
    """One ``POST /api/v1/sales_order/`` per order over HTTP to gunicorn, as a user's script
    would send them (one kept-alive connection, a JWT from the login endpoint)."""
    from tests.conftest import TEST_PASSWORD

    server, port = gunicorn_server(
        Path(folder) / "gunicorn.log",
        WRITE_RATE_LIMIT="",
        WRITE_IP_RATE_LIMIT="",
        GUNICORN_TIMEOUT="120",
    )
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        credentials = {"username": "bench", "password": TEST_PASSWORD, "provider": "db"}
        status, login = _post(conn, "/api/v1/security/login", credentials, {})
        assert status == 200, login
        headers = {"Authorization": f"Bearer {login['access_token']}"}
        started = time.perf_counter()
        for body in bodies:
            status, answer = _post(conn, "/api/v1/sales_order/", body, headers)
            assert status == 201, answer
        seconds = time.perf_counter() - started
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return _rate(len(bodies), seconds)


def _own_database(folder: str) -> str | None:
    """A schema of its own on PostgreSQL (dropped at the end), else a SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.db"
        return None
    from sqlalchemy import create_engine, text

    from config import normalise_database_url

    base = normalise_database_url(url)
    schema = f"bench_import_{os.getpid()}"
    with create_engine(base).begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    os.environ["DATABASE_URL"] = (
        f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    )
    os.environ["BENCH_BASE_URL"] = base
    return schema


def _drop(schema: str | None) -> None:
    if schema:
        from sqlalchemy import create_engine, text

        with create_engine(os.environ["BENCH_BASE_URL"]).begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--rest-orders", type=int, default=200)
    parser.add_argument(
        "--test-client",
        action="store_true",
        help="also time the REST calls through Flask's test client (no HTTP)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import_child(args.child)
        return
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault("ORDERBRIDGE_MODE", "test")
        os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 40)
        os.environ["ORDERBRIDGE_INSTANCE_DIR"] = folder
        schema = _own_database(folder)
        from flask_migrate import upgrade

        from portal import create_app

        app = create_app(
            {"WTF_CSRF_ENABLED": False, "WRITE_RATE_LIMIT": "", "WRITE_IP_RATE_LIMIT": ""}
        )
        with app.app_context():
            upgrade()
        path = Path(folder) / "lines.csv"
        write_file(path, args.lines)
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        done = json.loads(child.stdout.strip().splitlines()[-1])
        rate = args.lines / done["seconds"]
        print(
            f"import: {args.lines:,} lines ({done['counts']['orders_created']:,} orders) in "
            f"{done['seconds']:.1f} s = {rate:,.0f} lines/s; peak RSS {done['peak_rss_mb']:.0f} MB"
        )
        customer_id, product_ids = _bench_user(app)
        rest = rest_http(folder, _order_bodies(customer_id, product_ids, args.rest_orders, "HTTP"))
        print(
            f"REST over HTTP (gunicorn), one POST /api/v1/sales_order per order of 5 lines: "
            f"{rest['orders']} orders in {rest['seconds']:.1f} s = "
            f"{rest['lines_per_s']:,.0f} lines/s (the import is "
            f"{rate / rest['lines_per_s']:,.0f}x faster)"
        )
        if args.test_client:
            bodies = _order_bodies(customer_id, product_ids, args.rest_orders, "TC")
            local = rest_test_client(app, bodies)
            print(
                f"REST through Flask's test client (in process, no HTTP, not what a user "
                f"gets): {local['orders']} orders in {local['seconds']:.1f} s = "
                f"{local['lines_per_s']:,.0f} lines/s"
            )
        _drop(schema)


if __name__ == "__main__":
    main()
