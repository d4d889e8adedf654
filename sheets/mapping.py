"""Suggest how a sheet's own headers map to the fields of a record kind (pure, no I/O).

Teams bring trackers with their own headers ("Order ID", "SO#", "Qty", "OrderDate").
:func:`suggest_mapping` proposes one field per header, best first: by the normalised header
text (case, punctuation and camelCase ignored; ``#``/``no``/``num`` read as "number"), by the
field's synonyms, then by what the sample values look like (dates, money, whole numbers,
codes), which confirm or weaken a name match. Each field is used at most once: when two
headers want the same field the better score wins and the other is left unmapped with a
reason. Headers that match nothing map to ``None``. :func:`find_header_row` finds the row that
holds the headers when a sheet has a title or notes above its table.

The caller (the portal's attach flow, the import of history files) owns the list of fields;
nothing here knows the portal's record kinds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

FIELD_TYPES = ("text", "int", "decimal", "money", "date", "datetime", "bool", "status")
MIN_CONFIDENCE = 0.5  # below this a header is left unmapped

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_NUMBER_WORDS = frozenset({"no", "num", "nr", "nbr", "number"})
_CODE = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9]+([-_./][A-Za-z0-9]+)*$|^[A-Z]{3,6}$")
_MONEY_TEXT = re.compile(r"^\s*[-+]?\s*[$€£¥]\s*[-+]?[\d,]+(\.\d+)?\s*$|^[\d,]+\.\d{2}\s*[A-Z]{3}$")
_NUMBER_TEXT = re.compile(r"^\s*[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?\s*$")
_DATE_TEXT = re.compile(
    r"^\s*(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}|\d{1,2}[ -][A-Za-z]{3,9}[ -]\d{2,4}"
    r"|[A-Za-z]{3,9} \d{1,2},? \d{4})([ T]\d{1,2}:\d{2}(:\d{2})?)?\s*$"
)
_TRUE_FALSE = frozenset({"true", "false", "yes", "no", "y", "n"})

# How well a column whose samples look like ``kind`` fits a field of ``type``.
_FIT: dict[str, dict[str, float]] = {
    "text": {"text": 1.0, "code": 1.0, "int": 0.8, "decimal": 0.5, "money": 0.4, "bool": 0.6},
    "status": {"text": 1.0, "code": 0.8, "bool": 0.6},
    "int": {"int": 1.0, "decimal": 0.4, "money": 0.3, "code": 0.3, "text": 0.2},
    "decimal": {"decimal": 1.0, "int": 0.9, "money": 1.0},
    "money": {"money": 1.0, "decimal": 1.0, "int": 0.8},
    "date": {"date": 1.0, "datetime": 0.9, "text": 0.2},
    "datetime": {"datetime": 1.0, "date": 0.9, "text": 0.2},
    "bool": {"bool": 1.0, "int": 0.5, "text": 0.3},
}
_KIND_WORDS = {
    "text": "text",
    "code": "codes",
    "int": "whole numbers",
    "decimal": "numbers",
    "money": "amounts",
    "date": "dates",
    "datetime": "dates and times",
    "bool": "yes/no values",
}


@dataclass(frozen=True)
class FieldChoice:
    """A field a header may map to: its name, what users read, its type and other names."""

    name: str
    label: str
    type: str = "text"
    synonyms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.name!r}: type must be one of {FIELD_TYPES}")


@dataclass(frozen=True)
class Suggestion:
    """The field suggested for one header (``None``: leave the column alone) and why."""

    header: str
    field: str | None
    confidence: float
    reason: str


def words(text: object) -> tuple[str, ...]:
    """A header as comparable words: camelCase split, lower case, ``#``/``no`` -> number."""
    if text is None:
        return ()
    raw = _CAMEL.sub(" ", str(text).strip()).replace("#", " number ")
    out = []
    for word in _NON_WORD.split(raw.casefold()):
        if not word:
            continue
        out.append("number" if word in _NUMBER_WORDS else word)
    return tuple(out)


def _stem(word: str) -> str:
    for suffix in ("ies", "ped", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _stems(text: object) -> frozenset[str]:
    return frozenset(_stem(w) for w in words(text))


def _sample_kind(value: object) -> str | None:
    """What one sample cell looks like, or None when blank."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, datetime):
        return "date" if value.time() == datetime.min.time() else "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, int | float | Decimal):
        return "int" if float(value).is_integer() else "decimal"
    text = str(value).strip()
    if text.casefold() in _TRUE_FALSE:
        return "bool"
    if _MONEY_TEXT.match(text):
        return "money"
    if _DATE_TEXT.match(text):
        return "datetime" if ":" in text else "date"
    if _NUMBER_TEXT.match(text):
        try:
            number = Decimal(text.replace(",", ""))
        except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
            return "text"
        return "int" if number == number.to_integral_value() else "decimal"
    if _CODE.match(text):
        return "code"
    return "text"


def column_kind(values: Sequence[object]) -> str | None:
    """What most non-blank samples of a column look like (None: no samples or no majority)."""
    kinds = Counter(k for k in map(_sample_kind, values) if k is not None)
    if not kinds:
        return None
    if set(kinds) <= {"int", "decimal"} and kinds["decimal"]:
        return "decimal"
    kind, count = kinds.most_common(1)[0]
    return kind if count * 5 >= sum(kinds.values()) * 3 else None


def _name_score(header: str, field: FieldChoice) -> tuple[float, str]:
    """How well a header's words name a field (0..1) and why."""
    hwords = words(header)
    if not hwords:
        return 0.0, ""
    if hwords == words(field.name) or hwords == words(field.label):
        return 1.0, f"the header is the name of {field.label}"
    for synonym in field.synonyms:
        if hwords == words(synonym):
            return 0.95, f'"{header.strip()}" is a usual name for {field.label}'
    hstems = _stems(header)
    best = 0.0
    for name in (field.name, field.label, *field.synonyms):
        stems = _stems(name)
        if not stems:
            continue
        if hstems == stems:
            return 0.9, f"the header reads as {field.label}"
        shared = len(hstems & stems) / len(hstems | stems)
        best = max(best, shared)
    if best > 0.5:  # most words shared ("Unit price USD"), not one of two ("Order")
        return 0.2 + 0.6 * best, f"the header resembles {field.label}"
    return 0.0, ""


def _score(header: str, kind: str | None, field: FieldChoice) -> tuple[float, str]:
    """Name score weighed by how well the samples fit the field's type."""
    score, reason = _name_score(header, field)
    if score == 0.0:
        return 0.0, ""
    if kind is None:
        return score, reason
    fit = _FIT.get(field.type, {}).get(kind, 0.1)
    if fit >= 1.0:
        return min(1.0, score + 0.05), f"{reason}; the values are {_KIND_WORDS[kind]}"
    return score * (0.3 + 0.7 * fit), f"{reason}, but the values are {_KIND_WORDS[kind]}"


def suggest_mapping(
    headers: Sequence[str],
    sample_rows: Sequence[Sequence[object]],
    fields: Sequence[FieldChoice],
) -> list[Suggestion]:
    """One suggestion per header, in order; each field is suggested for one header at most."""
    kinds = [
        column_kind([row[i] if i < len(row) else None for row in sample_rows])
        for i in range(len(headers))
    ]
    candidates: list[tuple[float, int, int, str]] = []
    for h, header in enumerate(headers):
        for f, field in enumerate(fields):
            score, reason = _score(str(header or ""), kinds[h], field)
            if score >= MIN_CONFIDENCE:
                candidates.append((score, h, f, reason))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    chosen: dict[int, Suggestion] = {}
    taken: dict[int, str] = {}
    lost: dict[int, str] = {}
    for score, h, f, reason in candidates:
        if h in chosen:
            continue
        if f in taken:
            lost.setdefault(h, f"{fields[f].label} is already mapped from {taken[f]!r}")
            continue
        chosen[h] = Suggestion(str(headers[h]), fields[f].name, round(score, 2), reason)
        taken[f] = str(headers[h])
    return [
        chosen.get(h)
        or Suggestion(str(header), None, 0.0, lost.get(h, "no field has a similar name"))
        for h, header in enumerate(headers)
    ]


def _row_score(row: Sequence[object], fields: Sequence[FieldChoice]) -> float:
    """How much a row looks like a header row: distinct labels that name fields."""
    texts = [str(v).strip() for v in row if isinstance(v, str) and v.strip()]
    others = sum(1 for v in row if _sample_kind(v) not in (None, "text", "code"))
    if len(texts) < 2:
        return 0.0
    named = sum(
        1 for t in set(texts) if any(_name_score(t, f)[0] >= MIN_CONFIDENCE for f in fields)
    )
    return 3.0 * named + len(set(texts)) - 2.0 * others


def find_header_row(
    rows: Sequence[Sequence[object]], fields: Sequence[FieldChoice], max_scan: int = 20
) -> int:
    """The 1-based row most likely to hold the headers among the first ``max_scan`` rows.

    A header row has several distinct text cells, names known fields and is not mostly
    numbers or dates; a title above the table (one cell) or notes never win. Ties go to the
    upper row; with nothing that looks like headers, row 1.
    """
    best_row, best_score = 1, 0.0
    for index, row in enumerate(rows[:max_scan], start=1):
        score = _row_score(row, fields)
        if score > best_score:
            best_row, best_score = index, score
    return best_row
