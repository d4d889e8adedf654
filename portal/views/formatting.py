"""How the order pages show values: labels not codes, one date format, times to the minute,
nothing shown for an empty value (money with its currency: ``SalesOrder.total_text``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from portal.services import order_entry


def blank(value: Any) -> Any:
    """An empty value shows as nothing (never "None")."""
    return "" if value is None else value


def label(value: str | None) -> str:
    """A code as words: ``on_hold`` → ``on hold``."""
    return "" if value is None else value.replace("_", " ")


def when(value: datetime | date | None) -> str:
    """A date as YYYY-MM-DD, a time to the minute in UTC."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def order_formatters() -> dict[str, Callable[[Any], Any]]:
    """The sales order pages' column formatters."""
    dates = (
        "order_date",
        "requested_date",
        "promised_date",
        "ship_date",
        "delivered_date",
        "created_at",
        "updated_at",
    )
    texts = (
        "customer_po",
        "ship_to",
        "payment_term",
        "incoterm",
        "external_ref",
        "ship_mode",
        "ship_to_text",
        "source",
    )
    return {
        **{name: blank for name in texts},
        "notes": blank,
        "hold_reasons": order_entry.hold_text,
        **{name: when for name in dates},
        "status": label,
    }
