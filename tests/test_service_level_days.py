"""Kept service-level days: the same figures as the live computation, stale days when their
records change, and the periodic job's lock.

The orders are those of ``tests/test_service_levels.py`` (hand-built through the services,
placed on a Monday three weeks back); each test compares figures read with kept days against
the same figures computed live (before anything was kept, or with the kept days dropped).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from portal.models import (
    SalesOrder,
    ServiceLevelDay,
    ServiceLevelDayFigure,
    ServiceLevelDayValue,
    Shipment,
    utcnow,
)
from portal.services import disputes, invoices, orders
from portal.services import service_levels as sl
from portal.services import service_levels_causes as causes
from portal.services import service_levels_days as days
from portal.services import service_levels_keep as keeping
from tests.conftest import actor
from tests.test_service_levels import at, build

KEYS = list(sl.METRICS)


def figures(weeks: int = 6, as_of: Any = None) -> dict[str, list]:
    """Every metric for the last ``weeks`` weeks up to the current one."""
    return days.weekly(KEYS, sl.week_of(utcnow().date()), weeks, as_of)


def live(weeks: int = 6, as_of: Any = None) -> dict[str, list]:
    """The same figures computed by ``service_levels.compute``, week by week."""
    this_week = sl.week_of(utcnow().date())
    mondays = [this_week.start - timedelta(days=7 * n) for n in reversed(range(weeks))]
    return {
        key: [
            (monday, sl.compute(key, sl.week_of(monday), as_of=as_of)[None]) for monday in mondays
        ]
        for key in KEYS
    }


def order(number: str) -> Any:
    from portal.extensions import db

    return db.session.execute(select(SalesOrder).where(SalesOrder.number == number)).scalar_one()


def stale_days() -> set:
    from portal.extensions import db

    query = select(ServiceLevelDay.day).where(ServiceLevelDay.stale.is_(True))
    return set(db.session.execute(query).scalars())


@pytest.fixture
def scenario(clean_db) -> dict[str, Any]:
    day = sl.week_of(utcnow().date() - timedelta(days=21)).start
    return {"day": day, "week": sl.week_of(day), **build(day)}


def test_kept_days_give_the_live_figures(scenario) -> None:
    from portal.extensions import db

    day = scenario["day"]
    later = sl.Period(day, day + timedelta(days=14))
    before = figures()
    assert before == live()  # nothing kept yet: every day is computed live
    bars = causes.pareto(later)
    assert len(bars) == 5
    kept = keeping.keep(actor("supervisor"))
    assert kept == len(keeping.pending()) + kept  # all done: nothing left to keep
    assert kept >= 7 * keeping.KEEP_WEEKS
    assert days.reading(day, utcnow().date()).kept == {
        day + timedelta(days=n) for n in range((utcnow().date() - day).days)
    }
    assert figures() == before
    assert figures(as_of=day + timedelta(days=4)) == live(as_of=day + timedelta(days=4))
    assert causes.pareto(later) == bars
    assert causes.pareto(sl.Period(day, day + timedelta(days=4))) == causes.pareto(
        sl.Period(day, day + timedelta(days=4)), as_of=day + timedelta(days=3)
    )
    # the figures do come from the kept rows: alter one and the trend follows it
    db.session.execute(
        update(ServiceLevelDayFigure)
        .where(ServiceLevelDayFigure.metric == "otif_order")
        .values(num=ServiceLevelDayFigure.num + 100)
    )
    db.session.execute(
        update(ServiceLevelDayValue)
        .where(ServiceLevelDayValue.metric == "cycle_time")
        .values(value=ServiceLevelDayValue.value + 10)
    )
    altered = figures()
    assert [f.num for _, f in altered["otif_order"]] != [f.num for _, f in before["otif_order"]]
    assert altered["cycle_time"] != before["cycle_time"]
    db.session.rollback()


def test_backorder_age_from_kept_days_is_as_of_the_day_asked(scenario) -> None:
    keeping.keep(actor("supervisor"))
    for as_of in (scenario["day"] + timedelta(days=5), utcnow().date()):
        kept = days.weekly(["backorder_age"], scenario["week"], 1, as_of)["backorder_age"]
        computed = sl.compute("backorder_age", scenario["week"], as_of=as_of)[None]
        assert kept[-1][1] == computed
        assert computed.median == (as_of - scenario["day"]).days


def test_a_change_to_an_old_record_marks_its_days_and_only_they_are_recomputed(
    scenario,
) -> None:
    from portal.extensions import db

    day = scenario["day"]
    keeping.keep(actor("supervisor"))
    assert stale_days() == set() and keeping.pending() == []
    before = figures()
    # C (due D+3) gets an invoice on D+7 and a dispute opened D+8: C's days go stale
    c = order(scenario["c"])
    shipment = db.session.execute(select(Shipment).where(Shipment.order_id == c.id)).scalar_one()
    invoice = invoices.invoice_shipment(shipment, actor("specialist"), on=day + timedelta(days=7))
    disputes.open_dispute(
        invoice,
        actor("specialist"),
        dispute_type="shortage",
        amount="5.00",
        opened_at=at(day + timedelta(days=8)),
    )
    marked = stale_days()
    assert {day, day + timedelta(days=3), day + timedelta(days=7), day + timedelta(days=8)} <= (
        marked
    )
    changed = figures()
    assert changed == live()  # stale days are computed live meanwhile
    assert changed["disputes"] != before["disputes"]
    assert keeping.pending() == sorted(marked)
    assert keeping.keep(actor("supervisor")) == len(marked)
    assert stale_days() == set()
    assert figures() == changed


def test_a_bulk_update_marks_the_days_it_moves_from_and_to(scenario) -> None:
    from portal.extensions import db

    day = scenario["day"]
    quote = db.session.execute(select(SalesOrder).where(SalesOrder.status == "quote")).scalar_one()
    for promised in (day + timedelta(days=5), day + timedelta(days=6)):
        keeping.keep(actor("supervisor"))
        assert stale_days() == set()
        # update_many writes with one UPDATE … executemany (base.save_versioned), no flush
        errors = orders.orders.update_many(
            [(quote, {"promised_date": promised})], actor("specialist")
        )
        assert errors == [None]
    # promised D+5, then D+6: the day it left (no other date of the order) and the new one
    assert {day + timedelta(days=5), day + timedelta(days=6)} <= stale_days()
    assert figures() == live()
    keeping.keep(actor("supervisor"))
    assert figures() == live()


def test_the_keep_job_runs_once_at_a_time(scenario) -> None:
    from jobs import service_levels as job
    from jobs.queue import connection

    lock = connection().lock(job.KEEP_LOCK, timeout=60, thread_local=False)
    assert lock.acquire(blocking=False)
    try:
        assert job.keep_service_levels() is None  # another worker holds it
        assert keeping.pending() != []
    finally:
        lock.release()
    assert job.keep_service_levels() > 0
    assert keeping.pending() == []
    assert job.keep_service_levels() == 0
    assert not connection().exists(job.KEEP_LOCK)  # released after the run
    from jobs.schedule import PERIODIC

    assert PERIODIC["keep_service_levels"][1] == "reports"


def test_an_import_and_its_undo_mark_the_days_of_their_orders(clean_db, tmp_path) -> None:
    from datetime import date

    from portal.services import imports
    from portal.services.base import Actor
    from portal.services.imports_fields import preset_mapping
    from sheets.readers import read_table
    from tests.import_files import LINE_HEADERS, LINE_ROWS, write_xlsx

    cli = Actor.system("system:cli")
    path = write_xlsx(tmp_path / "orders.xlsx", LINE_HEADERS, LINE_ROWS)
    table = read_table(path)
    options = imports.ImportOptions(preset_mapping("superstore", table.headers))
    # the orders and lines go in with Core inserts (no flush): their order dates go stale
    run = imports.import_orders(path, table, cli, options)
    ordered = {date(2024, 1, 5), date(2024, 2, 10), date(2024, 3, 1)}
    assert ordered <= stale_days()
    assert keeping.keep(actor("supervisor"), days=ordered) == 3
    assert stale_days().isdisjoint(ordered)
    imports.undo(run.run_id, cli)  # Core deletes: the days they leave go stale
    assert ordered <= stale_days()
