"""Benchmark: the Service levels page's queries and the weekly workbook at N orders.

Usage: ``DATABASE_URL=postgresql://… .venv/bin/python bench/service_levels.py [--orders 100000]
[--schema NAME]`` (``--schema``: keep the history in that schema and measure on it again next
time, skipping the set-up; the history ends on the day it was made; ``--parts page,workbook``:
measure only those of ``page``, ``today``, ``workbook``, ``stale``, ``http`` and
``download``)

PostgreSQL only (the set-up generates rows with ``generate_series``). The bench works in a
schema of its own (created, then dropped unless ``--keep``) of the database ``DATABASE_URL``
names, so it never touches other data there. Set-up: migrations, then twelve weeks of
synthetic history in bulk SQL — customers, products, warehouses, orders with two lines each,
shipments (some late, some partial), backorders, invoices, returns, credits, disputes, in
proportions like the demo's — since playing a million orders through the services would
measure the set-up, not the reports. Then the closed days are kept
(``service_levels_keep.keep``, what the periodic job does), and each ``--repeat`` times
(median reported):

- **page**: what ``/service-levels/`` computes (``service_level_targets.page``) — the
  scorecard (16 metrics, each with its 12-week trend) and the root-cause Pareto, read
  provisionally — for the current week and the last complete one;
- **today**: ``keep_today`` (today marked changed first, as an order write marks it), the
  same call when nothing changed (the job's check every minute), then the current week's
  page right after that keep (today read from its kept sums) and with today's kept sums late
  (today marked changed and ``SERVICE_LEVELS_TODAY_MAX_AGE`` set to 0: still read as kept,
  with the note), then today kept again;
- **stale**: three closed days marked stale, the current week's page (those days read from
  their last kept sums, with the note), then their keep;
- **workbook**: ``weekly_report.workbook_bytes`` — the scorecard, Pareto and detail sheets
  written as the .xlsx;
- **HTTP** (unless ``--no-http``): the app under gunicorn on a free port, signed in through
  the login form as an Admin ``bench`` user, ``GET /service-levels/?week=…`` for both weeks
  and the workbook download ``GET /service-levels/report?week=…`` (which also keeps it);
  ``--parts download``: the download alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.import_orders import bench_user, gunicorn_server  # noqa: E402 - after the path

BENCH_PASSWORD = secrets.token_urlsafe(16)
PARTS = ("page", "today", "workbook", "stale", "http", "download")

# One statement per table; :n is the order count, :today the day the history ends, :open
# the days an order may still be open (its age is i % 84 days).
OPEN_DAYS = 14
SETUP_SQL = [
    """INSERT INTO customer (id, code, name, credit_limit, credit_hold, active, currency,
        created_at, version)
       SELECT i, 'C' || i, 'Customer ' || i, 1000000, false, true, 'USD', now(), 1
       FROM generate_series(1, 200) i""",
    """INSERT INTO product (id, sku, name, unit, pack_size, list_price, lead_time_days, active,
        version)
       SELECT i, 'SKU-' || i, 'Product ' || i, 'ea', 1, 10 + i % 50, i % 5, true, 1
       FROM generate_series(1, 500) i""",
    """INSERT INTO warehouse (id, code, name, priority, active, version)
       SELECT i, 'W' || i, 'Warehouse ' || i, i, true, 1 FROM generate_series(1, 3) i""",
    # fate by i % 100: 0-1 quote, 2-3 cancelled, 4-9 backordered (line 1 short by 4), 10-14
    # shipped in two parts (line 2 later), 15-59 invoiced, 60-99 closed. An order younger than
    # :open days may still be open: 4-9 allocated/confirmed with an open backorder, 10-14
    # partially shipped; an older one has had its rest shipped late (a second shipment) and
    # is closed, as a real backlog is the recent weeks' orders, not every order ever short.
    """INSERT INTO sales_order (id, number, customer_id, order_date, requested_date,
        promised_date, currency, status, revision, created_at, updated_at, version)
       SELECT i, 'SO-' || lpad(i::text, 8, '0'), 1 + i % 200,
              CAST(:today AS date) - (i % 84), CAST(:today AS date) - (i % 84) + 7,
              CAST(:today AS date) - (i % 84) + 7, 'USD',
              CASE WHEN i % 100 < 2 THEN 'quote' WHEN i % 100 < 4 THEN 'cancelled'
                   WHEN i % 100 < 15 AND i % 84 >= :open THEN 'closed'
                   WHEN i % 100 < 7 THEN 'allocated' WHEN i % 100 < 10 THEN 'confirmed'
                   WHEN i % 100 < 15 THEN 'partially_shipped'
                   WHEN i % 100 < 60 THEN 'invoiced' ELSE 'closed' END,
              0, now(), now(), 1
       FROM generate_series(1, :n) i""",
    """INSERT INTO order_line (id, order_id, line_no, product_id, quantity, unit_price,
        list_price, discount_pct, qty_allocated, qty_backordered, qty_shipped, qty_delivered,
        qty_cancelled, qty_returned, version)
       SELECT 2 * i - 2 + l, i, l, 1 + (i * 7 + l) % 500, 10, 12.5, 12.5, 0,
              CASE WHEN i % 100 BETWEEN 4 AND 9 AND i % 84 < :open THEN 6 ELSE 0 END,
              CASE WHEN i % 100 BETWEEN 4 AND 9 AND i % 84 < :open AND l = 1 THEN 4 ELSE 0 END,
              shipped, shipped, 0, 0, 1
       FROM generate_series(1, :n) i, generate_series(1, 2) l,
            LATERAL (SELECT CASE WHEN i % 100 >= 15 OR (i % 100 >= 4 AND i % 84 >= :open)
                                 THEN 10 WHEN i % 100 >= 10 AND l = 1 THEN 10 ELSE 0
                            END AS shipped) q""",
    # one shipment per shipped order: ships order_date + 2, arrives + 4 .. + 10 (some late);
    # the closed short orders' rest (id :n + order): ships + 9, arrives + 12 (late)
    """INSERT INTO shipment (id, number, order_id, warehouse_id, carrier, ship_date, eta,
        delivered_date, status, delay_reason, created_at, version)
       SELECT i, 'SH-' || i, i, 1 + i % 3,
              (ARRAY['DHL', 'UPS', 'FedEx', 'DB Schenker'])[1 + i % 4],
              o.order_date + 2, o.order_date + 4 + i % 7,
              CASE WHEN o.order_date + 4 + i % 7 <= CAST(:today AS date)
                   THEN o.order_date + 4 + i % 7 END,
              CASE WHEN o.order_date + 4 + i % 7 <= CAST(:today AS date)
                   THEN 'delivered' ELSE 'shipped' END,
              CASE WHEN i % 7 > 3 THEN (ARRAY['carrier_delay', 'weather', 'customs',
                   'capacity'])[1 + i % 4] END, now(), 1
       FROM generate_series(1, :n) i JOIN sales_order o ON o.id = i
       WHERE i % 100 >= 10 OR (i % 100 >= 4 AND i % 84 >= :open)""",
    """INSERT INTO shipment (id, number, order_id, warehouse_id, carrier, ship_date, eta,
        delivered_date, status, delay_reason, created_at, version)
       SELECT :n + o.id, 'SH-' || (:n + o.id), o.id, 1 + o.id % 3, 'DHL', o.order_date + 9,
              o.order_date + 12, o.order_date + 12, 'delivered', 'stock_shortage', now(), 1
       FROM sales_order o WHERE o.id % 100 BETWEEN 4 AND 14 AND o.status = 'closed'""",
    # the first shipment carries what was in stock; the second one the rest
    """INSERT INTO shipment_line (shipment_id, order_line_id, quantity)
       SELECT s.id, l.id, CASE WHEN s.order_id % 100 < 10 AND l.line_no = 1 THEN 6 ELSE 10 END
       FROM shipment s JOIN order_line l ON l.order_id = s.order_id
       WHERE s.id <= :n AND (l.qty_shipped > 0 AND (s.order_id % 100 >= 15
             OR s.order_id % 100 < 10 OR l.line_no = 1))""",
    """INSERT INTO shipment_line (shipment_id, order_line_id, quantity)
       SELECT s.id, l.id, CASE WHEN s.order_id % 100 < 10 THEN 4 ELSE 10 END
       FROM shipment s JOIN order_line l ON l.order_id = s.order_id
       WHERE s.id > :n AND l.line_no = CASE WHEN s.order_id % 100 < 10 THEN 1 ELSE 2 END""",
    """INSERT INTO backorder (order_line_id, quantity, initial_quantity, expected_date,
        priority, status, created_at, filled_at, version)
       SELECT l.id, 4, 4, CAST(:today AS date) + 7, 5,
              CASE WHEN o.status IN ('allocated', 'confirmed') THEN 'open' ELSE 'filled' END,
              now(), CASE WHEN o.status NOT IN ('allocated', 'confirmed') THEN now() END, 1
       FROM order_line l JOIN sales_order o ON o.id = l.order_id
       WHERE l.line_no = 1 AND (o.id % 100 BETWEEN 4 AND 9 OR o.id % 13 = 0)""",
    """INSERT INTO invoice (id, number, order_id, customer_id, status, currency, tax_rate,
        subtotal, tax_amount, total, amount_paid, amount_credited, issue_date, due_date,
        created_by, created_at, version)
       SELECT o.id, 'INV-' || o.id, o.id, o.customer_id, 'issued', 'USD', 0, 250, 0, 250, 0, 0,
              o.order_date + 9 + o.id % 5, o.order_date + 39, 'bench', now(), 1
       FROM sales_order o WHERE o.status IN ('invoiced', 'closed')
            AND o.order_date + 9 + o.id % 5 <= CAST(:today AS date)""",
    """INSERT INTO return_authorization (id, number, order_id, warehouse_id, status, reason,
        requested_by, created_at, version)
       SELECT o.id, 'RMA-' || o.id, o.id, 1, 'authorized',
              (ARRAY['Damaged in transit', 'Wrong item', 'Not needed'])[1 + o.id % 3],
              'bench', CAST(o.order_date + 12 AS timestamp) AT TIME ZONE 'UTC', 1
       FROM sales_order o WHERE o.status = 'closed' AND o.id % 50 = 11
            AND o.order_date + 12 <= CAST(:today AS date)""",
    """INSERT INTO return_line (rma_id, order_line_id, quantity, received_quantity)
       SELECT r.id, l.id, 2, 0 FROM return_authorization r
       JOIN order_line l ON l.order_id = r.order_id AND l.line_no = 1""",
    """INSERT INTO dispute (id, number, invoice_id, dispute_type, amount, owner, status,
        opened_by, opened_at, due_date, root_cause, closed_by, closed_at, version)
       SELECT v.id, 'DSP-' || v.id, v.id, 'pricing', 20, 'bench',
              CASE WHEN v.id % 3 = 0 THEN 'open' ELSE 'resolved' END, 'bench',
              CAST(v.issue_date + 3 AS timestamp) AT TIME ZONE 'UTC', v.issue_date + 13,
              CASE WHEN v.id % 3 = 0 THEN NULL
                   ELSE (ARRAY['price_list_error', 'carrier', 'picking_error'])[1 + v.id % 3]
              END, CASE WHEN v.id % 3 = 0 THEN NULL ELSE 'bench' END,
              CASE WHEN v.id % 3 = 0 THEN NULL
                   ELSE CAST(v.issue_date + 3 + v.id % 12 AS timestamp) AT TIME ZONE 'UTC' END, 1
       FROM invoice v WHERE v.id % 40 = 0
            AND v.issue_date + 3 + v.id % 12 <= CAST(:today AS date)""",
    """INSERT INTO credit_memo (number, invoice_id, status, reason_code, amount, requested_by,
        requested_at, decided_by, decided_at, version)
       SELECT 'CM-' || v.id, v.id, 'approved',
              (ARRAY['pricing_error', 'damaged', 'goodwill'])[1 + v.id % 3], 15, 'bench',
              CAST(v.issue_date + 2 AS timestamp) AT TIME ZONE 'UTC', 'boss',
              CAST(v.issue_date + 3 AS timestamp) AT TIME ZONE 'UTC', 1
       FROM invoice v WHERE v.id % 60 = 7 AND v.issue_date + 3 <= CAST(:today AS date)""",
]


def migrate(app) -> None:
    """Bring a reused bench schema to the current migrations."""
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()


def setup(app, orders: int) -> None:
    """Migrate and generate ``orders`` orders of history in bulk SQL, then ANALYZE."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from portal.extensions import db
    from portal.models import utcnow

    with app.app_context():
        upgrade()
        today = utcnow().date()
        for statement in SETUP_SQL:
            db.session.execute(text(statement), {"n": orders, "today": today, "open": OPEN_DAYS})
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def timed(call, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _page(week):
    """What ``/service-levels/`` computes: the scorecard (16 metrics, 12-week trends) and
    the root-cause Pareto of ``week``, read as the page reads them."""
    from portal.extensions import db
    from portal.services.service_level_targets import page

    shown = page(week)
    db.session.rollback()
    return shown


def measure(app, repeat: int, parts: set[str]) -> None:
    from portal.extensions import db
    from portal.models import utcnow
    from portal.services import service_level_marks, weekly_report
    from portal.services import service_levels as sl
    from portal.services.base import Actor
    from portal.services.service_levels_keep import keep

    with app.app_context():
        started = time.perf_counter()
        kept = keep(Actor.system("system:bench"))
        print(f"keep: {kept} closed days kept in {time.perf_counter() - started:.1f} s")
        if "page" in parts:
            for week in (sl.week_of(utcnow().date()), sl.last_complete_week()):
                seconds, shown = timed(lambda week=week: _page(week), repeat)
                print(f"page {week.label}: {seconds:.3f} s (median of {repeat}); {_told(shown)}")
        if "today" in parts:
            measure_today(app, repeat)
        if "workbook" in parts:
            week = sl.last_complete_week()
            seconds, content = timed(lambda: weekly_report.workbook_bytes(week), repeat)
            print(
                f"workbook {week.label}: {seconds:.3f} s (median of {repeat}), "
                f"{len(content) / 1e6:.1f} MB"
            )
        if "stale" in parts:
            # records of three closed days changed: marked stale until the job keeps them
            today = utcnow().date()
            changed = [today - timedelta(days=n) for n in (1, 3, 10)]
            service_level_marks.mark_days(db.session.connection(), changed)
            db.session.commit()
            current = sl.week_of(today)
            seconds, shown = timed(lambda: _page(current), repeat)
            print(
                f"page {current.label} with 3 stale days: {seconds:.3f} s (median of {repeat}); "
                f"{_told(shown)}"
            )
            started = time.perf_counter()
            kept = keep(Actor.system("system:bench"))
            print(f"keep: {kept} stale days kept again in {time.perf_counter() - started:.2f} s")


def _told(shown) -> str:
    """What a page shows of its figures: OTIF, the Pareto, where today and changed days
    were read from."""
    from portal.models import utcnow

    otif = next(row for row in shown.rows if row.metric.key == "otif_order").figure
    today = "today not shown"
    if shown.read.today_at is not None:
        late = " (late)" if shown.read.today_late else ""
        today = f"today kept {shown.read.today_at:%H:%M:%S}{late}"
    elif any(
        utcnow().date() in (run.start, run.end - timedelta(days=1)) for run in shown.read.live
    ):
        today = "today live"
    return (
        f"OTIF orders {otif.num}/{otif.den}, {len(shown.bars)} Pareto bars, {today}, "
        f"{len(shown.read.behind)} days read as last kept"
    )


def measure_today(app, repeat: int) -> None:
    """Keeping today (forced, and when nothing changed), and the current week's page with
    today kept, fresh and late."""
    from portal.extensions import db
    from portal.models import utcnow
    from portal.services import service_level_marks
    from portal.services import service_levels as sl
    from portal.services.base import Actor
    from portal.services.service_levels_keep import keep_today

    actor = Actor.system("system:bench")
    every = timedelta(seconds=app.config["SERVICE_LEVELS_TODAY_EVERY"] + 1)

    def changed_then_kept() -> bool:
        service_level_marks.mark_days(db.session.connection(), [utcnow().date()])
        db.session.commit()
        return keep_today(actor, now=utcnow() + every)

    keep_today(actor)  # today's row exists from here on: each run below re-keeps it
    seconds, done = timed(changed_then_kept, repeat)
    print(f"keep today after a change: {seconds:.3f} s (median of {repeat}), kept: {done}")
    seconds, done = timed(lambda: keep_today(actor, now=utcnow() + every), repeat)
    db.session.rollback()
    print(
        f"keep today, nothing changed: {seconds * 1000:.1f} ms (median of {repeat}), kept: {done}"
    )
    current = sl.week_of(utcnow().date())
    seconds, shown = timed(lambda: _page(current), repeat)
    print(f"page {current.label}, today kept: {seconds:.3f} s (median of {repeat}); {_told(shown)}")
    # today changed since its keep, which is older than the max age: read as kept, late
    service_level_marks.mark_days(db.session.connection(), [utcnow().date()])
    db.session.commit()
    max_age = app.config["SERVICE_LEVELS_TODAY_MAX_AGE"]
    app.config["SERVICE_LEVELS_TODAY_MAX_AGE"] = 0
    try:
        seconds, shown = timed(lambda: _page(current), repeat)
    finally:
        app.config["SERVICE_LEVELS_TODAY_MAX_AGE"] = max_age
    keep_today(actor, now=utcnow() + every)
    print(f"page {current.label}, today late: {seconds:.3f} s (median of {repeat}); {_told(shown)}")


def measure_http(app, repeat: int, pages: bool = True) -> None:
    """The page (unless not ``pages``) and the workbook download as a browser gets them:
    over HTTP from gunicorn, signed in through the login form."""
    import http.cookiejar
    import re
    import tempfile
    import urllib.parse
    import urllib.request

    from portal.models import utcnow
    from portal.services import service_levels as sl

    with app.app_context():
        bench_user(BENCH_PASSWORD)
    with tempfile.TemporaryDirectory() as folder:
        server, port = gunicorn_server(Path(folder) / "gunicorn.log", GUNICORN_TIMEOUT="300")
        try:
            base = f"http://127.0.0.1:{port}"
            opener = urllib.request.build_opener(
                urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
            )
            form = opener.open(f"{base}/login/", timeout=60).read().decode()
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
            fields = {"username": "bench", "password": BENCH_PASSWORD}
            if token:
                fields["csrf_token"] = token.group(1)
            opener.open(f"{base}/login/", urllib.parse.urlencode(fields).encode(), timeout=60)

            def get(path: str) -> bytes:
                with opener.open(f"{base}{path}", timeout=300) as answer:
                    assert answer.status == 200 and "/login" not in answer.url, answer.url
                    return answer.read()

            for week in (sl.week_of(utcnow().date()), sl.last_complete_week()) if pages else ():
                path = f"/service-levels/?week={week.label}"
                get(path)  # the worker's first request loads what it imports lazily
                seconds, body = timed(lambda path=path: get(path), repeat)
                print(
                    f"HTTP GET {path}: {seconds:.3f} s (median of {repeat}), "
                    f"{len(body) / 1e3:.0f} kB"
                )
            path = f"/service-levels/report?week={sl.last_complete_week().label}"
            seconds, body = timed(lambda: get(path), repeat)
            print(
                f"HTTP GET {path}: {seconds:.3f} s (median of {repeat}), {len(body) / 1e6:.1f} MB"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the bench's schema")
    parser.add_argument(
        "--schema",
        help="work in this schema and keep it; when it already holds the history (an earlier "
        "run with the same --schema), only migrate it and measure again",
    )
    parser.add_argument("--no-http", action="store_true", help="skip the gunicorn figures")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"what to measure, comma-separated among {', '.join(PARTS)} (default: all)",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(",")) - ({"http"} if args.no_http else set())
    if parts - set(PARTS):
        sys.exit(f"Error: --parts takes {', '.join(PARTS)}")
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit(
            "Error: set DATABASE_URL to a PostgreSQL database (the bench uses a schema of its own)"
        )
    from sqlalchemy import create_engine, text

    from config import normalise_database_url

    base = normalise_database_url(url)
    schema = args.schema or f"bench_sl_{secrets.token_hex(3)}"
    engine = create_engine(base)
    with engine.begin() as conn:
        reused = bool(
            conn.execute(
                text("SELECT to_regclass(:table) IS NOT NULL"), {"table": f"{schema}.sales_order"}
            ).scalar()
        )
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    os.environ["DATABASE_URL"] = (
        f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    )
    os.environ.setdefault("ORDERBRIDGE_MODE", "test")
    try:
        from portal import create_app

        app = create_app()
        started = time.perf_counter()
        if reused:
            migrate(app)
            setting = f"schema {schema} reused (its history kept from an earlier run)"
        else:
            setup(app, args.orders)
            setting = f"set-up: {args.orders:,} orders in {time.perf_counter() - started:.1f} s"
        print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, postgresql; {setting}")
        measure(app, args.repeat, parts)
        if parts & {"http", "download"}:
            measure_http(app, args.repeat, pages="http" in parts)
    finally:
        if not (args.keep or args.schema):
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


if __name__ == "__main__":
    main()
