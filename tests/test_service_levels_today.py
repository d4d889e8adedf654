"""Today's kept service levels and the page's provisional reading: today read from its kept
sums whatever their age (with their time; late once changed since and too old); a change
today kept by the next run; closed days that changed read from their last kept sums (with a
note) until the job keeps them again.

The orders are those of ``tests/test_service_levels.py`` placed a week back (their last
events yesterday), plus an invoice and a dispute of today; each test compares the figures of
a provisional reading with those of an exact one (today and changed days computed live).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from sqlalchemy import select, update

from portal.models import (
    Invoice,
    SalesOrder,
    ServiceLevelDay,
    ServiceLevelDayFigure,
    Shipment,
    utcnow,
)
from portal.services import disputes, invoices
from portal.services import service_levels as sl
from portal.services import service_levels_days as days
from portal.services import service_levels_keep as keeping
from portal.services.service_level_targets import page
from tests.conftest import actor, login
from tests.test_service_levels import at, build

KEYS = list(sl.METRICS)
JOB = "job:test"


def week() -> sl.Period:
    return sl.week_of(utcnow().date())


def read(provisional: bool) -> days.Reading:
    trend = days.span(week(), 2)
    return days.reading(trend.start, trend.end, provisional=provisional)


def figures(provisional: bool = True) -> dict[str, list]:
    """Every metric for this week and the last, read provisionally or exactly."""
    return days.weekly(KEYS, week(), 2, read=read(provisional))


def shipment(number: str) -> Shipment:
    from portal.extensions import db

    order = db.session.execute(select(SalesOrder).where(SalesOrder.number == number)).scalar_one()
    return db.session.execute(select(Shipment).where(Shipment.order_id == order.id)).scalar_one()


def today_row() -> Any:
    from portal.extensions import db

    db.session.expire_all()
    return db.session.get(ServiceLevelDay, utcnow().date())


def shown(client: Any) -> str:
    """The Service levels page of the current week as text."""
    return unescape(client.get("/service-levels/").get_data(as_text=True))


def dispute(invoice: Any, opened_at: Any = None) -> None:
    """A shortage dispute on ``invoice``, opened ``opened_at`` (default now)."""
    disputes.open_dispute(
        invoice, actor("specialist"), dispute_type="shortage", amount="5.00", opened_at=opened_at
    )


def invoice_of(number: str) -> Any:
    from portal.extensions import db

    return db.session.execute(
        select(Invoice)
        .join(SalesOrder, Invoice.order_id == SalesOrder.id)
        .where(SalesOrder.number == number)
    ).scalar_one()


def dispute_today(number: str) -> None:
    dispute(invoices.invoice_shipment(shipment(number), actor("specialist")))


@pytest.fixture
def scenario(clean_db) -> dict[str, Any]:
    day = utcnow().date() - timedelta(days=7)
    numbers = build(day)
    dispute_today(numbers["b"])  # today: an invoice (order-to-invoice) and a dispute
    keeping.keep(actor("supervisor"))
    return {"day": day, **numbers}


@pytest.fixture
def max_age(app):
    """Restores SERVICE_LEVELS_TODAY_MAX_AGE after a test that changes it."""
    before = app.config["SERVICE_LEVELS_TODAY_MAX_AGE"]
    yield app.config
    app.config["SERVICE_LEVELS_TODAY_MAX_AGE"] = before


def test_today_kept_is_read_while_fresh_and_equals_the_live_figures(scenario) -> None:
    from portal.extensions import db

    today = utcnow().date()
    assert read(True).today_at is None and today not in read(True).kept  # not kept: live
    exact = figures(provisional=False)
    from jobs import service_levels as job

    assert job.keep_service_levels() == 1  # the closed days were kept: today only
    reading = read(True)
    assert today in reading.kept and reading.today_at == today_row().computed_at
    assert figures() == exact
    assert exact["disputes"][-1][1].num == 1
    assert today not in read(False).kept  # exact readings compute today live
    # the figures do come from today's kept rows: alter one and the page's week follows it
    db.session.execute(
        update(ServiceLevelDayFigure)
        .where(ServiceLevelDayFigure.metric == "disputes", ServiceLevelDayFigure.day == today)
        .values(num=ServiceLevelDayFigure.num + 100)
    )
    assert figures()["disputes"][-1][1].num == 101
    assert figures(provisional=False)["disputes"][-1][1].num == 1
    db.session.rollback()


def test_today_kept_too_long_ago_and_changed_since_is_read_as_kept_and_late(
    scenario, max_age
) -> None:
    """Today's last kept sums are read however old they are (a live day costs seconds to
    minutes at scale); once changed since and older than the max age they are late."""
    today = utcnow().date()
    keeping.keep_today(actor("supervisor"))
    kept_at = today_row().computed_at
    max_age["SERVICE_LEVELS_TODAY_MAX_AGE"] = 0  # any kept sums are older than that
    reading = read(True)
    assert today in reading.kept and not reading.today_late  # nothing changed since
    dispute_today(scenario["c"])
    max_age["SERVICE_LEVELS_TODAY_MAX_AGE"] = 3600
    assert today in read(True).kept and not read(True).today_late  # changed, but recent
    max_age["SERVICE_LEVELS_TODAY_MAX_AGE"] = 0
    reading = read(True)
    assert today in reading.kept and reading.today_at == kept_at and reading.today_late
    assert not any(run.start <= today < run.end for run in reading.live)


def test_a_change_today_is_kept_by_the_next_run_and_only_then(scenario) -> None:
    keeping.keep_today(actor("supervisor"))
    assert today_row().stale is False
    assert keeping.keep_today(actor("supervisor"), now=utcnow() + timedelta(hours=1)) is False
    kept = figures()
    dispute_today(scenario["c"])  # a second dispute, and an invoice, today
    assert today_row().stale is True  # marked in the change's transaction
    assert figures() == kept  # read as kept until the next run
    assert figures(provisional=False)["disputes"][-1][1].num == 2
    # kept at most every SERVICE_LEVELS_TODAY_EVERY seconds (60 in tests)
    assert keeping.keep_today(actor("supervisor")) is False
    assert keeping.keep_today(actor("supervisor"), now=utcnow() + timedelta(seconds=61)) is True
    assert today_row().stale is False
    assert figures() == figures(provisional=False)
    assert figures()["disputes"][-1][1].num == 2


def test_a_change_committed_while_today_is_kept_leaves_today_to_keep_again(
    app, scenario, monkeypatch
) -> None:
    """keep_today claims today in a transaction of its own, then computes in another: a change
    committed between the two is never lost, it leaves today stale for the next run."""
    from portal.extensions import db

    keeping.keep_today(actor("supervisor"))
    later = utcnow() + timedelta(seconds=61)
    db.session.remove()
    computing, change_committed = threading.Event(), threading.Event()
    store = keeping._store

    def store_after_the_change(*args: Any) -> None:
        computing.set()  # today is claimed (stale cleared) and its computation begun
        assert change_committed.wait(timeout=60)
        store(*args)

    monkeypatch.setattr(keeping, "_store", store_after_the_change)
    errors: list[BaseException] = []

    def keep() -> None:
        with app.app_context():
            try:
                assert keeping.keep_today(actor("supervisor"), now=later) is True
            except BaseException as error:
                errors.append(error)
                computing.set()
            finally:
                db.session.remove()

    dispute_today(scenario["c"])  # today changed since its keep: the run will keep it
    keeper = threading.Thread(target=keep)
    keeper.start()
    assert computing.wait(timeout=60)
    dispute(invoice_of(scenario["e"]))  # committed while today is being kept
    change_committed.set()
    keeper.join(timeout=120)
    assert not errors, errors
    monkeypatch.setattr(keeping, "_store", store)
    assert today_row().stale is True  # the change is still to be kept
    assert keeping.keep_today(actor("supervisor"), now=later + timedelta(seconds=61)) is True
    assert today_row().stale is False
    assert figures() == figures(provisional=False)
    assert figures()["disputes"][-1][1].num == 3


def test_a_day_kept_before_it_closed_is_kept_again_once_closed(scenario) -> None:
    today = utcnow().date()
    keeping.keep_today(actor("supervisor"))
    assert keeping.pending(today) == []
    assert keeping.pending(today + timedelta(days=1)) == [today]


def test_the_page_says_when_todays_figures_were_kept(app, scenario, max_age) -> None:
    client = login(app, "specialist")
    html = shown(client)
    assert "Today's figures computed live" in html and "as of" in html
    keeping.keep_today(actor("supervisor"))
    kept_at = today_row().computed_at
    html = shown(client)
    assert f"Today's figures as of {kept_at:%H:%M} UTC" in html
    assert "being refreshed" not in html
    assert page(week()).read.today_at == kept_at
    dispute_today(scenario["c"])
    max_age["SERVICE_LEVELS_TODAY_MAX_AGE"] = 0
    html = shown(client)
    assert "Today's figures computed live" not in html
    assert (
        f"Today's figures as of {kept_at:%H:%M} UTC (records changed since: they are being "
        "refreshed)" in html
    )


def test_changed_closed_days_are_read_as_kept_with_a_note_until_the_job_keeps_them(
    app, scenario
) -> None:
    from jobs import service_levels as job

    day = scenario["day"]
    keeping.keep_today(actor("supervisor"))
    before = figures()
    # E (invoiced D+2) gets a dispute opened on D+3: E's closed days go stale
    from portal.extensions import db
    from portal.models import Invoice

    invoice = db.session.execute(
        select(Invoice).where(Invoice.order_id == shipment(scenario["e"]).order_id)
    ).scalar_one()
    dispute(invoice, opened_at=at(day + timedelta(days=3)))
    reading = read(True)
    changed = {changed_day for changed_day, _ in reading.behind}
    assert day + timedelta(days=3) in changed and changed <= reading.kept
    assert all(kept_at <= utcnow() for _, kept_at in reading.behind)
    assert figures() == before  # the changed days as last kept
    live = figures(provisional=False)
    assert live["disputes"] != before["disputes"]  # exact: computed live
    html = shown(login(app, "specialist"))
    assert f"{len(changed)} days are being refreshed" in html
    assert f"{day + timedelta(days=3):%Y-%m-%d}" in html
    assert job.keep_service_levels() == len(changed)
    assert read(True).behind == ()
    assert figures() == live
    html = shown(login(app, "specialist"))
    assert "being refreshed" not in html
