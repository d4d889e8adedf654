"""Service-level metrics on hand-built orders: each expected figure is worked out by hand below.

The orders (all placed on Monday D of a past week, requested and promised for D+3):

- A: P1×10, shipped D+1, delivered D+3 (on the promised day: on time), 2 units returned.
- B: P1×5 + P2×5, shipped D+1, delivered D+4 (a day late).
- C: P1×10 + P3×10, shipped P1×10 + P3×4, delivered D+2: line 2 is a partial delivery.
- E: P2×4 + P3×6, line 2 cancelled before allocation, P2×4 delivered D+3.
- F: P3×150 with 90 in stock: 60 backordered, nothing shipped.
- Q1, Q2: quotes; Q1 is converted into an order.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from portal.models import utcnow
from portal.services import (
    changes,
    credits,
    disputes,
    fulfillment,
    invoices,
    lifecycle,
    orders,
    returns,
)
from portal.services import service_levels as sl
from portal.services import service_levels_causes as causes
from portal.services import service_levels_snapshots as snapshots
from portal.services.base import ConflictError, PermissionDenied, ValidationFailed
from tests.conftest import actor, wipe_business_tables
from tests.factories import make_catalog


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), UTC)


def _order(data, day: date, lines: list[tuple[int, int]], status: str = "draft"):
    return orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "order_date": day,
            "requested_date": day + timedelta(days=3),
            "ship_to_id": data.customer.addresses[0].id,
            "status": status,
        },
        [{"product_id": data.products[p].id, "quantity": q} for p, q in lines],
        actor("specialist"),
    )


def _confirmed(data, day: date, lines: list[tuple[int, int]]):
    order = _order(data, day, lines)
    lifecycle.confirm(order, actor("specialist"), today=day)
    return order


def _ship(order, data, day: date, quantities: dict[int, int]):
    return fulfillment.ship(
        order,
        actor("specialist"),
        warehouse_id=data.warehouses[0].id,
        lines={order.lines[i].id: q for i, q in quantities.items()},
        carrier="DHL",
        ship_date=day,
    )


def build(day: date) -> dict[str, Any]:
    """The orders of the module docstring, through the services."""
    clerk, boss = actor("specialist"), actor("supervisor")
    data = make_catalog(stock=100)
    a = _confirmed(data, day, [(0, 10)])
    b = _confirmed(data, day, [(0, 5), (1, 5)])
    c = _confirmed(data, day, [(0, 10), (2, 10)])
    e = _confirmed(data, day, [(1, 4), (2, 6)])
    changes.cancel_line(e.lines[1], clerk, "customer_request")
    f = _confirmed(data, day, [(2, 150)])
    for order in (a, b, c, e, f):
        fulfillment.allocate(order, clerk, today=day)
    ship_a = _ship(a, data, day + timedelta(days=1), {0: 10})
    ship_b = _ship(b, data, day + timedelta(days=1), {0: 5, 1: 5})
    ship_c = _ship(c, data, day + timedelta(days=1), {0: 10, 1: 4})
    ship_e = _ship(e, data, day + timedelta(days=1), {0: 4})
    fulfillment.deliver(ship_a, clerk, day + timedelta(days=3))
    fulfillment.deliver(ship_b, clerk, day + timedelta(days=4))
    fulfillment.deliver(ship_c, clerk, day + timedelta(days=2))
    fulfillment.deliver(ship_e, clerk, day + timedelta(days=3))
    returns.request_return(
        a,
        clerk,
        lines={a.lines[0].id: 2},
        reason="Damaged in transit",
        warehouse_id=data.warehouses[0].id,
        at=at(day + timedelta(days=5)),
    )
    inv_a = invoices.invoice_shipment(ship_a, clerk, on=day + timedelta(days=5))
    inv_e = invoices.invoice_shipment(ship_e, clerk, on=day + timedelta(days=2))
    dispute = disputes.open_dispute(
        inv_a, clerk, dispute_type="damaged", amount="10.00", opened_at=at(day + timedelta(days=5))
    )
    disputes.investigate(dispute, clerk)
    disputes.resolve(  # the clerk opened it: a Supervisor resolves it
        dispute,
        boss,
        root_cause="packing_damage",
        corrective_action="Better packing",
        at=at(day + timedelta(days=6)),
    )
    memo = credits.request_credit(
        inv_e, clerk, reason_code="goodwill", amount="7.50", at=at(day + timedelta(days=5))
    )
    credits.approve(memo, boss, at=at(day + timedelta(days=6)))
    q1 = _order(data, day, [(0, 1)], status="quote")
    _order(data, day, [(0, 2)], status="quote")
    lifecycle.convert_quote(q1, clerk)
    return {"a": a.number, "b": b.number, "c": c.number, "e": e.number, "f": f.number}


@pytest.fixture(scope="module")
def scenario(app) -> dict[str, Any]:
    """Built once for the module; the tests only read."""
    from portal.extensions import db

    with app.app_context():
        wipe_business_tables()
        day = sl.week_of(utcnow().date() - timedelta(days=21)).start
        numbers = build(day)
        db.session.remove()
    return {"day": day, "week": sl.week_of(day), **numbers}


def total(key: str, period: sl.Period, **kw: Any) -> sl.Figure:
    return sl.compute(key, period, **kw)[None]


def test_otif_counts_the_promised_day_as_on_time_and_a_partial_delivery_as_not_in_full(
    ctx, scenario
) -> None:
    week = scenario["week"]
    # lines: A1 yes, B1 no, B2 no (a day late), C1 yes, C2 no (4 of 10), E1 yes, F1 no;
    # E2 (cancelled) is not measured
    line = total("otif_line", week)
    assert (line.num, line.den) == (3, 7)
    # orders: A and E (its cancelled line excluded) are on time in full; B, C, F are not
    order = total("otif_order", week)
    assert (order.num, order.den) == (2, 5)
    assert order.value == Decimal(2) / Decimal(5)
    missed = [o.number for o in sl.orders_behind("otif_order", week, missed=True)]
    assert missed == sorted([scenario["b"], scenario["c"], scenario["f"]])


def test_on_time_shipment_fill_rates_and_backorders(ctx, scenario) -> None:
    week = scenario["week"]
    # shipments arrive D+3 (A, on the day), D+4 (B, late), D+2 (C), D+3 (E)
    shipped = total("on_time_shipment", week)
    assert (shipped.num, shipped.den) == (3, 4)
    assert sl.compute("on_time_shipment", week, by="carrier") == {"DHL": shipped}
    # 7 allocated lines, only F's was short at its first allocation
    assert (total("line_fill_rate", week).num, total("line_fill_rate", week).den) == (6, 7)
    # units 10 + 10 + 20 + 4 + 150 = 194, of which 60 were backordered
    units = total("unit_fill_rate", week)
    assert (units.num, units.den) == (134, 194)
    assert (total("backorder_rate", week).num, total("backorder_rate", week).den) == (1, 5)
    age = total("backorder_age", week)
    assert age.median == (utcnow().date() - scenario["day"]).days
    by_product = sl.compute("unit_fill_rate", week, by="product")
    assert {key: (f.num, f.den) for key, f in by_product.items()}.__len__() == 3


def test_cycle_time_invoice_time_and_quotes(ctx, scenario) -> None:
    later = sl.Period(scenario["day"], scenario["day"] + timedelta(days=14))
    # delivered orders A (3 days), B (4), E (3); C is only partly shipped
    cycle = total("cycle_time", later)
    assert cycle.count == 3
    assert cycle.median == 3.0
    assert cycle.p90 == pytest.approx(3.8)  # ranks 3, 3, 4: 3 + 0.8 × (4 − 3)
    # first invoices: E on D+2, A on D+5
    invoiced = total("order_to_invoice", later)
    assert (invoiced.median, invoiced.p90) == (3.5, pytest.approx(4.7))
    quotes = total("quote_conversion", later)
    assert (quotes.num, quotes.den) == (1, 2)


def test_returns_credits_disputes_and_the_perfect_order(ctx, scenario) -> None:
    later = sl.Period(scenario["day"], scenario["day"] + timedelta(days=14))
    # 2 returned of 10 + 10 + 14 + 4 = 38 delivered units
    returned = total("return_rate", later)
    assert (returned.num, returned.den) == (2, 38)
    credited = total("credits", later)
    assert (credited.num, credited.amount) == (1, Decimal("7.50"))
    assert total("disputes", later).num == 1
    assert total("dispute_resolution", later).median == 1.0
    # due dates: A's dispute (damaged: 7 days) closed the day after it opened, not overdue
    assert total("disputes_overdue", later).num == 0
    # A is on time in full but returned and disputed; E was credited: none is perfect
    perfect = total("perfect_order", scenario["week"])
    assert (perfect.num, perfect.den) == (0, 5)


def test_weeks_months_and_dimensions(ctx, scenario) -> None:
    week = scenario["week"]
    weekly = snapshots.weekly_values("otif_order", week, weeks=3)
    assert [monday for monday, _ in weekly] == [
        week.start - timedelta(days=14),
        week.start - timedelta(days=7),
        week.start,
    ]
    assert [(f.num, f.den) for _, f in weekly] == [(0, 0), (0, 0), (2, 5)]
    months = sl.compute("otif_order", week, by="month")
    assert sum(f.den for f in months.values()) == 5
    assert all(key.day == 1 for key in months)
    with pytest.raises(ValidationFailed, match="not recorded by carrier"):
        sl.compute("otif_order", week, by="carrier")
    with pytest.raises(ValidationFailed, match="not an ISO week"):
        sl.parse_week("2026-47")
    assert sl.parse_week("2026-W47") == sl.Period(date(2026, 11, 16), date(2026, 11, 23))


def test_percentile_interpolates_like_percentile_cont() -> None:
    assert sl.percentile([(1, 1), (2, 1), (10, 1), (20, 1)], 0.5) == 6.0
    assert sl.percentile([(5, 3)], 0.9) == 5.0
    assert sl.percentile([], 0.5) is None


def test_root_cause_pareto_across_every_kind_of_problem(ctx, scenario) -> None:
    later = sl.Period(scenario["day"], scenario["day"] + timedelta(days=14))
    bars = causes.pareto(later)
    # one of each: B's late delivery (no delay reason given), F's backorder, A's return,
    # E's goodwill credit, A's dispute (packing damage); ties by source then cause
    assert [(bar.label, bar.count) for bar in bars] == [
        ("Backorder: Stock shortage", 1),
        ("Credit: Goodwill", 1),
        ("Dispute: Packing damage", 1),
        ("Late delivery: Cause not recorded", 1),
        ("Return: Damaged in transit", 1),
    ]
    assert [bar.cumulative for bar in bars] == [Decimal(n) / 5 for n in range(1, 6)]
    behind = causes.orders_for_cause(later, "late_delivery", "not_recorded")
    assert [o.number for o in behind] == [scenario["b"]]
    assert causes.pareto(sl.Period(later.end, later.end + timedelta(days=7))) == []


def test_targets_default_are_set_by_supervisors_and_decide_the_state(ctx, scenario) -> None:
    from portal.services import service_level_targets as st

    assert st.targets()["otif_order"] == st.Target(
        "otif_order", Decimal("0.95"), Decimal("0.90"), True
    )
    with pytest.raises(PermissionDenied):
        st.set_target("otif_order", "0.5", "0.4", actor("specialist"))
    with pytest.raises(ValidationFailed, match="at or below the target"):
        st.set_target("otif_order", "0.5", "0.6", actor("supervisor"))
    with pytest.raises(ValidationFailed, match="not a number"):
        st.set_target("otif_order", "lots", "0.3", actor("supervisor"))
    goal = st.set_target("otif_order", "40%", "0.3", actor("supervisor"))
    assert (goal.target, goal.amber, goal.is_default) == (Decimal("0.4"), Decimal("0.3"), False)
    try:
        rows = {row.metric.key: row for row in st.scorecard(scenario["week"], weeks=3)}
        otif = rows["otif_order"]
        # 2 of 5 this week, nothing measured the week before
        assert (otif.value, otif.previous.value, otif.change) == (Decimal("0.4"), None, None)
        assert otif.state == st.GREEN  # 40% meets the 40% target exactly
        assert rows["backorder_rate"].state == st.RED  # 20% against 5% (amber to 10%)
        cycle = rows["cycle_time"]  # A, B and E delivered in the week: 3, 4 and 3 days
        assert (cycle.value, cycle.state) == (3.0, st.GREEN)
        m = sl.METRICS["otif_line"]
        goal = st.targets()["otif_line"]  # 97%, amber down to 92%
        assert [st.rag(m, v, goal) for v in ("0.97", "0.92", "0.9199")] == [
            st.GREEN,
            st.AMBER,
            st.RED,
        ]
    finally:
        st.set_target("otif_order", "0.95", "0.90", actor("supervisor"))


def test_improvement_log_measures_its_metric_before_and_after(ctx, scenario) -> None:
    from portal.services import improvements

    clerk = actor("specialist")
    with pytest.raises(ValidationFailed) as refused:
        improvements.improvements.create(
            {
                "problem": "Late",
                "root_cause": "x",
                "action": "y",
                "owner": "specialist",
                "due_date": utcnow().date(),
                "metric": "speed",
            },
            clerk,
        )
    assert "metric" in refused.value.field_errors
    logged = improvements.improvements.create(
        {
            "problem": "Deliveries arrive late",
            "root_cause": "Carrier misses cut-off",
            "action": "Earlier pick-up slot",
            "owner": "specialist",
            "due_date": utcnow().date() + timedelta(days=14),
            "metric": "otif_order",
            "cause_source": "late_delivery",
            "cause_code": "not_recorded",
        },
        clerk,
    )
    last_week = sl.last_complete_week()
    assert logged.week_before == last_week.label
    assert logged.value_before == improvements.metric_value("otif_order", last_week)
    improvements.measure(logged, clerk, week=scenario["week"])
    assert (logged.value_after, logged.week_after) == (Decimal("0.4000"), scenario["week"].label)
    improvements.move(logged, "done", clerk)
    assert logged.status == "done" and logged.closed_at is not None
    with pytest.raises(ConflictError):
        improvements.move(logged, "done", clerk)
    with pytest.raises(PermissionDenied):
        improvements.move(logged, "in_progress", actor("auditor"))


def test_closed_weeks_are_kept_once_and_the_trend_reads_them(ctx, scenario) -> None:
    from portal.extensions import db
    from portal.models import ServiceLevelSnapshot

    week = scenario["week"]  # ended 14 days or more ago: frozen (FREEZE_DAYS = 7)
    live = snapshots.weekly_values("otif_order", week, weeks=2)
    try:
        added = snapshots.freeze(actor("supervisor"), weeks=4)
        assert added == 4 * (len(sl.METRICS) - len(snapshots.LIVE_ONLY))
        assert snapshots.freeze(actor("supervisor"), weeks=4) == 0  # never twice
        kept = db.session.execute(
            select(ServiceLevelSnapshot).where(
                ServiceLevelSnapshot.metric == "otif_order",
                ServiceLevelSnapshot.week == week.start,
            )
        ).scalar_one()
        assert (kept.num, kept.den) == (2, 5)
        assert snapshots.weekly_values("otif_order", week, weeks=2) == live
        kept.num = 4  # the snapshot records what was reported; trends read the kept days
        db.session.flush()
        assert snapshots.weekly_values("otif_order", week, weeks=2)[-1][1].num == 2
        cycle = snapshots.weekly_values("cycle_time", week, weeks=1)[-1][1]
        assert (cycle.median, cycle.p90) == (3.0, pytest.approx(3.8))
    finally:
        db.session.rollback()
        db.session.execute(ServiceLevelSnapshot.__table__.delete())
        db.session.commit()
