"""The bounds on values people, sheets and API clients enter: the one place of each rule.

Pure checks (no database, no other service), each answering why a value is refused or None:

* :func:`places_problem` — an amount has at most :data:`MONEY_PLACES` decimal places (the
  currency's minor unit), a unit price at most its column's scale; nothing is ever rounded;
* :func:`date_problem` — a planned date (requested, promised, ETA, expected, due) lies from
  2000-01-01 to five years from today; the date of something that happened (a payment
  received, a shipment shipped or delivered, an invoice issued, an order placed) from
  2000-01-01 to today, plus one day for a client whose time zone is already on tomorrow;
* :func:`text_problem` — free text in an unbounded ``Text`` column (notes, descriptions,
  corrective actions) is at most :data:`TEXT_MAX_LENGTH` characters;
* :func:`max_lines_per_order`, :func:`max_bulk_items` — the settings ``MAX_LINES_PER_ORDER``
  and ``MAX_BULK_ITEMS``.

:func:`entered_value_problem` applies the first three by column type; the table-derived checks
of every service write (``base.table_errors``) run it, and ``portal.services.limits`` turns
the rules into 422s for the services that build records themselves. docs/security.md,
"Limits", lists them.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import Column, Date, Numeric, Text

from portal.models import utcnow

# Decimal places of every currency the portal takes today (the ``currency`` columns hold
# ISO codes, "USD" by default; none has other than two). A currency without cents would
# need a per-currency table here.
MONEY_PLACES = 2
TEXT_MAX_LENGTH = 4000
EARLIEST = date(2000, 1, 1)
PLANNING_YEARS = 5
TOLERANCE = timedelta(days=1)
# Dates of events that have happened; every other date is a planned one.
HAPPENED = frozenset({"received_on", "ship_date", "delivered_date", "issue_date", "order_date"})
DEFAULT_MAX_LINES_PER_ORDER = 500
DEFAULT_MAX_BULK_ITEMS = 1000


def places_problem(value: Any, places: int = MONEY_PLACES) -> str | None:
    """Why ``value`` has too many decimal places for ``places``; None when it has not.

    Trailing zeros don't count (``1.2500`` has two places).
    """
    if not isinstance(value, Decimal) or not value.is_finite():
        return None
    if value.normalize().as_tuple().exponent < -places:
        return f"at most {places} decimal places"
    return None


def size_problem(value: Any, precision: int | None, scale: int) -> str | None:
    """Why ``value`` does not fit a ``Numeric(precision, scale)`` column; None when it does."""
    if not isinstance(value, Decimal) or precision is None:
        return None
    if not value.is_finite() or abs(value) >= Decimal(10) ** (precision - scale):
        return f"must be less than {10 ** (precision - scale):,}"
    return None


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def latest_date(name: str, today: date | None = None) -> date:
    """The last date field ``name`` may take (today + 1 day for events, +5 years for plans)."""
    today = today or utcnow().date()
    return today + TOLERANCE if name in HAPPENED else _years_later(today, PLANNING_YEARS)


def date_problem(name: str, value: Any, today: date | None = None) -> str | None:
    """Why ``value`` can't be the date ``name``; None if it can (or is not a date)."""
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        return None
    last = latest_date(name, today)
    if not EARLIEST <= value <= last:
        return f"must be between {EARLIEST.isoformat()} and {last.isoformat()}"
    return None


def text_problem(value: Any, size: int = TEXT_MAX_LENGTH) -> str | None:
    """Why ``value`` is too long a text; None when it is not."""
    if isinstance(value, str) and len(value) > size:
        return f"is longer than {size} characters"
    return None


def entered_value_problem(column: Column, value: Any) -> str | None:
    """The bound on ``value`` by its column's type: the decimal places of a ``Numeric`` (its
    scale: 2 for money, 4 for unit prices), the window of a ``Date``, the length of ``Text``."""
    kind = column.type
    if isinstance(kind, Numeric) and kind.scale is not None:
        return places_problem(value, kind.scale) or size_problem(value, kind.precision, kind.scale)
    if isinstance(kind, Date):
        return date_problem(column.key, value)
    if isinstance(kind, Text) and getattr(kind, "length", None) is None:
        return text_problem(value)
    return None


def _setting(name: str, default: int) -> int:
    if not has_app_context():
        return default
    return int(current_app.config.get(name) or default)


def max_lines_per_order() -> int:
    return _setting("MAX_LINES_PER_ORDER", DEFAULT_MAX_LINES_PER_ORDER)


def max_bulk_items() -> int:
    return _setting("MAX_BULK_ITEMS", DEFAULT_MAX_BULK_ITEMS)
