"""Order reads before and after (issue 18): two revisions of the portal side by side.

    .venv/bin/python bench/order_reads.py --baseline REV [--orders 200000] [--lines 5]
        [--customers 2000] [--runs 50] [--warmups 5]

The baseline revision (``git archive REV``) and the working tree each get a schema of their
own in ``DATABASE_URL`` (default ``postgresql://127.0.0.1:5432/test``), migrated by their
own code and filled with the same rows, set-based: ``--customers`` customers, 50 products,
``--orders`` orders of ``--lines`` lines each (the working tree's stored totals are filled
by one UPDATE, as its migration does), then ``VACUUM ANALYZE``. Each side is served by
gunicorn (2 workers). Every case is asked of both servers alternately (A, B, A, B …),
``--warmups`` times each untimed, then ``--runs`` times each timed; p50/p95 per side and the
ratio baseline/candidate at p95 are printed. Note the machine's load (``uptime``) with the
figures. The schemas are dropped at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from order_entry import free_port, percentile  # noqa: E402

PASSWORD = "bench-password"
SETUP = f"""
import os
import portal
assert portal.__file__.startswith(os.getcwd()), portal.__file__
from flask_migrate import upgrade
from portal import create_app
from portal.extensions import appbuilder, db
from portal.security import sync_roles
app = create_app()
with app.app_context():
    upgrade()
    sync_roles(appbuilder)
    appbuilder.sm.add_user("bench", "Bench", "User", "bench@example.test",
                           appbuilder.sm.find_role("Admin"), password="{PASSWORD}")
    db.session.commit()
"""
FILL = [
    """INSERT INTO payment_term (code, name, days) VALUES ('NET30', 'Net 30', 30)""",
    """INSERT INTO customer (code, name, credit_limit, credit_hold, active, currency,
           created_at, version, payment_term_id)
       SELECT 'C' || lpad(g::text, 5, '0'), 'Customer ' || g, 100000, false, true, 'USD',
           now(), 1, (SELECT id FROM payment_term LIMIT 1)
       FROM generate_series(1, :customers) AS g""",
    """INSERT INTO product (sku, name, unit, pack_size, list_price, lead_time_days, active,
           version)
       SELECT 'SKU-' || g, 'Product ' || g, 'ea', 1, 5 + g % 40, 0, true, 1
       FROM generate_series(1, 50) AS g""",
    """INSERT INTO sales_order (number, customer_id, customer_po, order_date, requested_date,
           currency, status, revision, version, created_at, updated_at)
       SELECT 'SO-' || lpad(g::text, 8, '0'),
           (SELECT min(id) FROM customer) + g % :customers, 'PO-' || g,
           DATE '2025-01-01' + (g % 700), DATE '2025-01-15' + (g % 700), 'USD',
           (ARRAY['draft','confirmed','allocated','shipped','delivered','invoiced','closed',
                  'cancelled'])[1 + g % 8], 0, 1, now(), now()
       FROM generate_series(1, :orders) AS g""",
    """INSERT INTO order_line (order_id, line_no, product_id, quantity, unit_price, list_price,
           discount_pct, qty_allocated, qty_backordered, qty_shipped, qty_delivered,
           qty_cancelled, qty_returned, version)
       SELECT o.id, l, (SELECT min(id) FROM product) + (o.id + l) % 50, 1 + (o.id * l) % 20,
           5 + (o.id + l) % 40, 5 + (o.id + l) % 40, 0, 0, 0, 0, 0, 0, 0, 1
       FROM sales_order o CROSS JOIN generate_series(1, :lines) AS l""",
]
TOTALS = """
    UPDATE sales_order SET total = s.total
    FROM (SELECT order_id, sum(round((quantity - qty_cancelled) * unit_price, 2)) AS total
          FROM order_line GROUP BY order_id) s
    WHERE s.order_id = sales_order.id
"""


class Side:
    """One revision of the portal: its source, schema and gunicorn server."""

    def __init__(self, name: str, source: Path, base_url: str, engine) -> None:
        self.name = name
        self.source = source
        self.schema = f"ob_reads_{name}_{secrets.token_hex(3)}"
        self.engine = engine
        sep = "&" if "?" in base_url else "?"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"{base_url}{sep}options=-csearch_path%3D{self.schema}",
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
            "ORDERBRIDGE_MODE": "test",
            "ORDERBRIDGE_INSTANCE_DIR": tempfile.mkdtemp(prefix=f"ob-reads-{name}-"),
            "PYTHONPATH": str(source),
        }
        self.server: subprocess.Popen | None = None
        self.url = ""

    def prepare(self, orders: int, lines: int, customers: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {self.schema}"))
        subprocess.run(
            [sys.executable, "-c", SETUP],
            cwd=self.source,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = time.perf_counter()
        with self.engine.begin() as conn:
            conn.execute(text(f"SET search_path TO {self.schema}"))
            for statement in FILL:
                conn.execute(
                    text(statement), {"orders": orders, "lines": lines, "customers": customers}
                )
            has_total = conn.execute(
                text(
                    "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                    ":schema AND table_name = 'sales_order' AND column_name = 'total'"
                ),
                {"schema": self.schema},
            ).scalar_one()
            if has_total:
                conn.execute(text(TOTALS))
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"SET search_path TO {self.schema}"))
            conn.execute(text("VACUUM ANALYZE"))
        print(f"{self.name}: filled in {time.perf_counter() - started:.0f} s", flush=True)

    def start(self) -> None:
        port = free_port()
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.server = subprocess.Popen(
            [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "portal:create_app()"],
            cwd=self.source,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/login/", timeout=10)
                return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        sys.exit(f"{self.name}: gunicorn did not start")

    def sessions(self) -> tuple[requests.Session, requests.Session]:
        api = requests.Session()
        token = api.post(
            f"{self.url}/api/v1/security/login",
            json={"username": "bench", "password": PASSWORD, "provider": "db"},
        ).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        browser = requests.Session()
        page = browser.get(f"{self.url}/login/").text
        csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        browser.post(
            f"{self.url}/login/",
            data={"username": "bench", "password": PASSWORD, "csrf_token": csrf},
        )
        return api, browser

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)
        with self.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))


def export(revision: str) -> Path:
    """The files of ``revision`` in a temporary directory."""
    archive = subprocess.run(
        ["git", "archive", revision], cwd=REPO, check=True, capture_output=True
    ).stdout
    target = Path(tempfile.mkdtemp(prefix="ob-reads-baseline-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def cases(order_id: int) -> dict[str, tuple[str, str]]:
    """Label → (session kind, path)."""
    return {
        "REST list, page 0": ("api", "/api/v1/sales_order/"),
        "REST list, status filter": (
            "api",
            "/api/v1/sales_order/?q=(filters:!((col:status,opr:eq,value:confirmed)))",
        ),
        "REST show one order": ("api", f"/api/v1/sales_order/{order_id}"),
        "order page (HTML)": ("browser", f"/salesorderview/show/{order_id}"),
        "orders list, first page (HTML)": ("browser", "/salesorderview/list/"),
    }


def measure(sides: list[Side], runs: int, warmups: int, order_id: int) -> None:
    clients = {
        side.name: dict(zip(("api", "browser"), side.sessions(), strict=True)) for side in sides
    }
    for label, (kind, path) in cases(order_id).items():
        timings: dict[str, list[float]] = {side.name: [] for side in sides}
        for round_no in range(warmups + runs):
            for side in sides:
                started = time.perf_counter()
                response = clients[side.name][kind].get(f"{side.url}{path}")
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                if round_no >= warmups:
                    timings[side.name].append(elapsed)
        figures = {
            name: (percentile(values, 50), percentile(values, 95))
            for name, values in timings.items()
        }
        before, after = figures["baseline"], figures["candidate"]
        print(
            f"{label}: baseline p50 {before[0]:.0f} / p95 {before[1]:.0f} ms; "
            f"candidate p50 {after[0]:.0f} / p95 {after[1]:.0f} ms; "
            f"p95 ratio {before[1] / after[1]:.2f}x",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmups", type=int, default=5)
    args = parser.parse_args()
    from config import normalise_database_url

    base_url = normalise_database_url(
        os.environ.get("DATABASE_URL", "postgresql://127.0.0.1:5432/test")
    )
    if not base_url.startswith("postgresql"):
        sys.exit("this benchmark needs PostgreSQL: set DATABASE_URL")
    engine = create_engine(base_url)
    sides = [
        Side("baseline", export(args.baseline), base_url, engine),
        Side("candidate", REPO, base_url, engine),
    ]
    try:
        for side in sides:
            side.prepare(args.orders, args.lines, args.customers)
            side.start()
        with engine.connect() as conn:
            conn.execute(text(f"SET search_path TO {sides[1].schema}"))
            order_id = conn.execute(text("SELECT max(id) FROM sales_order")).scalar_one()
        print(f"load before: {os.getloadavg()}", flush=True)
        measure(sides, args.runs, args.warmups, order_id)
        print(f"load after: {os.getloadavg()}", flush=True)
    finally:
        for side in sides:
            side.stop()


if __name__ == "__main__":
    main()
