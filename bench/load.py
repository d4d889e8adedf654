"""Fill a PostgreSQL database with a production-sized data set for the read-path benchmarks.

    .venv/bin/python bench/load.py --orders 1000000 [--database-url URL] [--force]

Migrates the database (the project's own migrations), seeds the roles and the four users
``specialist``, ``supervisor``, ``auditor`` and ``admin`` with the password
``orderbridge-bench``, then fills the real tables with set-based SQL (``generate_series`` and
``INSERT … SELECT``; no row goes through Python): payment terms, 2 price lists with quantity
breaks, 3 warehouses, ``--products`` products (5,000), ``--customers`` customers (2,000) with
ship-to addresses and a contact, ``--orders`` orders spread over 2019 to today with 1 to 9
lines each (5 on average: 5,000,000 lines at a million orders), stock levels with their
ledger, and the allocations of allocated lines. It takes a few minutes at a million orders.

What holds, as the services would have left it (tests/test_bench_load.py checks it):
- an order's status follows its age: orders older than 90 days are mostly closed or
  invoiced, the last 30 days hold the drafts, holds and open orders; every status is one of
  ``OrderStatus``; a held order has hold reasons;
- lines are whole packs priced from the customer's price list with its quantity break (what
  ``pricing.price_for`` answers), their fulfilment quantities follow the order's status
  (allocated, shipped, delivered, cancelled), allocated units have allocation rows, and stock
  levels are the sum of their ledger;
- derived columns found by introspection are filled: ``sales_order.total`` (the sum of the
  line amounts, ``(quantity - qty_cancelled) × unit_price``) when the schema has it; a NOT
  NULL column the loader does not know stops it with its name, before anything is written;
- the order-number sequence and every id sequence continue after the loaded rows;
- the indexes of ``sales_order`` and ``order_line`` that back no constraint are dropped while
  the rows go in and made again from their own definitions afterwards (so whatever the
  migrations declare is there at the end, built once).

Not made: shipment, invoice, check and audit records of the history (the read paths do not
read them). ``--force`` drops everything in the database's ``public`` schema first; without
it a database that already holds customers, products or orders is refused.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, inspect, text

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "orderbridge-bench"
START = date(2019, 1, 1)
# the columns the loader writes; any other NOT NULL column without a server default stops it
FILLED = {
    "sales_order": {
        "id", "number", "customer_id", "customer_po", "order_date", "requested_date",
        "promised_date", "ship_to_id", "payment_term_id", "incoterm", "currency", "status",
        "hold_reasons", "source", "revision", "created_at", "updated_at", "version",
    },
    "order_line": {
        "id", "order_id", "line_no", "product_id", "quantity", "unit_price", "list_price",
        "discount_pct", "qty_allocated", "qty_backordered", "qty_shipped", "qty_delivered",
        "qty_cancelled", "qty_returned", "version",
    },
}  # fmt: skip
# derived columns filled when the schema has them: column -> SQL over the staged lines
DERIVED = {
    "sales_order": {"total": "coalesce(t.total, 0)"},
}
BUSINESS_TABLES = ("customer", "product", "sales_order")

STATUS_BY_AGE = """
CASE
  WHEN age > 90 THEN CASE
    WHEN r < .60 THEN 'closed' WHEN r < .85 THEN 'invoiced' WHEN r < .93 THEN 'cancelled'
    WHEN r < .98 THEN 'delivered' ELSE 'shipped' END
  WHEN age > 30 THEN CASE
    WHEN r < .05 THEN 'closed' WHEN r < .40 THEN 'invoiced' WHEN r < .65 THEN 'delivered'
    WHEN r < .85 THEN 'shipped' WHEN r < .90 THEN 'cancelled' WHEN r < .95 THEN 'allocated'
    ELSE 'confirmed' END
  ELSE CASE
    WHEN r < .10 THEN 'quote' WHEN r < .25 THEN 'draft' WHEN r < .33 THEN 'on_hold'
    WHEN r < .50 THEN 'confirmed' WHEN r < .70 THEN 'allocated'
    WHEN r < .75 THEN 'partially_shipped' WHEN r < .92 THEN 'shipped'
    WHEN r < .95 THEN 'delivered' ELSE 'cancelled' END
END"""

FAMILIES = """(VALUES
  (0, 'BOLT', 'Hex bolt M%s zinc', 'box', 50, 0.18, 'Fasteners'),
  (1, 'NUT', 'Lock nut M%s', 'box', 100, 0.07, 'Fasteners'),
  (2, 'WSH', 'Flat washer %s mm', 'box', 200, 0.03, 'Fasteners'),
  (3, 'CBL', 'Cable tie %s0 mm black', 'bag', 100, 0.05, 'Electrical'),
  (4, 'GLV', 'Nitrile gloves size %s', 'pack', 10, 4.90, 'Safety'),
  (5, 'TAP', 'Duct tape %s0 m', 'roll', 6, 7.40, 'Packaging'),
  (6, 'BRG', 'Ball bearing 6%s0', 'ea', 1, 12.50, 'Bearings'),
  (7, 'FLT', 'Air filter F%s', 'ea', 1, 23.00, 'Filters')
) AS f(k, prefix, name, unit, pack, price, category)"""

# the price of a quantity: the customer's list (1 Standard, 2 Wholesale) and its break
PCT = (
    "CASE WHEN {pl} = 2 THEN (CASE WHEN {q} >= {pack} * 20 THEN 15 ELSE 8 END)"
    " ELSE (CASE WHEN {q} >= {pack} * 20 THEN 5 ELSE 0 END) END"
)
PRICE = "round({list} * (100 - {pct}) / 100, 2)"
LINE_PRICE = PRICE.format(
    list="p.list_price",
    pct=PCT.format(pl="c.price_list_id", q="l.packs * p.pack_size", pack="p.pack_size"),
)

MASTER_DATA = [
    """INSERT INTO payment_term (id, code, name, days) VALUES
       (1, 'DUE', 'Due on receipt', 0), (2, 'NET30', 'Net 30', 30),
       (3, 'NET45', 'Net 45', 45), (4, 'NET60', 'Net 60', 60)""",
    """INSERT INTO price_list (id, name, currency) VALUES
       (1, 'Standard', 'USD'), (2, 'Wholesale', 'USD')""",
    """INSERT INTO warehouse (id, code, name, priority, active, version) VALUES
       (1, 'RTM', 'Rotterdam DC', 1, true, 1), (2, 'HAM', 'Hamburg overflow', 2, true, 1),
       (3, 'CHI', 'Chicago DC', 3, true, 1)""",
    f"""INSERT INTO product (id, sku, name, unit, pack_size, list_price, lead_time_days,
                            active, category, version)
       SELECT i, f.prefix || '-' || lpad(i::text, 6, '0'),
              format(f.name, 4 + (i / 8) % 40) || ' #' || i, f.unit, f.pack,
              round(f.price * (1 + ((i / 8) % 40) / 20.0), 2),
              (ARRAY[2, 3, 5, 7, 14])[1 + i % 5], i % 50 <> 0, f.category, 1
       FROM generate_series(1, :products) i JOIN {FAMILIES} ON f.k = i % 8""",
    f"""INSERT INTO price_list_item (price_list_id, product_id, min_quantity, unit_price)
       SELECT pl, p.id, b.q * CASE WHEN b.q = 1 THEN 1 ELSE p.pack_size END,
              {PRICE.format(list="p.list_price", pct=PCT.format(pl="pl", q="b.q", pack="1"))}
       FROM product p, generate_series(1, 2) pl, (VALUES (1), (20)) b(q)
       ORDER BY p.id, pl, b.q""",
    """INSERT INTO customer (id, code, name, email, phone, credit_limit, credit_hold, active,
                            currency, payment_term_id, price_list_id, segment, region,
                            created_at, version)
       SELECT i, 'C' || lpad(i::text, 5, '0'),
              (ARRAY['Atlas', 'Beacon', 'Cobalt', 'Delta', 'Evergreen', 'Falcon', 'Granite',
                     'Harbor', 'Ironwood', 'Juniper'])[1 + i % 10] || ' ' ||
              (ARRAY['Supply', 'Industrial', 'Logistics', 'Maintenance', 'Engineering'])
                [1 + (i / 10) % 5] || ' ' || lpad(i::text, 5, '0'),
              'orders@c' || lpad(i::text, 5, '0') || '.example', '+1 555 ' || lpad(i::text, 4, '0'),
              (ARRAY[5000, 10000, 25000, 50000, 100000, 250000])[1 + i % 6] * 10,
              i % 97 = 0, i % 113 <> 0, 'USD', 2 + i % 3, CASE WHEN i % 3 = 0 THEN 2 ELSE 1 END,
              (ARRAY['Consumer', 'Corporate', 'Home Office'])[1 + i % 3],
              (ARRAY['North', 'South', 'East', 'West', 'Central'])[1 + i % 5],
              timestamptz '2018-06-01 00:00+00' + i * interval '1 hour', 1
       FROM generate_series(1, :customers) i""",
    """INSERT INTO customer_address (id, customer_id, label, line1, city, region, postal_code,
                                    country, is_default_ship_to)
       SELECT CASE WHEN n = 1 THEN i ELSE :customers + i END, i,
              CASE WHEN n = 1 THEN 'Main warehouse' ELSE 'Second site' END,
              (1 + (i * 7 + n) % 400) || ' Harbour Road', c.city, NULL, c.postal, c.country,
              n = 1
       FROM generate_series(1, :customers) i, generate_series(1, 2) n,
            LATERAL (SELECT * FROM (VALUES
              (0, 'Rotterdam', '3011', 'NL'), (1, 'Hamburg', '20095', 'DE'),
              (2, 'Lyon', '69001', 'FR'), (3, 'Leeds', 'LS1 4AP', 'GB'),
              (4, 'Milan', '20121', 'IT'), (5, 'Chicago', '60601', 'US'),
              (6, 'Toronto', 'M5H 2N2', 'CA')) AS v(k, city, postal, country)
              WHERE v.k = (i + n) % 7) c
       WHERE n = 1 OR i % 4 = 0""",
    """INSERT INTO customer_contact (id, customer_id, name, email, role, receives_notifications)
       SELECT i, i, 'Buyer ' || i, 'buyer' || i || '@c' || lpad(i::text, 5, '0') || '.example',
              'Purchasing', true
       FROM generate_series(1, :customers) i""",
]

STAGE = [
    # one row per order: customer, date, status by age, number of lines
    f"""CREATE TEMP TABLE stage_order ON COMMIT PRESERVE ROWS AS
       SELECT i AS id, customer_id, order_date, age,
              CASE WHEN status = 'partially_shipped' AND nlines = 1 THEN 2 ELSE nlines END
                AS nlines,
              status
       FROM (SELECT i, customer_id, order_date, age, nlines, {STATUS_BY_AGE} AS status
             FROM (SELECT i, 1 + floor(random() * :customers)::int AS customer_id,
                          :start + d AS order_date, :today - :start - d AS age,
                          random() AS r, 1 + floor(random() * 9)::int AS nlines
                   FROM (SELECT i, floor(random() * (:today - :start + 1))::int AS d
                         FROM generate_series(1, :orders) i) g) s) t""",
    # one row per line: a random active product, whole packs, the customer's price
    f"""CREATE TEMP TABLE stage_line ON COMMIT PRESERVE ROWS AS
       SELECT l.order_id, l.line_no, p.id AS product_id, l.packs * p.pack_size AS quantity,
              {LINE_PRICE} AS unit_price,
              p.list_price, l.status, l.nlines
       FROM (SELECT o.id AS order_id, k AS line_no, o.status, o.nlines, o.customer_id,
                    1 + floor(power(random(), 2) * 30)::int AS packs,
                    1 + floor(random() * :products)::int AS pick
             FROM stage_order o CROSS JOIN LATERAL generate_series(1, o.nlines) k) l
       JOIN product p ON p.id = CASE WHEN l.pick % 50 = 0 THEN l.pick - 1 ELSE l.pick END
       JOIN customer c ON c.id = l.customer_id""",
    """ALTER TABLE stage_line ADD COLUMN qty_allocated int, ADD COLUMN qty_shipped int,
           ADD COLUMN qty_delivered int, ADD COLUMN qty_cancelled int""",
    # fulfilment quantities by the order's status (a partly shipped order: its first half)
    """UPDATE stage_line SET
         qty_allocated = CASE WHEN status = 'allocated'
                                OR (status = 'partially_shipped' AND line_no > nlines / 2)
                              THEN quantity ELSE 0 END,
         qty_shipped = CASE WHEN status IN ('shipped', 'delivered', 'invoiced', 'closed')
                              OR (status = 'partially_shipped' AND line_no <= nlines / 2)
                            THEN quantity ELSE 0 END,
         qty_delivered = CASE WHEN status IN ('delivered', 'invoiced', 'closed')
                              THEN quantity ELSE 0 END,
         qty_cancelled = CASE WHEN status = 'cancelled' THEN quantity ELSE 0 END""",
]

ORDERS = """
INSERT INTO sales_order ({columns})
SELECT {values}
FROM stage_order o
JOIN customer c ON c.id = o.customer_id
LEFT JOIN (SELECT order_id,
                  sum(round((quantity - qty_cancelled) * unit_price, 2)) AS total
           FROM stage_line GROUP BY order_id) t ON t.order_id = o.id
ORDER BY o.id"""

ORDER_VALUES = {
    "id": "o.id",
    "number": "'SO-' || lpad(o.id::text, greatest(6, length(o.id::text)), '0')",
    "customer_id": "o.customer_id",
    "customer_po": "'PO-' || o.customer_id || '-' || o.id",
    "order_date": "o.order_date",
    "requested_date": "o.order_date + 7 + (o.id % 30)",
    "promised_date": "CASE WHEN o.status IN ('quote', 'draft', 'on_hold') THEN NULL "
    "ELSE o.order_date + 7 + (o.id % 30) END",
    "ship_to_id": "o.customer_id",
    "payment_term_id": "c.payment_term_id",
    "incoterm": "(ARRAY['EXW', 'FCA', 'DAP', 'DDP', 'FOB', 'CIF'])[1 + o.id % 6]",
    "currency": "'USD'",
    "status": "o.status",
    "hold_reasons": "CASE WHEN o.status = 'on_hold' THEN "
    "'credit_exposure: exposure above the credit limit' END",
    "source": "'bench'",
    "revision": "0",
    "created_at": "(o.order_date + time '08:00' + (o.id % 600) * interval '1 minute') "
    "AT TIME ZONE 'UTC'",
    "updated_at": "(o.order_date + time '08:00' + (o.id % 600) * interval '1 minute' "
    "+ least(o.age, 20) * interval '1 day') AT TIME ZONE 'UTC'",
    "version": "1",
}

LINES = """
INSERT INTO order_line (order_id, line_no, product_id, quantity, unit_price, list_price,
                        discount_pct, qty_allocated, qty_backordered, qty_shipped,
                        qty_delivered, qty_cancelled, qty_returned, version)
SELECT order_id, line_no, product_id, quantity, unit_price, list_price, 0, qty_allocated, 0,
       qty_shipped, qty_delivered, qty_cancelled, 0, 1
FROM stage_line ORDER BY order_id, line_no"""

STOCK = [
    """INSERT INTO allocation (order_line_id, warehouse_id, quantity, created_at)
       SELECT l.id, 1, l.qty_allocated, so.updated_at
       FROM order_line l JOIN sales_order so ON so.id = l.order_id
       WHERE l.qty_allocated > 0""",
    """INSERT INTO stock_level (product_id, warehouse_id, on_hand, allocated, reorder_point,
                               version)
       SELECT p.id, w.id, coalesce(a.units, 0) + p.pack_size * (50 + (p.id * w.id) % 500),
              coalesce(a.units, 0), p.pack_size * 20, 1
       FROM product p CROSS JOIN warehouse w
       LEFT JOIN (SELECT l.product_id, a.warehouse_id, sum(a.quantity) AS units
                  FROM allocation a JOIN order_line l ON l.id = a.order_line_id
                  GROUP BY l.product_id, a.warehouse_id) a
         ON a.product_id = p.id AND a.warehouse_id = w.id
       ORDER BY p.id, w.id""",
    """INSERT INTO inventory_movement (occurred_at, kind, product_id, warehouse_id,
                                      on_hand_delta, allocated_delta, reference, actor)
       SELECT timestamptz '2019-01-01 00:00+00', 'receipt', product_id, warehouse_id, on_hand,
              0, 'opening balance', 'system:bench-load'
       FROM stock_level
       UNION ALL
       SELECT now(), 'allocation', product_id, warehouse_id, 0, allocated, 'open orders',
              'system:bench-load'
       FROM stock_level WHERE allocated > 0""",
]

SEQUENCED = (
    "payment_term", "price_list", "price_list_item", "warehouse", "product", "customer",
    "customer_address", "customer_contact", "sales_order", "order_line", "allocation",
    "stock_level", "inventory_movement",
)  # fmt: skip


class LoadError(Exception):
    """The database cannot be loaded as asked (the message says why)."""


def required_columns(conn: Connection, table: str) -> set[str]:
    """NOT NULL columns of ``table`` without a server default (introspected)."""
    return {
        column["name"]
        for column in inspect(conn).get_columns(table)
        if not column["nullable"] and column.get("default") is None
    }


def order_columns(conn: Connection) -> dict[str, str]:
    """The ``sales_order`` columns to write, with their SQL: known and derived ones that the
    schema has; a NOT NULL column the loader cannot fill raises :class:`LoadError`."""
    present = {column["name"] for column in inspect(conn).get_columns("sales_order")}
    values = {name: sql for name, sql in ORDER_VALUES.items() if name in present}
    values |= {name: sql for name, sql in DERIVED["sales_order"].items() if name in present}
    for table, filled in FILLED.items():
        unknown = required_columns(conn, table) - filled - DERIVED.get(table, {}).keys()
        if unknown:
            raise LoadError(
                f"{table} has NOT NULL columns the loader does not fill: "
                f"{', '.join(sorted(unknown))} (teach bench/load.py how to derive them)"
            )
    return values


def fill(
    conn: Connection,
    orders: int,
    customers: int = 2000,
    products: int = 5000,
    today: date | None = None,
    seed: float = 0.42,
    report: Callable[[str], None] = lambda line: None,
) -> dict[str, int]:
    """Fill the business tables of ``conn``'s database (PostgreSQL, empty) set-based.

    The caller commits. Returns the number of rows per table.
    """
    if conn.dialect.name != "postgresql":
        raise LoadError("bench/load.py fills PostgreSQL only (generate_series, temp tables)")
    for table in BUSINESS_TABLES:
        if conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table})")).scalar():
            raise LoadError(f"{table} already has rows: load into an empty database (--force)")
    values = order_columns(conn)
    params = {
        "orders": orders,
        "customers": customers,
        "products": products,
        "start": START,
        "today": today or date.today(),
    }
    conn.execute(text("SELECT setseed(:seed)"), {"seed": seed})
    conn.execute(text("SET LOCAL work_mem = '256MB'"))
    conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
    indexes = secondary_indexes(conn, ("sales_order", "order_line"))

    def step(label: str, statements: list[str]) -> None:
        began = time.perf_counter()
        for statement in statements:
            conn.execute(text(statement), params)
        report(f"{label}: {time.perf_counter() - began:.1f} s")

    step("master data", MASTER_DATA)
    step("staged orders and lines", STAGE)
    step(f"dropped {len(indexes)} indexes", [f'DROP INDEX "{name}"' for name in indexes])
    step(
        "orders",
        [ORDERS.format(columns=", ".join(values), values=", ".join(values.values()))],
    )
    step("lines", [LINES])
    step("indexes made again", list(indexes.values()))
    step("allocations, stock, ledger", STOCK)
    step("sequences", [_setval(table) for table in SEQUENCED] + [_order_numbers()])
    conn.execute(text("DROP TABLE stage_line"))
    conn.execute(text("DROP TABLE stage_order"))
    return {
        table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        for table in ("customer", "customer_address", "product", "sales_order", "order_line")
    }


def secondary_indexes(conn: Connection, tables: tuple[str, ...]) -> dict[str, str]:
    """The indexes of ``tables`` that back no constraint, by name, with their definitions:
    dropped while the rows go in and made again after, which is several times faster than
    keeping them up to date row by row (whatever indexes the migrations declare)."""
    rows = conn.execute(
        text(
            """SELECT i.indexname, i.indexdef FROM pg_indexes i
               WHERE i.schemaname = current_schema() AND i.tablename = ANY(:tables)
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                 JOIN pg_namespace n ON n.oid = c.connamespace
                                 WHERE n.nspname = current_schema()
                                   AND c.conname = i.indexname)
               ORDER BY i.indexname"""
        ),
        {"tables": list(tables)},
    ).all()
    return {name: definition for name, definition in rows}


def _setval(table: str) -> str:
    return (
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
        f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
    )


def _order_numbers() -> str:
    from portal.services.numbering import sequence_name

    return f"SELECT setval('{sequence_name('sales_order')}', :orders + 1, false)"


def _prepare(url: str, force: bool) -> None:
    """Drop the ``public`` schema (``--force``), migrate, seed roles and the bench users."""
    from flask_migrate import upgrade
    from sqlalchemy import create_engine

    from portal import create_app
    from portal.demo import ensure_users
    from portal.extensions import appbuilder, db
    from portal.security import sync_roles

    if force:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    app = create_app()  # with its views: the roles' permissions name them
    with app.app_context():
        upgrade()
        sync_roles(appbuilder)
        for line in ensure_users(PASSWORD):
            print(line)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--force", action="store_true", help="drop everything in it first")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("give --database-url (or DATABASE_URL) of a PostgreSQL database")
    sys.path.insert(0, str(REPO))
    from sqlalchemy import create_engine

    from config import normalise_database_url

    url = normalise_database_url(args.database_url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("ORDERBRIDGE_MODE", "demo")
    began = time.perf_counter()
    _prepare(url, args.force)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            counts = fill(conn, args.orders, args.customers, args.products, report=print)
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            step_began = time.perf_counter()
            conn.execute(text("VACUUM (ANALYZE)"))
            print(f"vacuum analyze: {time.perf_counter() - step_began:.1f} s")
    except LoadError as error:
        sys.exit(f"bench/load.py: {error}")
    finally:
        engine.dispose()
    print(", ".join(f"{table} {count:,}" for table, count in counts.items()))
    print(f"loaded in {time.perf_counter() - began:.0f} s; users specialist, supervisor, "
          f"auditor, admin with the password {PASSWORD!r}")  # fmt: skip


if __name__ == "__main__":
    main()
