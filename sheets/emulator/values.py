"""Cell values: USER_ENTERED parsing (en_US), formulas, date serials and value rendering.

Formulas are stored as written. Pure arithmetic on literal numbers (``=4/2``, ``= 1 / 1024``,
``=(2+3)^2``) is evaluated so FORMATTED_VALUE / UNFORMATTED_VALUE show the result, like Google;
any other formula (cell references, functions) has no computed value here: it reads as an
empty cell with FORMATTED_VALUE / UNFORMATTED_VALUE and as its text with FORMULA.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import operator
import re
from typing import Any

EPOCH = dt.datetime(1899, 12, 30)
DATE_TYPES = ("DATE", "TIME", "DATE_TIME")


class Cell:
    """One non-empty cell. Immutable by convention: replace, never mutate."""

    __slots__ = ("fmt", "formula", "value")

    def __init__(
        self,
        value: Any,
        formula: str | None = None,
        fmt: tuple[str, str] | None = None,
    ) -> None:
        self.value = value  # str | int | float | bool | None (effective value)
        self.formula = formula
        self.fmt = fmt  # (numberFormat type, pattern) or None

    def __repr__(self) -> str:
        return f"Cell({self.value!r}, {self.formula!r}, {self.fmt!r})"


# --- input ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"^([+-]?)(\$?)((?:\d{1,3}(?:,\d{3})+|\d*)(?:\.\d*)?)(%?)$")
_SCI = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
_ISO_DATE = re.compile(r"^(\d{4})([-/])(\d{1,2})\2(\d{1,2})(?:[ T](.+))?$")
_US_DATE = re.compile(r"^(\d{1,2})([/-])(\d{1,2})\2(\d{2}|\d{4})(?:\s+(.+))?$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?$")


def to_serial(value: dt.datetime) -> float | int:
    """A datetime as a Sheets serial number (days since 1899-12-30)."""
    delta = value - EPOCH
    serial = delta.days + delta.seconds / 86400
    return int(serial) if float(serial).is_integer() else serial


def from_serial(serial: float) -> dt.datetime:
    """A Sheets serial number as a datetime."""
    return EPOCH + dt.timedelta(days=float(serial))


def _parse_time(text: str) -> tuple[dt.time, str] | None:
    m = _TIME.match(text.strip())
    if not m:
        return None
    hour, minute = int(m.group(1)), int(m.group(2))
    second = int(m.group(3) or 0)
    ampm = m.group(4)
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm.lower() == "pm" else 0)
        pattern = "h:mm:ss am/pm" if m.group(3) else "h:mm am/pm"
    else:
        pattern = "H:mm:ss" if m.group(3) else "H:mm"
    if hour > 23 or minute > 59 or second > 59:
        return None
    return dt.time(hour, minute, second), pattern


def _parse_date(text: str) -> Cell | None:
    m = _ISO_DATE.match(text)
    if m:
        year, month, day, rest = int(m.group(1)), int(m.group(3)), int(m.group(4)), m.group(5)
        sep = m.group(2)
        pattern = f"yyyy{sep}mm{sep}dd"
    else:
        m = _US_DATE.match(text)
        if not m:
            return None
        month, day, year, rest = int(m.group(1)), int(m.group(3)), m.group(4), m.group(5)
        year = (
            int(year)
            if len(year) == 4
            else (2000 + int(year) if int(year) < 30 else 1900 + int(year))
        )
        pattern = "M/d/yyyy"
    try:
        date = dt.datetime(year, month, day)
    except ValueError:
        return None
    if rest:
        parsed = _parse_time(rest)
        if parsed is None:
            return None
        t, tpattern = parsed
        date = date.replace(hour=t.hour, minute=t.minute, second=t.second)
        return Cell(to_serial(date), fmt=("DATE_TIME", f"{pattern} {tpattern}"))
    return Cell(to_serial(date), fmt=("DATE", pattern))


def _parse_number(text: str) -> Cell | None:
    if _SCI.match(text):
        return Cell(_num(float(text)), fmt=("SCIENTIFIC", "0.00E+00"))
    m = _NUMBER.match(text)
    if not m or not any(ch.isdigit() for ch in m.group(3)):
        return None
    sign, dollar, digits, percent = m.groups()
    plain = digits.replace(",", "")
    number: int | float = float(plain) if "." in plain else int(plain)
    if sign == "-":
        number = -number
    decimals = len(plain.split(".")[1]) if "." in plain else 0
    if percent:
        number = _num(number / 100)
        return Cell(number, fmt=("PERCENT", "0.00%" if decimals else "0%"))
    if dollar:
        return Cell(_num(number), fmt=("CURRENCY", '"$"#,##0.00'))
    if "," in digits:
        return Cell(
            _num(number), fmt=("NUMBER", "#,##0." + "0" * decimals if decimals else "#,##0")
        )
    return Cell(_num(number))


def _num(value: float) -> int | float:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def parse_user_entered(value: Any) -> Cell | None:
    """A value typed into a cell (USER_ENTERED, en_US). ``None`` means "empty cell".

    Raises ValueError for JSON values that are not a string, number or boolean.
    """
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, int | float):  # bool included
        return _plain(value)
    raise ValueError(value)


@functools.lru_cache(maxsize=65536)
def _parse_text(text: str) -> Cell | None:
    # cached: trackers repeat the same strings ("open", dates...) and Cells are immutable
    if text == "":
        return None
    first = text.lstrip()[:1]
    if first.isalpha() and first not in "TtFf":
        return Cell(text)  # cannot be a number, date, time or boolean
    if text.startswith("'"):
        return Cell(text[1:])
    if text.startswith("=") and len(text) > 1:
        return Cell(evaluate(text), formula=text)
    stripped = text.strip()
    if stripped.upper() in ("TRUE", "FALSE"):
        return Cell(stripped.upper() == "TRUE")
    parsed = _parse_number(stripped) or _parse_date(stripped)
    if parsed is not None:
        return parsed
    time = _parse_time(stripped)
    if time is not None:
        t, pattern = time
        return Cell(_num((t.hour * 3600 + t.minute * 60 + t.second) / 86400), fmt=("TIME", pattern))
    return Cell(text)


def parse_raw(value: Any) -> Cell | None:
    """A value written with RAW: stored as is (strings stay strings).

    Raises ValueError for JSON values that are not a string, number or boolean.
    """
    if isinstance(value, str | int | float):  # bool included
        return _plain(value) if value != "" else None
    raise ValueError(value)


@functools.lru_cache(maxsize=65536, typed=True)
def _plain(value: str | int | float | bool) -> Cell:
    # cached (typed: True, 1 and 1.0 stay apart): big writes repeat values; Cells are immutable
    if isinstance(value, float) and not isinstance(value, bool):
        return Cell(_num(value))
    return Cell(value)


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def _eval_node(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _eval_node(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval_node(node.left), _eval_node(node.right))
    raise ValueError("not arithmetic")


def evaluate(formula: str) -> Any:
    """Value of an arithmetic-only formula, ``"#DIV/0!"`` on division by zero, else None."""
    expr = formula[1:].strip()
    if not re.fullmatch(r"[0-9.+\-*/^()%\s]+", expr):
        return None
    try:
        tree = ast.parse(expr.replace("^", "**"), mode="eval")
        return _num(float(_eval_node(tree.body)))
    except ZeroDivisionError:
        return "#DIV/0!"
    except (ValueError, SyntaxError, TypeError, OverflowError):
        return None


# --- output --------------------------------------------------------------------------------


def format_general(number: float) -> str:
    """A number as Sheets' automatic format shows it (up to 10 decimals)."""
    if isinstance(number, int) or float(number).is_integer():
        if abs(number) >= 1e15:
            return f"{float(number):.2E}"
        return str(int(number))
    if abs(number) >= 1e15 or (0 < abs(number) < 1e-10):
        return f"{number:.2E}"
    text = f"{number:.10f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _format_number(number: float, fmt: tuple[str, str]) -> str:
    kind, pattern = fmt
    if kind in DATE_TYPES:
        return format_datetime(from_serial(number), pattern)
    if kind == "PERCENT":
        decimals = len(pattern.split(".")[1]) - 1 if "." in pattern else 0
        return f"{number * 100:.{decimals}f}%"
    if kind == "SCIENTIFIC":
        return f"{number:.2E}"
    decimals = len(pattern.split(".")[1]) if "." in pattern else 0
    grouping = "," if "#,##" in pattern else ""
    body = f"{abs(number):{grouping}.{decimals}f}"
    sign = "-" if number < 0 else ""
    if kind == "CURRENCY":
        return f"{sign}${body}"
    return sign + body


_DT_TOKEN = re.compile(r"yyyy|yy|mm|m|MM|M|dd|d|HH|H|hh|h|ss|am/pm|.", re.S)


def format_datetime(value: dt.datetime, pattern: str) -> str:
    """Render with a Sheets date/time pattern (``yyyy-mm-dd``, ``M/d/yyyy H:mm:ss``...)."""
    tokens = _DT_TOKEN.findall(pattern)
    out: list[str] = []
    twelve = "am/pm" in tokens
    for i, tok in enumerate(tokens):
        prev_time = any(t in ("h", "hh", "H", "HH") for t in tokens[max(0, i - 2) : i])
        next_sec = "ss" in tokens[i + 1 : i + 3]
        if tok == "yyyy":
            out.append(f"{value.year:04d}")
        elif tok == "yy":
            out.append(f"{value.year % 100:02d}")
        elif tok in ("mm", "m") and (prev_time or next_sec):
            out.append(f"{value.minute:02d}" if tok == "mm" else str(value.minute))
        elif tok in ("mm", "MM"):
            out.append(f"{value.month:02d}")
        elif tok in ("m", "M"):
            out.append(str(value.month))
        elif tok == "dd":
            out.append(f"{value.day:02d}")
        elif tok == "d":
            out.append(str(value.day))
        elif tok in ("HH", "hh", "H", "h"):
            hour = value.hour % 12 or 12 if twelve else value.hour
            out.append(f"{hour:02d}" if len(tok) == 2 else str(hour))
        elif tok == "ss":
            out.append(f"{value.second:02d}")
        elif tok == "am/pm":
            out.append("AM" if value.hour < 12 else "PM")
        else:
            out.append(tok)
    return "".join(out)


def render(cell: Cell | None, value_render: str, date_render: str) -> Any:
    """A cell as values.get returns it for the given render options (``""`` when empty)."""
    if cell is None:
        return ""
    if value_render == "FORMULA" and cell.formula is not None:
        return cell.formula
    value = cell.value
    if value is None:
        return ""
    if value_render == "FORMATTED_VALUE":
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int | float):
            return _format_number(value, cell.fmt) if cell.fmt else format_general(value)
        return value
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and cell.fmt
        and cell.fmt[0] in DATE_TYPES
        and date_render == "FORMATTED_STRING"
    ):
        return _format_number(value, cell.fmt)
    return value


def sort_key(cell: Cell | None, descending: bool) -> tuple:
    """Sheets' sort order: numbers, then text (case-insensitive), then booleans; blanks last."""
    value = None if cell is None else cell.value
    if value is None or value == "":
        return (1, 0, 0)
    if isinstance(value, bool):
        rank, key = 2, int(value)
    elif isinstance(value, int | float):
        rank, key = 0, value
    else:
        rank, key = 1, str(value).lower()
    if descending:
        return (0, -rank, _Reversed(key))
    return (0, rank, key)


class _Reversed:
    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Reversed) -> bool:
        return other.key < self.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)
