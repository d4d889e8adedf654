"""Benchmark a sync from inside Excel: a 20,000-row workbook posted with 200 changes.

Run: .venv/bin/python bench/sync_xlwings.py [--rows 20000] [--changes 100] [--rounds 3]

Setup (not timed): a throw-away instance (SQLite, embedded Valkey) built by migrations, the
roles and one Specialist, a catalog made through the services, then ``--rows`` orders with
one line each inserted in bulk with SQL (``bench/sync_xlsx.py``'s setup, the only bypass of
the services). The tracker is the orders preset with the ``xlwings`` backend, owned by the
Specialist; its tab as a new tracker workbook has it is posted once (stores the base).

Timed, ``--rounds`` times: ``--changes`` rows edited in the sheet (Customer PO) and
``--changes`` orders changed in the portal (notes, through the services), then the workbook
posted as the Office.js client posts it (JSON text, dates as ISO text) through the Flask
endpoint as the Specialist (a personal API token): parse, ``xw.Book(json=...)``, read,
merge, apply the edits through the services, the run stored, the actions answered. Then a
post with no change on either side. Printed: the server time of each, the payload's size and
the answer's size (and the size of an answer that rewrote the whole tab, for scale).

Last, the write step alone, interleaved three times on the same workbook: the 200 changed
cells as ``XlwingsBackend.write`` sends them (one raw ``setValues`` action per run) against
xlwings' ``Range.value`` setter (which copies the whole tab for every range it writes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PASSWORD = "bench-password-1234"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            ORDERBRIDGE_MODE="test",
            ORDERBRIDGE_INSTANCE_DIR=tmp,
            DATABASE_URL=f"sqlite:///{tmp}/bench.db",
            XLWINGS_LICENSE_KEY=os.environ.get("XLWINGS_LICENSE_KEY") or "noncommercial",
        )
        os.environ.pop("REDIS_URL", None)
        from portal import create_app

        app = create_app(
            {"WTF_CSRF_ENABLED": False, "WRITE_RATE_LIMIT": "", "WRITE_IP_RATE_LIMIT": ""}
        )
        with app.app_context():
            try:
                run(app, args.rows, args.changes, args.rounds)
            finally:
                from jobs.queue import stop_embedded_server

                stop_embedded_server()


def _setup(app, rows: int):
    from flask_migrate import upgrade

    from bench.sync_xlsx import _bulk_orders
    from portal.extensions import appbuilder, db
    from portal.security import sync_roles
    from portal.services import trackers
    from portal.services.base import Actor
    from tests.factories import make_catalog

    upgrade()
    sync_roles(appbuilder)
    user = appbuilder.sm.add_user(
        "bench", "Bench", "User", "bench@example.test", appbuilder.sm.find_role("Specialist"),
        password=PASSWORD,
    )  # fmt: skip
    db.session.commit()
    cat = make_catalog(stock=0)
    _bulk_orders(rows, cat.customer.id, cat.products[0].id)
    return trackers.trackers.create(
        {"name": "bench-excel", "kind": "orders", "backend": "xlwings", "location": "bench.xlsm",
         "tab": "Orders", "owner_id": user.id},
        Actor.system("system:bench"),
    )  # fmt: skip


def run(app, rows: int, changes: int, rounds: int) -> None:
    from portal.extensions import db
    from portal.models import SalesOrder
    from portal.services import orders
    from portal.services.base import Actor
    from portal.sync.adapters import new_workbook_rows
    from tests.xlwings_clients import apply, body

    t0 = time.perf_counter()
    tracker = _setup(app, rows)
    spec = tracker.spec()
    grid = [list(spec.headers), *new_workbook_rows(spec, None)]
    client = app.test_client()
    from portal.actors import actor_for_user
    from portal.extensions import appbuilder
    from portal.services import api_tokens

    specialist = actor_for_user(appbuilder.sm.find_user(username="bench"), "bench")
    token = api_tokens.create(specialist, "bench").plaintext
    headers = {"Authorization": f"Bearer {token}"}

    def post(grid: list[list[object]]) -> tuple[float, int, dict]:
        text = body("officejs", {"Orders": grid})
        start = time.perf_counter()
        answer = client.post(
            "/xlwings/sync/bench-excel",
            data=text,
            content_type="application/json",
            headers=headers,
        )
        seconds = time.perf_counter() - start
        assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
        return seconds, len(text.encode()), json.loads(answer.get_data())

    first, size, answer = post(grid)
    grid = apply(answer, grid)
    whole = len(json.dumps({"actions": [{"func": "setValues", "values": grid[1:]}]}, default=str))
    print(
        f"setup {time.perf_counter() - t0:.1f} s: {rows} orders, tracker {len(spec.headers)} "
        f"columns; payload {size / 1e6:.2f} MB; first sync (stores the base) {first:.2f} s"
    )
    po_col = spec.headers.index("Customer PO")
    bench_actor = Actor.system("system:bench")
    rng = random.Random(5)
    timings, answers = [], []
    for n in range(rounds):
        picked = rng.sample(range(1, rows + 1), 2 * changes)
        for r in picked[:changes]:
            grid[r][po_col] = f"EDITED-{n}-{r}"
        for r in picked[changes:]:
            order = db.session.query(SalesOrder).filter_by(number=grid[r][0]).one()
            orders.orders.update(order, {"notes": f"portal change {n}-{r}"}, bench_actor)
        db.session.commit()
        seconds, size, answer = post(grid)
        written = sum(len(a["values"]) * len(a["values"][0]) for a in answer["actions"])
        assert written == changes, written  # the portal's notes; the sheet's edits need none
        grid = apply(answer, grid)
        timings.append(seconds)
        answers.append(len(json.dumps(answer)))
        print(
            f"round {n + 1}: {changes} sheet edits + {changes} portal changes: {seconds:.2f} s, "
            f"answer {answers[-1] / 1e3:.1f} kB ({len(answer['actions'])} actions)"
        )
    idle, _, quiet = post(grid)
    assert quiet["actions"] == [], quiet["actions"][:3]
    print(f"sync, {2 * changes} changes (median of {rounds}): {statistics.median(timings):.2f} s")
    print(f"sync, no change:                        {idle:.2f} s")
    print(
        f"payload {size / 1e6:.2f} MB; answer {statistics.median(answers) / 1e3:.1f} kB "
        f"({statistics.median(answers) / size:.2%} of the payload); a whole-tab rewrite "
        f"would be {whole / 1e6:.2f} MB"
    )
    compare_writes(grid, changes)


def compare_writes(grid: list[list[object]], changes: int) -> None:
    """The write step: raw setValues actions (the backend) vs ``Range.value``, interleaved."""
    from sheets.backends.xlwings import XlwingsBackend, remote_book
    from sheets.grid import CellWrite, cell_blocks
    from tests.xlwings_clients import payload

    rng = random.Random(9)
    rows = rng.sample(range(2, len(grid) + 1), 2 * changes)
    writes = [CellWrite(r, 3 + (i % 2) * 5, f"W{i}") for i, r in enumerate(rows)]
    data = json.dumps(payload("officejs", {"Orders": grid}))
    key = os.environ["XLWINGS_LICENSE_KEY"]
    for n in range(3):
        for mode in ("backend", "Range.value"):
            book = remote_book(json.loads(data), key)
            backend = XlwingsBackend(book, "Orders")
            start = time.perf_counter()
            if mode == "backend":
                backend.write(writes, backend.read())
            else:
                sheet = book.sheets["Orders"]
                for b in cell_blocks({(w.row, w.col): w.value for w in writes}):
                    end = (b.row + len(b.values) - 1, b.col + b.width - 1)
                    sheet.range((b.row, b.col), end).value = b.values
            seconds = time.perf_counter() - start
            print(f"write of {len(writes)} cells, pass {n + 1}, {mode:11}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
