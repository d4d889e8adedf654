"""The one codec of the stored base snapshot: ``{key: {header: value}}`` <-> JSON-safe data.

Values are stored as :func:`sheets.values.encode` gives them (Decimals and dates as text);
headers the spec does not map are dropped. Fast enough for 50,000-row bases: stored values are
canonical (written by :func:`base_to_json` from normalised values), so decoding only converts
types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from sheets.plan import Base
from sheets.trackers import TrackerSpec
from sheets.values import encode

_DECODE: dict[str, Callable[[Any], Any]] = {
    "decimal": Decimal,
    "date": date.fromisoformat,
    "datetime": datetime.fromisoformat,
}


def _as_text(value: Any) -> str:
    return value.isoformat()


_ENCODE: dict[str, Callable[[Any], Any] | None] = {
    "text": None,
    "int": None,
    "bool": None,
    "decimal": lambda value: format(value, "f"),
    "date": _as_text,
    "datetime": _as_text,
}


def base_to_json(spec: TrackerSpec, base: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """JSON-safe form of a base snapshot (Decimal and dates as ISO text, as
    :func:`sheets.values.encode` gives them); one converter per column, looked up once."""
    coders = {c.header: _ENCODE.get(c.type, partial(encode, c.type)) for c in spec.columns}
    return {
        key: {
            h: v if v is None or (coder := coders[h]) is None else coder(v)
            for h, v in row.items()
            if h in coders
        }
        for key, row in base.items()
    }


def base_from_json(spec: TrackerSpec, data: Mapping[str, Mapping[str, Any]]) -> Base:
    """Inverse of :func:`base_to_json` (unknown headers are dropped)."""
    types = {c.header: c.type for c in spec.columns}
    out: Base = {}
    for key, row in data.items():
        new: dict[str, Any] = {}
        for h, v in row.items():
            t = types.get(h)
            if t is None:
                continue
            conv = _DECODE.get(t)
            new[h] = v if v is None or conv is None else conv(v)
        out[key] = new
    return out
