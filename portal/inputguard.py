"""Malformed input is refused at the door with a 4xx naming the field, never a 500.

One ``before_request`` hook, :func:`check_request`, runs before any view, API or parser sees
the request and refuses:

* a JSON body nested deeper than :data:`MAX_DEPTH` levels (brackets counted outside
  strings, so Python's recursive JSON parser never sees it) — 400 "Request body is nested
  too deeply"; the API's rison ``q`` argument likewise;
* text PostgreSQL cannot store — a NUL character or an unpaired UTF-16 surrogate
  (``"\\ud800"`` in JSON) — in a JSON string, a query argument or a form field: 400
  "<field>: contains an invalid character" (the same check on SQLite, for one behaviour);
* a route's ``pk`` that cannot be a record id (not a whole number, or beyond SQL INTEGER):
  404;
* on FAB's HTML list pages: ``page_<View>`` / ``psize_<View>`` that are not whole numbers in
  range (400 naming the parameter, no clamping), ``_oc_<View>`` naming a column the list
  cannot be ordered by (400), and ``_flt_<n>_<column>`` search values of the wrong type for
  the column (400; see :func:`filter_value_problem`, which the REST API's list route uses for
  its rison ``filters`` too).

API requests get JSON (``message`` and ``errors`` by field), pages werkzeug's 400/404 page
with the message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from itertools import accumulate
from typing import Any

from flask import Flask, Response, abort, jsonify, request
from sqlalchemy import Boolean, Integer, Numeric, String, inspect

from portal.actions import MAX_INT, valid_id

MAX_DEPTH = 64
MAX_BIGINT = 2**63 - 1
MAX_PAGE = MAX_INT
MAX_PAGE_SIZE = 1000
MAX_NUMBER = Decimal(10) ** 15
INVALID_CHARACTER = "contains an invalid character"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
TOO_DEEP = "Request body is nested too deeply"

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# How NUL or a lone surrogate can appear in a JSON body: raw NUL, or a \u escape of either.
_JSON_BAD_TEXT = re.compile(rb"\x00|\\u(?:[dD][89a-fA-F][0-9a-fA-F]{2}|0000)")
_RISON_STRING = re.compile(r"'(?:[^'!]|!.)*'", re.DOTALL)
_PAGE_ARG = re.compile("(page|psize)_(.*)")  # FAB finds these anywhere in the argument name


def has_bad_text(value: str) -> bool:
    """Whether ``value`` holds a character PostgreSQL refuses (NUL, a lone surrogate)."""
    return _BAD_TEXT.search(value) is not None


def nesting_depth(text: Any, opens: Any, closes: Any) -> int:
    """The deepest bracket nesting of ``text`` (strings already removed)."""
    brackets = re.findall(b"[" + re.escape(opens + closes) + b"]", text)
    steps = (1 if bracket in opens else -1 for bracket in brackets)
    return max(accumulate(steps, initial=0))


def json_depth(body: bytes) -> int:
    """How deeply a JSON document nests arrays and objects (brackets in strings ignored)."""
    return nesting_depth(_JSON_STRING.sub(b'""', body), b"[{", b"]}")


def rison_depth(text: str) -> int:
    """How deeply a rison value nests, ``(`` counting for objects and ``!(`` for arrays."""
    stripped = _RISON_STRING.sub("''", text).encode("utf-8", "surrogatepass")
    return nesting_depth(stripped, b"(", b")")


def bad_text_path(value: Any, path: str = "") -> str | None:
    """The path (``name``, ``lines.0.note``) of the first string in a JSON value that holds
    a character PostgreSQL refuses, keys included; ``None`` if there is none."""
    if isinstance(value, str):
        return (path or "body") if has_bad_text(value) else None
    items: Iterator[tuple[Any, Any]]
    if isinstance(value, dict):
        for key in value:
            if has_bad_text(key):
                return f"{path}.(a field name)" if path else "(a field name)"
        items = iter(value.items())
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = bad_text_path(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


class Refused(Exception):
    """The request is refused: ``status`` with ``message`` about ``field``."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def _invalid(field: str) -> Refused:
    return Refused(400, f"{field}: {INVALID_CHARACTER}", field)


def _check_json_body() -> None:
    if not request.is_json:
        return
    body = request.get_data(cache=True)
    if not body:
        return
    if json_depth(body) > MAX_DEPTH:
        raise Refused(400, f"{TOO_DEEP} (more than {MAX_DEPTH} levels)")
    if not _JSON_BAD_TEXT.search(body):  # no walk of the parsed body when none can be there
        return
    parsed = request.get_json(silent=True)
    field = bad_text_path(parsed) if parsed is not None else None
    if field:
        raise _invalid(field)


def _check_fields(fields: Mapping[str, Any]) -> None:
    for name, values in fields.lists():  # type: ignore[attr-defined]
        if has_bad_text(name):
            raise _invalid("(a parameter name)")
        if any(isinstance(value, str) and has_bad_text(value) for value in values):
            raise _invalid(name)


def _check_pk() -> None:
    pk = (request.view_args or {}).get("pk")
    if pk is not None and not valid_id(pk):
        raise Refused(404, f"No record with id {str(pk)[:30]}")


def _check_rison() -> None:
    q = request.args.get("q")
    if q and rison_depth(q) > MAX_DEPTH:
        raise Refused(400, f"q: nested too deeply (more than {MAX_DEPTH} levels)", "q")


def check_request() -> Response | None:
    """``before_request``: refuse malformed input (see the module's docstring)."""
    try:
        _check_pk()
        _check_fields(request.args)
        _check_rison()
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            _check_json_body()
        if not request.path.startswith("/api/"):  # the API reads no forms: leave its body be
            if request.method == "POST" and request.mimetype in FORM_TYPES:
                _check_fields(request.form)
            _check_list_args()
    except Refused as refused:
        return _refusal(refused)
    return None


def _refusal(refused: Refused) -> Response:
    if request.path.startswith("/api/"):
        body: dict[str, Any] = {"message": refused.message}
        if refused.field:
            body["errors"] = {refused.field: [refused.message.split(": ", 1)[-1]]}
        response = jsonify(body)
        response.status_code = refused.status
        return response
    abort(refused.status, description=refused.message)


# --- FAB's list page arguments ------------------------------------------------------------


def _whole_number(text: str, low: int, high: int) -> bool:
    return text.isascii() and text.isdigit() and low <= int(text) <= high


def _views() -> dict[str, Any]:
    from portal.extensions import appbuilder

    return {type(view).__name__: view for view in appbuilder.baseviews}


def _check_list_args() -> None:
    views: dict[str, Any] | None = None
    for name, value in request.args.items():
        match = _PAGE_ARG.search(name)
        if match and match.group(1) == "page" and not _whole_number(value, 0, MAX_PAGE):
            raise Refused(400, f"{name}: must be a whole number from 0 to {MAX_PAGE}", name)
        if match and match.group(1) == "psize" and not _whole_number(value, 1, MAX_PAGE_SIZE):
            raise Refused(400, f"{name}: must be a whole number from 1 to {MAX_PAGE_SIZE}", name)
        if name.startswith("_oc_"):
            views = views if views is not None else _views()
            _check_order_column(views.get(name[4:]), name, value)
    if any(name.startswith("_flt_") for name in request.args):
        view = _views().get((request.endpoint or "").partition(".")[0])
        if view is not None and getattr(view, "datamodel", None) is not None:
            _check_list_filters(view)


def _check_order_column(view: Any, name: str, value: str) -> None:
    columns = getattr(view, "order_columns", None)
    if columns is not None and value not in columns:
        raise Refused(400, f"{name}: cannot order by {value[:60]!r}", name)


def _check_list_filters(view: Any) -> None:
    searchable = set(getattr(view, "search_columns", None) or ())
    pickers = getattr(view, "pickers", None) or {}  # a list's record pickers take an id
    model = view.datamodel.obj
    for name, values in request.args.lists():
        match = re.fullmatch(r"_flt_\d_(.*)", name)
        if not match or match.group(1) not in searchable:
            continue  # FAB ignores filters on columns that are not searchable
        picked = pickers.get(match.group(1))
        for value in values:
            if picked is not None and not valid_id(value.strip()):
                problem = "choose one of the records offered"
                raise Refused(400, f"{picked.label} filter: {problem}", name)
            problem = None if picked else filter_value_problem(model, match.group(1), value, True)
            if problem:
                raise Refused(400, f"{name}: {problem}", name)


# --- search values ------------------------------------------------------------------------


def _number_problem(value: Any) -> str | None:
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or abs(number) >= MAX_NUMBER:
        return "must be a number"
    return None


def _integer_problem(value: Any, limit: int) -> str | None:
    if isinstance(value, bool):
        return "must be a whole number"
    text = str(value).strip()
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or abs(int(text)) > limit:
        return f"must be a whole number from -{limit} to {limit}"
    return None


def _column_problem(column: Any, value: Any, web: bool) -> str | None:
    kind = column.type
    if isinstance(kind, Boolean):
        return None if isinstance(value, bool) or value == "y" else "must be true or false (y)"
    if isinstance(kind, Integer):
        if web and value == "":
            return None  # FAB's pages: no value given (FAB searches for NULL)
        limit = MAX_BIGINT if kind.__class__.__name__ == "BigInteger" else MAX_INT
        return _integer_problem(value, limit)
    if isinstance(kind, Numeric):
        return None if web and value == "" else _number_problem(value)
    if isinstance(kind, String) and not isinstance(value, str):
        return "must be text"
    if not isinstance(value, str | int | float | date | datetime):
        return "must be a single value"
    return None


def filter_value_problem(model: type, column: str, value: Any, web: bool = False) -> str | None:
    """Why ``value`` cannot be compared with ``model.column`` in a search, or ``None``.

    A relation takes a record id; a number column a number within range; a boolean
    ``true``/``false`` (FAB's pages send ``y``); a text column text. Lists (``in``
    filters) are checked item by item.
    """
    if isinstance(value, list):
        problems = (filter_value_problem(model, column, item, web) for item in value)
        return next((problem for problem in problems if problem), None)
    mapper = inspect(model)
    if column in mapper.relationships:
        return None if valid_id(value) and not isinstance(value, bool) else "must be a record id"
    table_column = model.__table__.columns.get(column)
    if table_column is None:
        return None  # not a column of this table: FAB refuses or ignores it
    return _column_problem(table_column, value, web)


def _compare_numbers_as_numbers() -> None:
    """Make FAB's search filters pass a number column's value as a ``Decimal``.

    FAB converts search values for integer, float, boolean and date columns only; a
    ``Numeric`` column (every amount) got the text, which PostgreSQL refuses to compare
    (``numeric > character varying``): a 500 on any amount search. Values reach this only
    after :func:`filter_value_problem` accepted them.
    """
    from flask_appbuilder.models.sqla import filters

    original = filters.set_value_to_type
    if getattr(original, "numeric_aware", False):
        return

    def set_value_to_type(datamodel: Any, column_name: str, value: Any) -> Any:
        table = getattr(datamodel.obj, "__table__", None)
        column = table.columns.get(column_name) if table is not None else None
        if column is not None and isinstance(column.type, Numeric):
            return None if _number_problem(value) else Decimal(str(value))
        return original(datamodel, column_name, value)

    set_value_to_type.numeric_aware = True  # type: ignore[attr-defined]
    filters.set_value_to_type = set_value_to_type


def init_app(app: Flask) -> None:
    """Register the hook first, before any other ``before_request`` reads the body."""
    app.before_request_funcs.setdefault(None, []).insert(0, check_request)
    _compare_numbers_as_numbers()
