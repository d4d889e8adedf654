"""The demo's calendar and the fate of each order: when orders come in and what becomes of
them, drawn from the seed's ``random.Random`` (``portal.demo_history`` plays them out)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

WEEKS = 12
# Weeks of orders before the twelve measured ones, so that even the first measured week has
# the deliveries, invoices, returns and closed disputes of orders placed before it.
LEAD_IN_WEEKS = 4
# Orders arrive mostly on weekdays: Monday … Sunday.
WEEKDAY_WEIGHTS = (1.0, 1.0, 0.95, 0.9, 0.8, 0.12, 0.04)
CARRIERS = ["DHL", "UPS", "DB Schenker", "Kuehne+Nagel", "FedEx"]


def order_days(rng: random.Random, count: int, today: date) -> list[date]:
    """``count`` order dates over the last :data:`WEEKS` weeks and the :data:`LEAD_IN_WEEKS`
    before them, weekday-heavy, in order.

    The orders are spread over the weeks first (so even a few dozen span them all; a lead-in
    week gets half as many as a measured one), then each takes a day of its week by the
    weekday weights.
    """
    start = today - timedelta(days=(WEEKS + LEAD_IN_WEEKS) * 7 - 1)
    units = WEEKS + LEAD_IN_WEEKS / 2  # a lead-in week counts half
    days = []
    for index in range(count):
        position = index * units / max(count, 1)
        lead_in = position < LEAD_IN_WEEKS / 2
        week = int(position * 2) if lead_in else LEAD_IN_WEEKS + int(position - LEAD_IN_WEEKS / 2)
        choices = [start + timedelta(days=week * 7 + offset) for offset in range(7)]
        weights = [WEEKDAY_WEIGHTS[day.weekday()] for day in choices]
        days.append(rng.choices(choices, weights)[0])
    return sorted(days)


def next_workday(day: date, after: int = 1) -> date:
    """The working day ``after`` working days after ``day``."""
    while after > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            after -= 1
    return day


@dataclass
class Fate:
    """What will happen to one order, drawn when it is entered."""

    quote: bool = False
    converted_after: int | None = None  # days until the customer accepts the quote (if ever)
    abandoned: bool = False  # a draft nobody confirmed
    cancel: bool = False
    stall: bool = False  # allocated but not shipped
    split: bool = False  # shipped in two parts
    complete: bool = False  # the customer takes complete deliveries only
    late: bool = False
    uninvoiced: bool = False
    returned: bool = False
    payer: str = "on_time"
    held_back: set[int] = field(default_factory=set)  # lines shipped later (split)


def draw_fate(rng: random.Random) -> Fate:
    """One order's fate: about one in seven starts as a quote, nearly half of those are
    accepted within eight days; the rest are drafts, some abandoned, cancelled or stalled."""
    roll = rng.random()
    quote = roll < 0.14
    return Fate(
        quote=quote,
        converted_after=rng.randint(1, 8) if quote and rng.random() < 0.45 else None,
        abandoned=0.14 <= roll < 0.18,
        cancel=0.18 <= roll < 0.22,
        stall=0.22 <= roll < 0.27,
        split=rng.random() < 0.15,
        complete=rng.random() < 0.4,
        late=rng.random() < 0.2,
        uninvoiced=rng.random() < 0.07,
        returned=rng.random() < 0.12,
        payer=rng.choices(
            ["on_time", "late", "partial", "never", "credit", "dispute"],
            [0.38, 0.15, 0.07, 0.10, 0.14, 0.16],
        )[0],
    )
