"""How pages show values: the one place of each rule, as Jinja filters and FAB formatters.

* money: the currency and thousands separators, two decimals (``USD 12,345.60``);
* dates: ``2026-11-30``; moments: ``2026-11-30 14:05 UTC`` (minutes, never microseconds);
* codes: their label (``late_delivery`` → "Late delivery"), from the models' label tables
  where one exists, else the code in words;
* nothing: blank, never "None".

:func:`register_formatting` adds the filters (``money``, ``day``, ``moment``, ``label``,
``blank``, ``status``) to the app; views use :func:`formatters` for FAB's ``formatters_columns``
and :func:`choice` for a form's list of codes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Flask
from flask_appbuilder.fieldwidgets import Select2Widget
from markupsafe import Markup
from wtforms import SelectField
from wtforms.validators import DataRequired

from portal.models import (
    CANCEL_REASONS,
    CREDIT_REASONS,
    DELAY_REASONS,
    ROOT_CAUSES,
)
from portal.services import order_entry

# Codes whose label is not the code in words.
LABELS: dict[str, str] = {
    **DELAY_REASONS,
    **CANCEL_REASONS,
    **CREDIT_REASONS,
    **ROOT_CAUSES,
    "dispute": "Dispute resolution",
    "partially_paid": "Partially paid",
    "restock": "Back to stock",
    "scrap": "Scrapped",
}


def blank(value: Any) -> Any:
    """``""`` for nothing (``None``), the value otherwise."""
    return "" if value is None else value


def money(value: Any, currency: str | None = "USD") -> str:
    """``USD 12,345.60``; blank for nothing."""
    if value is None or value == "":
        return ""
    amount = Decimal(str(value))
    text = f"{amount:,.2f}"
    return f"{currency} {text}" if currency else text


def day(value: date | datetime | None) -> str:
    """A date as ``2026-11-30``; blank for nothing."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    return value.isoformat()


def moment(value: datetime | None) -> str:
    """A moment to the minute, in UTC: ``2026-11-30 14:05 UTC``; blank for nothing."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M UTC")


def label(code: Any) -> str:
    """The label of a code: from :data:`LABELS`, else the code in words; blank for nothing."""
    if code is None or code == "":
        return ""
    text = str(code)
    return LABELS.get(text) or text.replace("_", " ").capitalize()


def when(value: date | datetime | None) -> str:
    """A date as ``2026-11-30``, a moment to the minute in UTC; blank for nothing."""
    return moment(value) if isinstance(value, datetime) else day(value)


def yes_no(value: Any) -> str:
    return "" if value is None else ("Yes" if value else "No")


def formatters(
    money_columns: Iterable[str] = (),
    day_columns: Iterable[str] = (),
    moment_columns: Iterable[str] = (),
    label_columns: Iterable[str] = (),
    flag_columns: Iterable[str] = (),
    columns: Iterable[str] = (),
) -> dict[str, Callable[[Any], Any]]:
    """FAB ``formatters_columns`` for the named columns, and :func:`blank` for the other
    ``columns`` (money with its currency and separators, as on the record pages)."""
    table: dict[str, Callable[[Any], Any]] = {name: blank for name in columns}
    table.update({name: money for name in money_columns})
    table.update({name: day for name in day_columns})
    table.update({name: moment for name in moment_columns})
    table.update({name: label for name in label_columns})
    table.update({name: yes_no for name in flag_columns})
    return table


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
        "notes",
    )
    return {
        **{name: blank for name in texts},
        "hold_reasons": order_entry.hold_text,
        **{name: when for name in dates},
        "status": label,
    }


def choice(text: str, labels: Mapping[str, str]) -> SelectField:
    """A form's drop-down of codes shown by their labels (a code is never typed)."""
    return SelectField(
        text, choices=list(labels.items()), validators=[DataRequired()], widget=Select2Widget()
    )


def code_filter(codes: Iterable[str], text: str = "Status") -> SelectField:
    """A list's search filter on a code column: chosen from its labels, never typed (the
    labels of a mapping of code to label, else :func:`label`)."""
    given = codes if isinstance(codes, Mapping) else {}
    choices = [
        (code, given[code] if isinstance(given.get(code), str) else label(code)) for code in codes
    ]
    return SelectField(text, choices=choices, widget=Select2Widget())


def status_badge(code: Any) -> Markup:
    """A record's status as a badge with its label."""
    return Markup('<span class="ob-status {}">{}</span>').format(code or "", label(code))


def register_formatting(app: Flask) -> None:
    """Add the filters to the app's Jinja environment."""
    app.jinja_env.filters.update(
        money=money,
        day=day,
        moment=moment,
        label=label,
        blank=blank,
        status=status_badge,
        hold_reasons=order_entry.hold_text,
    )
