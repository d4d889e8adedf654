"""The demo data gives every metric of the Service levels page a realistic, non-trivial
value over the last twelve weeks (issue 16): a figure resting on records in most weeks, and
over the twelve weeks a rate strictly between 0 and 100 %, durations, counts and values above
zero."""

from __future__ import annotations

from datetime import timedelta

from portal.demo import seed_demo_data
from portal.services import service_levels as sl
from portal.services.service_level_targets import scorecard

ORDERS = 200  # the default is 300; this is the fewest that still fills the dispute metrics
MOST = 8  # of the twelve weeks


def test_every_metric_has_a_value_in_most_of_the_last_twelve_weeks(clean_db) -> None:
    assert seed_demo_data(order_count=ORDERS, seed=7)
    week = sl.last_complete_week()
    rows = scorecard(week)
    assert [row.metric.key for row in rows] == list(sl.METRICS)
    sparse = {}
    for row in rows:
        weeks = [day for day, figure in row.trend if figure.count and figure.value is not None]
        if len(weeks) < MOST:
            sparse[row.metric.key] = len(weeks)
    assert not sparse, f"metrics with a value in fewer than {MOST} of 12 weeks: {sparse}"

    twelve = sl.Period(week.end - timedelta(weeks=12), week.end)
    trivial = {}
    for key, m in sl.METRICS.items():
        value = sl.compute(key, twelve)[None].value
        if value is None or value <= 0 or (m.kind == sl.RATE and value >= 1):
            trivial[key] = value
    assert not trivial, f"metrics without a realistic value over 12 weeks: {trivial}"
