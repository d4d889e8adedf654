"""The bounds of :mod:`portal.services.bounds` as 422s, for the services that build records
themselves (the generic :class:`~portal.services.base.RecordService` applies them by column).

Each refusal names the field and the limit: ``lines`` (``MAX_LINES_PER_ORDER``, checked
before any per-line work by every path that creates orders or adds lines: API, views, sheets,
imports), a bulk call's ids (``MAX_BULK_ITEMS``), a date outside its window, a free text
longer than :data:`~portal.services.bounds.TEXT_MAX_LENGTH`. See docs/security.md, "Limits".
"""

from __future__ import annotations

from typing import Any

from portal.services.base import ValidationFailed
from portal.services.bounds import (
    date_problem,
    max_bulk_items,
    max_lines_per_order,
    text_problem,
)


def check_line_count(count: int, field: str = "lines") -> None:
    """Refuse an order that would have more than ``MAX_LINES_PER_ORDER`` lines."""
    limit = max_lines_per_order()
    if count > limit:
        raise ValidationFailed({field: [f"at most {limit} lines per order ({count} given)"]})


def check_bulk(count: int, field: str = "items") -> None:
    """Refuse a bulk call on more than ``MAX_BULK_ITEMS`` records."""
    limit = max_bulk_items()
    if count > limit:
        raise ValidationFailed({field: [f"at most {limit} at once ({count} given)"]})


def date_errors(**values: Any) -> dict[str, list[str]]:
    """The dates of ``values`` outside their window, per field (``None`` is skipped)."""
    return {
        name: [problem] for name, value in values.items() if (problem := date_problem(name, value))
    }


def check_dates(**values: Any) -> None:
    """Refuse (422, per field) any of ``values`` outside its date window."""
    errors = date_errors(**values)
    if errors:
        raise ValidationFailed(errors)


def text_errors(**values: Any) -> dict[str, list[str]]:
    """The free texts of ``values`` longer than the limit, per field."""
    return {name: [problem] for name, value in values.items() if (problem := text_problem(value))}
