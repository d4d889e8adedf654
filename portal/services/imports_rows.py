"""Cells to typed values, and one-row-per-line files grouped into orders.

Every row is read on its own first: each mapped cell becomes its field's type (dates from
date cells or text in ISO, ``31.12.2024``, ``12/31/2024``; decimals with a point or a decimal
comma; whole numbers), and a cell that is not its type refuses the row, naming the column.
Rows then join the order their order id names. Order-level fields repeated on each line must
agree: an order whose rows disagree (two order dates, say) is refused as a whole, naming the
rows. A line repeated (same line id, or the same product, quantity and price without one) is
refused as a duplicate of the first. Rows with a negative quantity, or under an invoice
number with the preset's cancellation prefix ("C"), cancel or return units of the order they
refer to (see :func:`attach_cancellations`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from portal.services.imports_fields import ImportField

EXCEL_EPOCH = date(1899, 12, 30)
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y", "%Y/%m/%d", "%d-%b-%Y")
CENT = Decimal("0.01")
PRICE_STEP = Decimal("0.0001")
STATUSES = {
    "shipped": "shipped",
    "delivered": "delivered",
    "invoiced": "invoiced",
    "billed": "invoiced",
    "closed": "closed",
    "complete": "closed",
    "completed": "closed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "open": "confirmed",
    "confirmed": "confirmed",
    "new": "confirmed",
    "pending": "confirmed",
}
SHIPPED_STATUSES = ("shipped", "delivered", "invoiced", "closed")


class CellProblem(ValueError):
    """A cell that is not of its field's type."""


def _text(value: Any) -> str | None:
    if type(value) is str:  # the common case first: CSV cells and most workbook text
        text = value.strip()
        return sys.intern(text) if 0 < len(text) <= 80 else (text or None)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime | date):
        value = value.isoformat()
    text = str(value).strip()
    # repeated values (names, codes, categories) share one string: a big file's rows stay small
    return sys.intern(text) if 0 < len(text) <= 80 else (text or None)


_DATES: dict[Any, date] = {}


def _date(value: Any) -> date | None:
    """A date cell or text; equal dates share one object (a file repeats few dates often)."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return _DATES.setdefault(value, value) if len(_DATES) < 100_000 else value
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 2958466:
        return EXCEL_EPOCH + timedelta(days=int(value))
    text = _text(value)
    if text is None:
        return None
    known = _DATES.get(text)
    if known is not None:
        return known
    head = re.split(r"[ T]", text, maxsplit=1)[0]
    known = _DATES.get(head)
    if known is not None:
        return known
    for fmt in DATE_FORMATS:
        try:
            parsed = datetime.strptime(head, fmt).date()
        except ValueError:
            continue
        if len(_DATES) < 100_000:
            _DATES[head] = _DATES[text] = parsed = _DATES.setdefault(parsed, parsed)
        return parsed
    raise CellProblem(f"{text!r} is not a date")


_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_NOT_IN_NUMBERS = re.compile(r"[\s$€£%]")


def _decimal(value: Any) -> Decimal | None:
    if type(value) is str and _PLAIN_NUMBER.fullmatch(value):
        return Decimal(value)
    if isinstance(value, bool):
        raise CellProblem(f"{value!r} is not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = _text(value)
    if text is None:
        return None
    cleaned = _NOT_IN_NUMBERS.sub("", text)
    if "," in cleaned and "." in cleaned:
        thousands = "," if cleaned.rfind(".") > cleaned.rfind(",") else "."
        cleaned = cleaned.replace(thousands, "").replace(",", ".")
    elif "," in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        raise CellProblem(f"{text!r} is not a number") from None
    if not number.is_finite():
        raise CellProblem(f"{text!r} is not a number")
    return number


def _int(value: Any) -> int | None:
    try:
        number = _decimal(value)
    except CellProblem:
        number = Decimal("NaN")
    if number is None:
        return None
    if number.is_nan() or number != number.to_integral_value():
        raise CellProblem(f"{_text(value)!r} is not a whole number")
    return int(number)


def _percent(value: Any) -> Decimal | None:
    text = _text(value)
    number = _decimal(value)
    if number is None:
        return None
    if (text and text.endswith("%")) or number > 1:
        return number
    return number * 100  # a fraction such as 0.2 is 20 %


PARSERS = {"text": _text, "date": _date, "int": _int, "decimal": _decimal, "percent": _percent}


@dataclass(slots=True)
class Row:
    """One input row: its sheet row number, typed values and why it was refused (if it was)."""

    number: int
    values: dict[str, Any]
    outcome: str = ""
    reason: str = ""
    order_ref: str | None = None

    def refuse(self, reason: str) -> None:
        if not self.outcome:
            self.outcome, self.reason = "refused", reason


def parse_row(
    number: int,
    cells: Sequence[Any],
    columns: Mapping[int, ImportField],
    headers: Sequence[str],
) -> Row:
    """Type every mapped cell of one row; problems are kept, each naming its column."""
    row = Row(number, {})
    problems = []
    for index, spec in columns.items():
        cell = cells[index] if index < len(cells) else None
        try:
            row.values[spec.name] = PARSERS[spec.type](cell)
        except CellProblem as problem:
            problems.append(f"{headers[index]}: {problem}")
    if problems:
        row.refuse("; ".join(problems))
    return row


@dataclass(slots=True)
class LineIn:
    """A line of an order as the file gives it: a unit price before the discount, or the
    line amount after it (see :func:`line_prices`)."""

    row: Row
    key: str
    product_code: str | None
    product_name: str | None
    quantity: int
    unit_price: Decimal | None
    sales: Decimal | None
    discount_pct: Decimal
    by_id: bool = False  # the key is the file's own line id
    cancelled: int = 0
    returned: int = 0


@dataclass(slots=True)
class OrderIn:
    """An order of the file: its header values, lines and the rows they came from."""

    ref: str
    header: dict[str, Any]
    lines: list[LineIn] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    refused: str = ""


def line_prices(line: LineIn) -> tuple[Decimal | None, Decimal | None]:
    """The net unit price and the list price (before discount) of a line.

    A unit price given is the price before the line's discount; a line amount given (with
    no unit price) is after it. Each is rounded to the price's four decimal places.
    """
    keep = (Decimal("100") - line.discount_pct) / Decimal("100")
    if line.unit_price is not None:
        return (line.unit_price * keep).quantize(PRICE_STEP), line.unit_price.quantize(PRICE_STEP)
    if line.sales is None or not line.quantity:
        return None, None
    net = (abs(line.sales) / abs(line.quantity)).quantize(PRICE_STEP)
    gross = (net / keep).quantize(PRICE_STEP) if keep else net
    return net, gross


def _line_problems(values: Mapping[str, Any], today: date, lines: bool = True) -> list[str]:
    problems = []
    for name, label in (("order_date", "order date"), ("delivered_date", "delivery date")):
        when = values.get(name)
        if when is not None and when > today:
            problems.append(f"the {label} {when.isoformat()} is in the future")
    ship = values.get("ship_date")
    order_date = values.get("order_date")
    if ship is not None and order_date is not None and ship < order_date:
        problems.append("the ship date is before the order date")
    status = values.get("status")
    if status is not None and status.lower() not in STATUSES:
        problems.append(f"status {status!r} is not one of {', '.join(sorted(set(STATUSES)))}")
    if lines and values.get("quantity") is None:
        problems.append("no quantity")
    elif lines and values["quantity"] == 0:
        problems.append("the quantity is 0")
    if lines and not values.get("product_code") and not values.get("product_name"):
        problems.append("no product")
    if not values.get("customer_code") and not values.get("customer_name"):
        problems.append("no customer")
    if values.get("order_date") is None:
        problems.append("no order date")
    return problems


def check_row(row: Row, today: date, lines: bool = True) -> None:
    """Refuse a row whose values break a rule of their own (before grouping); without
    ``lines`` (one row per order, no lines) a row needs no product nor quantity."""
    if not row.outcome:
        problems = _line_problems(row.values, today, lines)
        if problems:
            row.refuse("; ".join(problems))


def _is_cancellation(row: Row, cancel_prefix: str | None) -> bool:
    ref = row.values.get("order_ref") or ""
    return (row.values.get("quantity") or 0) < 0 or bool(
        cancel_prefix and ref.startswith(cancel_prefix)
    )


NO_VALUES: dict[str, Any] = {}


class Grouper:
    """Groups good rows into orders as they are read, one row at a time.

    A row's values are dropped once it joined its order (its line keeps what it needs), so a
    file of many rows holds one header per order, not every cell of every row. Cancellation
    rows keep theirs until :func:`attach_cancellations`. ``products`` keeps each product's
    category and sub-category as first given (for a product the import creates).
    """

    def __init__(
        self, order_fields: Sequence[str], cancel_prefix: str | None = None, lines: bool = True
    ) -> None:
        self.order_fields = tuple(order_fields)
        self.lines = lines  # False: one row per order, the order has no lines
        self.cancel_prefix = cancel_prefix
        self.orders: dict[str, OrderIn] = {}
        self.cancellations: list[Row] = []
        self.unmatched: list[Row] = []  # cancellations of no order of the file
        self.products: dict[str, tuple[str | None, str | None]] = {}
        self._discounts: dict[Decimal, Decimal] = {}

    def feed(self, row: Row) -> None:
        if row.outcome:
            row.values = NO_VALUES
            return
        ref = row.values.get("order_ref")
        if not ref:
            row.refuse("no order id")
            return
        row.order_ref = ref
        if _is_cancellation(row, self.cancel_prefix):
            self.cancellations.append(row)
            return
        order = self.orders.get(ref)
        if order is None:
            values = row.values
            header = {name: values[name] for name in self.order_fields if values.get(name)}
            order = self.orders[ref] = OrderIn(ref, header)
        else:
            _check_agrees(order, row, self.order_fields)
        order.rows.append(row)
        line = self._line(row) if self.lines else None
        if line is not None:
            order.lines.append(line)
        row.values = NO_VALUES

    def _line(self, row: Row) -> LineIn | None:
        values = row.values
        code, name = values.get("product_code"), values.get("product_name")
        discount = (values.get("discount") or Decimal("0")).quantize(CENT)
        discount = self._discounts.setdefault(discount, discount)
        self.products.setdefault(code or name, (values.get("category"), values.get("sub_category")))
        return LineIn(
            row=row,
            key=values.get("line_ref") or code or name,
            product_code=code,
            product_name=name,
            quantity=values["quantity"],
            unit_price=values.get("unit_price"),
            sales=values.get("sales"),
            discount_pct=discount,
            by_id=bool(values.get("line_ref")),
        )


def _check_agrees(order: OrderIn, row: Row, order_fields: Sequence[str]) -> None:
    for name in order_fields:
        mine, theirs = row.values.get(name), order.header.get(name)
        if mine != theirs and not order.refused:
            first = order.rows[0].number
            order.refused = (
                f"rows {first} and {row.number} of order {order.ref} disagree on {name}: "
                f"{_shown(theirs)} and {_shown(mine)}"
            )


def _shown(value: Any) -> str:
    if value is None:
        return "(blank)"
    return value.isoformat() if isinstance(value, date) else repr(value)


def drop_duplicates(order: OrderIn) -> None:
    """Refuse a line repeated within its order: the same line id, or (without one) the same
    product, quantity, price and discount as an earlier row."""
    first: dict[Any, Row] = {}
    kept = []
    for line in order.lines:
        identity: Any = line.key
        if not line.by_id:
            price = line.unit_price if line.unit_price is not None else line.sales
            identity = (line.key, line.quantity, price, line.discount_pct)
        seen = first.setdefault(identity, line.row)
        if seen is line.row:
            kept.append(line)
        else:
            line.row.refuse(f"duplicate of row {seen.number}")
    order.lines = kept


def number_line_keys(order: OrderIn) -> None:
    """Make the lines' keys unique within the order (a product twice: ``code``, ``code~2``)."""
    drop_duplicates(order)
    seen: dict[str, int] = {}
    for line in order.lines:
        count = seen[line.key] = seen.get(line.key, 0) + 1
        if count > 1:
            line.key = f"{line.key}~{count}"


def attach_cancellations(
    orders: Mapping[str, OrderIn],
    cancellations: Sequence[Row],
    cancel_prefix: str | None,
    today: date,
) -> list[Row]:
    """Apply each cancellation row to a line of the order it refers to; returns the rows
    that refer to no order of the file (``imports_stored`` looks for them among the stored).

    The order referred to is the one with the row's order id (without the cancellation
    prefix); failing that, the same customer's latest order on or before the row's date that
    has the product with units left. Units of a shipped order come back as a return, of an
    open one as a cancellation.
    """
    by_customer: dict[str, list[OrderIn]] = {}
    unmatched: list[Row] = []
    for order in orders.values():
        by_customer.setdefault(str(order.header.get("customer_code")), []).append(order)
    for row in cancellations:
        ref = row.values["order_ref"]
        if cancel_prefix and ref.startswith(cancel_prefix):
            ref = ref[len(cancel_prefix) :]
        wanted = abs(row.values["quantity"])
        code = row.values.get("product_code") or row.values.get("product_name")
        candidates = [orders[ref]] if ref in orders else []
        if not candidates:
            when = row.values.get("order_date")
            customer = str(row.values.get("customer_code"))
            earlier = [o for o in by_customer.get(customer, []) if o.header["order_date"] <= when]
            candidates = sorted(earlier, key=lambda o: o.header["order_date"], reverse=True)
        target = _find_line(candidates, code, wanted)
        if target is None:
            unmatched.append(row)
            continue
        order, line = target
        if status_for(order.header, today) in SHIPPED_STATUSES:
            line.returned += wanted
            row.outcome, row.reason = "pending", f"return of {wanted} on order {order.ref}"
        else:
            line.cancelled += wanted
            row.outcome, row.reason = "pending", f"cancellation of {wanted} on order {order.ref}"
        row.order_ref = order.ref
        order.rows.append(row)
    return unmatched


def mark_returned(orders: Mapping[str, OrderIn], refs: Iterable[str], today: date) -> None:
    """The orders a returns list names (Superstore's "Returns" sheet) came back whole: every
    shipped unit of theirs is returned."""
    for ref in refs:
        order = orders.get(ref)
        if order is not None and status_for(order.header, today) in SHIPPED_STATUSES:
            for line in order.lines:
                line.returned = line.quantity - line.cancelled


def _find_line(
    candidates: Sequence[OrderIn], code: str | None, wanted: int
) -> tuple[OrderIn, LineIn] | None:
    for order in candidates:
        if order.refused:
            continue
        for line in order.lines:
            left = line.quantity - line.cancelled - line.returned
            if (line.product_code or line.product_name) == code and left >= wanted:
                return order, line
    return None


def status_for(header: Mapping[str, Any], today: date, open_status: str = "confirmed") -> str:
    """An imported order's status: as given, else delivered / shipped by its dates, else
    ``open_status`` (an open order: ``confirmed``, see docs/import.md)."""
    given = header.get("status")
    if given:
        return STATUSES[given.lower()]
    if header.get("delivered_date"):
        return "delivered"
    ship = header.get("ship_date")
    if ship is not None and ship <= today:
        return "shipped"
    return open_status
