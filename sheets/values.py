"""Typed cell values: one canonical form per column type, whatever the sheet or portal holds.

A spreadsheet stores ``7`` as ``7``, ``7.0``, ``"7"`` or ``"7.00"`` depending on the backend
and on how the user typed it; a date may come back as a ``date``, a naive ``datetime`` or an
Excel serial number. :func:`normalize` turns any of these into the canonical value of the
column type, so comparing two normalised values with ``==`` answers "did this cell change?".

Canonical forms (``None`` means empty for every type; ``""`` and whitespace are empty):

- ``text``: ``str``, stripped; numbers read from the sheet become their plain text (``7.0`` ->
  ``"7"``); ``"00123"`` stays ``"00123"``.
- ``int``: ``int``; ``7.0``, ``"7"``, ``"7.00"``, ``"1,234"`` and ``Decimal("7")`` are accepted.
- ``decimal``: ``Decimal`` without superfluous trailing zeros (``Decimal("7.00")`` ->
  ``Decimal("7")``); floats go through their shortest repr, so ``0.1`` -> ``Decimal("0.1")``.
- ``date``: ``date``; a ``datetime`` gives its day, an int/float is an Excel serial (1900 system).
- ``datetime``: timezone-aware UTC ``datetime`` rounded to the second; naive values are UTC.
- ``bool``: ``bool``; ``1/0``, ``"TRUE"/"FALSE"``, ``"yes"/"no"``, ``"y"/"n"`` are accepted.

Anything else raises :class:`ValueParseError`, which the engine turns into a row error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

COLUMN_TYPES = ("text", "int", "decimal", "date", "datetime", "bool")

EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_EPOCH_DT = datetime(1899, 12, 30, tzinfo=UTC)
_MAX_SERIAL = 2958465  # 9999-12-31
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
_CURRENCY = "$€£¥"
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})
_LABELS = {
    "text": "text",
    "int": "whole number",
    "decimal": "number",
    "date": "date",
    "datetime": "date and time",
    "bool": "yes/no value",
}


class ValueParseError(ValueError):
    """A cell value that cannot be read as its column's type (a row error, never a crash)."""

    def __init__(self, type_: str, raw: object) -> None:
        self.type = type_
        self.raw = raw
        super().__init__(f"{display(raw)} is not a valid {_LABELS.get(type_, type_)}")


def display(value: object) -> str:
    """Short human text for a value, for status cells and conflict messages."""
    if value is None:
        return "(empty)"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _is_blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _number_text(raw: str) -> str:
    """Strip blanks, a leading currency sign and thousands separators from a typed number."""
    s = raw.strip().replace("\u00a0", "").replace(" ", "")
    sign = ""
    if s[:1] in "+-":
        sign, s = s[:1], s[1:]
    if s[:1] and s[0] in _CURRENCY:
        s = s[1:]
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    return sign + s


def _text(raw: Any) -> str | None:
    if isinstance(raw, str):
        s = raw.strip()
        return s or None
    if isinstance(raw, bool):
        return "TRUE" if raw else "FALSE"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueParseError("text", raw)
        return str(int(raw)) if raw.is_integer() else repr(raw)
    if isinstance(raw, Decimal):
        return format(_decimal(raw), "f")
    if isinstance(raw, datetime):
        return raw.isoformat(sep=" ")
    if isinstance(raw, date):
        return raw.isoformat()
    raise ValueParseError("text", raw)


def _canonical_decimal(d: Decimal) -> Decimal:
    if not d.is_finite():
        raise InvalidOperation
    if d == d.to_integral_value():
        return Decimal(int(d))
    return d.normalize()


def _decimal(raw: Any) -> Decimal | None:
    try:
        if isinstance(raw, Decimal):
            return _canonical_decimal(raw)
        if isinstance(raw, bool):
            raise ValueParseError("decimal", raw)
        if isinstance(raw, int):
            return Decimal(raw)
        if isinstance(raw, float):
            return _canonical_decimal(Decimal(repr(raw)))
        if isinstance(raw, str):
            s = _number_text(raw)
            return _canonical_decimal(Decimal(s)) if s else None
    except (InvalidOperation, ValueError):
        raise ValueParseError("decimal", raw) from None
    raise ValueParseError("decimal", raw)


def _int(raw: Any) -> int | None:
    if isinstance(raw, bool):
        raise ValueParseError("int", raw)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if math.isfinite(raw) and raw.is_integer():
            return int(raw)
        raise ValueParseError("int", raw)
    if isinstance(raw, Decimal | str):
        try:
            d = _decimal(raw)
        except ValueParseError:
            raise ValueParseError("int", raw) from None
        if d is None:
            return None
        if d != d.to_integral_value():
            raise ValueParseError("int", raw)
        return int(d)
    raise ValueParseError("int", raw)


def _serial_days(raw: int | float) -> float:
    if not math.isfinite(raw) or not 0 < raw <= _MAX_SERIAL:
        raise ValueError
    return float(raw)


def _date(raw: Any) -> date | None:
    if isinstance(raw, datetime):
        if raw.tzinfo is not None:
            raw = raw.astimezone(UTC)
        return raw.date()
    if isinstance(raw, date):
        return raw
    try:
        if isinstance(raw, bool):
            raise ValueError
        if isinstance(raw, int | float):
            return EXCEL_EPOCH + timedelta(days=math.floor(_serial_days(raw)))
        if isinstance(raw, str):
            s = raw.strip()
            if not s:
                return None
            if len(s) > 10 and s[10] in "T ":
                return _date(datetime.fromisoformat(s))
            return date.fromisoformat(s.replace("/", "-"))
    except (ValueError, OverflowError):
        raise ValueParseError("date", raw) from None
    raise ValueParseError("date", raw)


def _round_second(dt: datetime) -> datetime:
    if not dt.microsecond:
        return dt
    if dt.microsecond >= 500_000:
        dt += timedelta(seconds=1)
    return dt.replace(microsecond=0)


def _datetime(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        dt = raw.replace(tzinfo=UTC) if raw.tzinfo is None else raw.astimezone(UTC)
        return _round_second(dt)
    if isinstance(raw, date):
        return datetime.combine(raw, time(), tzinfo=UTC)
    try:
        if isinstance(raw, bool):
            raise ValueError
        if isinstance(raw, int | float):
            return _round_second(_EXCEL_EPOCH_DT + timedelta(days=_serial_days(raw)))
        if isinstance(raw, str):
            s = raw.strip()
            if not s:
                return None
            if s.endswith(("Z", "z")):
                s = s[:-1] + "+00:00"
            return _datetime(datetime.fromisoformat(s))
    except (ValueError, OverflowError):
        raise ValueParseError("datetime", raw) from None
    raise ValueParseError("datetime", raw)


def _bool(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float | Decimal) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        s = raw.strip().casefold()
        if not s:
            return None
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    raise ValueParseError("bool", raw)


NORMALIZERS: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "int": _int,
    "decimal": _decimal,
    "date": _date,
    "datetime": _datetime,
    "bool": _bool,
}


def normalize(type_: str, raw: object) -> Any:
    """Canonical value of ``raw`` for a column of ``type_``; raises :class:`ValueParseError`."""
    if _is_blank(raw):
        return None
    return NORMALIZERS[type_](raw)


def same(type_: str, a: object, b: object) -> bool:
    """Whether two raw values are the same cell value for a column of ``type_``."""
    return normalize(type_, a) == normalize(type_, b)


def to_cell(type_: str, value: object) -> Any:
    """The value to write into a cell for a normalised (or portal) value of ``type_``.

    Money stays ``Decimal`` and datetimes stay timezone-aware; backends convert to what their
    file format stores. Re-reading the written cell normalises back to the same value.
    """
    return normalize(type_, value)


def encode(type_: str, value: object) -> str | int | bool | None:
    """JSON-safe form of a normalised value (for storing the base snapshot)."""
    if value is None or type_ in ("text", "int", "bool"):
        return value  # type: ignore[return-value]
    if type_ == "decimal":
        return format(value, "f")  # type: ignore[arg-type]
    if type_ in ("date", "datetime"):
        return value.isoformat()  # type: ignore[attr-defined]
    raise ValueError(f"unknown column type {type_!r}")


def decode(type_: str, data: object) -> Any:
    """Inverse of :func:`encode`."""
    return normalize(type_, data)
