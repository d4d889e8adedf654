"""Portable SQL pieces of the service-level metrics: dates, weeks, months, day differences.

Each is a SQLAlchemy function element compiled for PostgreSQL and SQLite, so the metrics are
one set of Core queries on both databases (``docs/service-levels.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Date, Integer, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement


def _sql_function(name: str, type_: Any, doc: str) -> type[FunctionElement]:
    """A SQL function element named ``name`` returning ``type_``, compiled per dialect below."""
    attributes = {"type": type_, "inherit_cache": True, "name": name, "__doc__": doc}
    return type(name, (FunctionElement,), attributes)


week_start = _sql_function("week_start", Date(), "The Monday of the ISO week of a date.")
month_start = _sql_function("month_start", Date(), "The first day of the month of a date.")
utc_date = _sql_function("utc_date", Date(), "The UTC calendar date of a timestamp.")
days_between = _sql_function(
    "days_between", Integer(), "Whole days from the second date to the first (later - earlier)."
)


# Each function's SQL per dialect; ``{0}``, ``{1}`` are its compiled arguments.
TEMPLATES: dict[type[FunctionElement], dict[str, str]] = {
    week_start: {
        "postgresql": "CAST(date_trunc('week', {0}) AS DATE)",
        "sqlite": "date({0}, '-' || ((CAST(strftime('%w', {0}) AS INTEGER) + 6) % 7) || ' days')",
    },
    month_start: {
        "postgresql": "CAST(date_trunc('month', {0}) AS DATE)",
        "sqlite": "date({0}, 'start of month')",
    },
    utc_date: {
        "postgresql": "CAST(({0}) AT TIME ZONE 'UTC' AS DATE)",
        "sqlite": "date({0})",
    },
    days_between: {
        "postgresql": "(CAST({0} AS DATE) - CAST({1} AS DATE))",
        "sqlite": "CAST(julianday({0}) - julianday({1}) AS INTEGER)",
    },
}


def _compiler(template: str) -> Any:
    def compile_element(element: FunctionElement, compiler: Any, **kw: Any) -> str:
        return template.format(*(compiler.process(arg, **kw) for arg in element.clauses))

    return compile_element


for _element, _dialects in TEMPLATES.items():
    for _dialect, _template in _dialects.items():
        compiles(_element, _dialect)(_compiler(_template))


# Planner settings for the per-day fact queries: a few days' orders reached through the date
# indexes, then their lines, shipments and backorders by index, in nested loops. Left to its
# defaults PostgreSQL hash-joins them with a scan of every order line and shipment, whose cost
# grows with the whole history, not the days asked (docs/benchmarks.md, "Service levels").
NARROW_PLANS = {"random_page_cost": "1.1", "enable_hashjoin": "off", "enable_mergejoin": "off"}


@contextmanager
def narrow_plans(sess: Session) -> Iterator[None]:
    """Plan the statements run inside as the narrow, index-driven reads they are (PostgreSQL:
    ``SET LOCAL``, back to the defaults on the way out; other databases: nothing)."""
    if sess.get_bind().dialect.name != "postgresql":
        yield
        return
    for name, value in NARROW_PLANS.items():
        sess.execute(text(f"SET LOCAL {name} = {value}"))
    yield
    for name in NARROW_PLANS:
        sess.execute(text(f"SET LOCAL {name} TO DEFAULT"))
