"""The home page per role (issue 14): what each role sees, in a bounded number of queries.

The Specialist sees their own orders needing attention with every reason and the holds to fix;
the Supervisor the credits, returns and holds waiting and the open sync conflicts; the Auditor
the exports and the last verification; the Admin jobs, queues and failed jobs with Retry. The
number of queries a role's home page runs does not grow with the number of records.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import event

from portal.extensions import appbuilder, db
from portal.models import AuditEvent, SalesOrder, SyncRun, utcnow
from portal.services import catalog, credits, lifecycle, orders, price_overrides, returns, trackers
from portal.services.base import unit_of_work
from tests.conftest import actor, login
from tests.factories import SETUP, Catalog, make_catalog
from tests.test_finance import issued_invoice, shipped_order

ROLES = ("specialist", "supervisor", "auditor", "admin")


@contextmanager
def counted() -> Iterator[list[str]]:
    """The SQL statements run inside the block."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _held_order(data: Catalog, who: str) -> SalesOrder:
    """An order ``who`` entered for 1 unit of a product packed in fives: on hold."""
    boxed = data.products[2]
    if boxed.pack_size != 5:
        catalog.products.update(boxed, {"pack_size": 5}, SETUP)
    order = orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "customer_po": f"PO-{utcnow().timestamp()}",
            "requested_date": utcnow().date() + timedelta(days=30),
            "ship_to_id": data.customer.addresses[0].id,
        },
        [{"product_id": boxed.id, "quantity": 1}],
        actor(who),
    )
    return lifecycle.confirm(order, actor(who))


def _more_work(data: Catalog) -> None:
    """One more of everything a home page lists."""
    _held_order(data, "specialist")
    invoice = issued_invoice((1, 7), data=data)
    credits.request_credit(invoice, actor("specialist"), reason_code="damaged", amount="2.00")
    order, _ = shipped_order(data, (2,))
    returns.request_return(
        order, actor("specialist"), lines={order.lines[0].id: 1}, reason="dented", warehouse_id=1
    )


def _home(client) -> tuple[str, int]:
    with counted() as statements:
        page = client.get("/")
    assert page.status_code == 200
    return page.text, len(statements)


def test_each_role_sees_its_work(clean_db) -> None:
    data = make_catalog(stock=500)
    mine = _held_order(data, "specialist")
    theirs = _held_order(data, "specialist2")
    _more_work(data)
    specialist = login(clean_db, "specialist").get("/").text
    section = specialist[
        specialist.index('id="home-attention"') : specialist.index('id="home-holds"')
    ]
    assert mine.number in section and theirs.number not in section
    assert "on hold: " in section and "pack" in section  # the check that failed
    assert 'id="home-approvals"' not in specialist
    supervisor = login(clean_db, "supervisor").get("/").text
    approvals = supervisor[supervisor.index('id="home-approvals"') :]
    assert re.search(r"Credits \(1\)", approvals) and "USD 2.00" in approvals
    assert re.search(r"Returns to authorize \(1\)", approvals) and "dented" in approvals
    assert re.search(r"Orders on hold \(3\)", approvals)
    assert "Quantities in whole packs: " in approvals and "pack_size:" not in approvals
    assert 'id="home-conflicts"' in supervisor and 'id="home-attention"' not in supervisor
    auditor = login(clean_db, "auditor").get("/").text
    assert 'id="home-verification"' in auditor and 'id="home-exports"' in auditor
    assert 'id="home-approvals"' not in auditor
    admin = login(clean_db, "admin").get("/").text
    assert 'id="home-jobs"' in admin and 'id="home-failed-jobs"' in admin


def test_every_home_page_runs_the_same_queries_however_much_work_waits(clean_db) -> None:
    data = make_catalog(stock=500)
    _more_work(data)
    clients = {role: login(clean_db, role) for role in ROLES}
    before = {role: _home(client)[1] for role, client in clients.items()}
    for _ in range(3):
        _more_work(data)
    after = {role: _home(client)[1] for role, client in clients.items()}
    assert after == before
    assert max(after.values()) <= 40, after


def test_a_supervisor_is_never_offered_their_own_return(clean_db) -> None:
    data = make_catalog(stock=500)
    order, _ = shipped_order(data, (2,))
    own = returns.request_return(
        order, actor("supervisor"), lines={order.lines[0].id: 1}, reason="mine", warehouse_id=1
    )
    page = login(clean_db, "supervisor").get("/").text
    assert own.number not in page and "Returns to authorize (0)" in page
    assert own.number in login(clean_db, "supervisor2").get("/").text


def test_an_admin_retries_a_failed_job_from_home(clean_db) -> None:
    from rq import Queue, SimpleWorker

    from jobs.queue import connection

    queue = Queue("reports", connection=connection())
    job = queue.enqueue("builtins.len", args=(None,))  # a real failure, by a real worker
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    try:
        assert job.id in queue.failed_job_registry
        page = login(clean_db, "admin").get("/").text
        assert f'id="retry-{job.id}"' in page and "TypeError" in page
        refused = login(clean_db, "specialist").post(f"/failed-jobs/retry/{job.id}")
        assert refused.status_code in (302, 403) and job.id in queue.failed_job_registry
        answer = login(clean_db, "admin").post(f"/failed-jobs/retry/{job.id}")
        assert answer.status_code == 302
        assert job.id not in queue.failed_job_registry and job.id in queue.job_ids
        retried = db.session.query(AuditEvent).filter_by(action="retry").one()
        assert retried.actor == "admin" and job.id in retried.changes
    finally:
        queue.failed_job_registry.remove(job.id)
        queue.empty()


def test_pending_credit_shows_its_customer_invoice_balance_and_age(clean_db) -> None:
    invoice = issued_invoice((1, 7))
    credits.request_credit(invoice, actor("specialist"), reason_code="damaged", amount="3.00")
    page = login(clean_db, "supervisor").get("/creditapprovalview/list/").text
    assert "Acme Ltd" in page and str(invoice) in page
    assert f"{invoice.balance:,.2f}" in page and "Damaged goods" in page
    assert Decimal("3.00") == credits.pending_amount(invoice.id)


def test_a_supervisor_sees_price_requests_others_made(clean_db) -> None:
    data = make_catalog(stock=500)
    held = _held_order(data, "specialist")
    price_overrides.request_price(
        held.lines[0], actor("specialist"), Decimal("1.00"), "matching a competitor's offer"
    )
    page = login(clean_db, "supervisor").get("/").text
    section = page[page.index('id="home-price-requests"') :]
    assert re.search(r"Price requests \(1\)", section)
    assert held.number in section and "matching a competitor" in section
    assert "USD 1.00" in section
    own = login(clean_db, "specialist").get("/").text
    assert 'id="home-price-requests"' not in own


def test_a_specialist_sees_sync_errors_only_on_their_trackers(clean_db, tmp_path) -> None:
    owner = appbuilder.sm.find_user("specialist")
    mine, other = (
        trackers.trackers.create(
            {
                "name": name,
                "kind": "orders",
                "location": str(tmp_path / f"{name}.xlsx"),
                "tab": "Orders",
                "owner_id": owner_id,
            },
            actor("admin"),
        )
        for name, owner_id in (("mine-tracker", owner.id), ("other-tracker", None))
    )
    for tracker in (mine, other):
        run = trackers.start_run(tracker.id, f"job-{tracker.name}")
        with unit_of_work():
            db.session.get(SyncRun, run.id).status = "succeeded"
            db.session.get(SyncRun, run.id).errors = 2
    page = login(clean_db, "specialist").get("/").text
    assert "mine-tracker" in page and "other-tracker" not in page
