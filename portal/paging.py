"""Paging of every HTML list and REST list: counts that do not scan, and keyset pages.

``PagedInterface`` is the datamodel of the portal's list views and resources (FAB's
``SQLAInterface`` with FAB's ``query`` replaced):

- **Counts** are exact up to ``LIST_EXACT_COUNT_LIMIT`` rows, counted as
  ``SELECT count(*) FROM (… LIMIT n + 1)`` so no count reads more than n + 1 rows. Above it,
  on PostgreSQL, the count is the planner's estimate (``EXPLAIN (FORMAT JSON)``'s rows, never
  less than n + 1) and flagged as one: "about 1,000,000" in the HTML lists,
  ``count_is_estimate`` in the REST answers. SQLite has no estimate and counts exactly.
  The estimate of a list (its query and values) is kept by the process for
  ``LIST_ESTIMATE_SECONDS`` (30 unless set; 0: not kept), so the pages that follow ask the
  database for their rows only; an exact count is never kept.
- **Keyset pages**: a list sorted on a non-null column of its record (the default sort is the
  id) pages with a cursor: the sort key of the page's last (or first) row, ties broken by the
  id, so the next page is ``WHERE (key, id) > (…) ORDER BY key, id LIMIT n`` and reads only
  its rows however deep it is. A view or resource may break a sort's ties on more columns
  first (``keyset_ties = {"status": ("order_date",)}``). Cursors are opaque and signed with
  the app's secret; one that was altered or belongs to another list is refused
  (:class:`CursorError`, a 400; a cursor of another sort of the list is :class:`SortChanged`).
  A page asked by number is an ``OFFSET`` page, as are the pages of a sort on a nullable or
  related column, whose cursors carry the page number instead of a key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import current_app, g
from flask_appbuilder.models.sqla.interface import SQLAInterface
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Column, asc, desc, func, inspect, select, tuple_
from sqlalchemy.orm import joinedload, scoped_session

DEFAULT_EXACT_COUNT_LIMIT = 10_000
DEFAULT_ESTIMATE_SECONDS = 30
KEPT_ESTIMATES = 1_000  # lists (queries and values) whose estimate a process keeps at most
MAX_KEY_TEXT = 400  # a cursor's key values are column values; nothing longer is one


class CursorError(ValueError):
    """A cursor this list did not give (altered, another list's, another sort's)."""


class SortChanged(CursorError):
    """A cursor of this list, given for another sort (the list was sorted anew since)."""


@dataclass(frozen=True)
class Count:
    """A list's count: exact, or the planner's estimate above the exact-count limit."""

    value: int
    estimate: bool = False


@dataclass(frozen=True)
class Cursor:
    """A position in a sorted list: after (``forward``) or before the row with ``key``."""

    sort: tuple[str, str]
    key: tuple[Any, ...]
    forward: bool
    page: int  # the number of the page it leads to (0-based), for the page links


@dataclass
class Page:
    """What one list query found."""

    count: Count
    items: list[Any]
    page: int
    next: str | None = None
    previous: str | None = None
    keyset: bool = field(default=False)


def exact_count_limit() -> int:
    """``LIST_EXACT_COUNT_LIMIT``: up to this many rows a list's count is exact."""
    return int(current_app.config.get("LIST_EXACT_COUNT_LIMIT", DEFAULT_EXACT_COUNT_LIMIT))


def kept_estimates() -> dict[str, tuple[float, int]]:
    """The process's estimates: list query and values → (kept until, rows)."""
    return current_app.extensions.setdefault("orderbridge_list_estimates", {})


def _list_key(statement: Any, limit: int) -> tuple | None:
    """What tells a list's count from another's: its query's SQLAlchemy cache key (the
    statement's shape, cheap to make, unlike compiling it) and the values bound into it."""
    cache_key = statement._generate_cache_key()
    if cache_key is None:  # a statement SQLAlchemy cannot key is not kept
        return None
    return limit, cache_key.key, repr([bound.effective_value for bound in cache_key.bindparams])


def _serializer(table: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"orderbridge.paging.{table}")


def _python_type(column: Column) -> type:
    kind = column.type
    impl = getattr(kind, "impl", None)
    try:
        return kind.python_type
    except NotImplementedError:
        return impl.python_type if impl is not None else str


def _encode(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decode(column: Column, value: Any) -> Any:
    kind = _python_type(column)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise CursorError("cursor: not a cursor of this list")
    if isinstance(value, str) and len(value) > MAX_KEY_TEXT:
        raise CursorError("cursor: not a cursor of this list")
    try:
        if kind is datetime:
            return datetime.fromisoformat(str(value))
        if kind is date:
            return date.fromisoformat(str(value))
        if kind is Decimal:
            return Decimal(str(value))
        if kind is int:
            if not isinstance(value, int):
                raise CursorError("cursor: not a cursor of this list")
            return value
    except (ValueError, InvalidOperation) as error:
        raise CursorError("cursor: not a cursor of this list") from error
    return str(value)


def joined_path(model: Any, name: str) -> Any:
    """A ``joinedload`` of the relations along ``name`` (``invoice.customer``: the invoice
    and its customer; ``invoice.balance``: the invoice), or ``None`` if it names none."""
    option, owner = None, model
    for part in name.split("."):
        relation = inspect(owner).relationships.get(part)
        if relation is None:
            break
        attribute = getattr(owner, part)
        option = joinedload(attribute) if option is None else option.joinedload(attribute)
        owner = relation.mapper.class_
    return option


class PagedInterface(SQLAInterface):
    """FAB's SQLAlchemy datamodel whose list query counts without scanning and pages by key.

    FAB's list views and ``ModelRestApi`` call :meth:`query`; the portal's list views and
    resources call :meth:`find_page` for the cursors as well.
    """

    keyset_ties: dict[str, tuple[str, ...]] = {}

    def __init__(self, obj: type, session: Any = None) -> None:
        super().__init__(obj, session)
        self._unfiltered_queries: dict[tuple[str, ...], Any] = {}

    # --- counting --------------------------------------------------------------------------

    def count(self, query: Any) -> Count:
        """The count of ``query``'s rows: exact up to the limit, else the planner's estimate
        (kept for ``LIST_ESTIMATE_SECONDS``)."""
        limit = exact_count_limit()
        bind = self.session.get_bind()
        estimating = bind.dialect.name == "postgresql"
        key = _list_key(query.statement, limit) if estimating else None
        kept = kept_estimates().get(key) if key is not None else None
        if kept is not None and kept[0] > time.monotonic():
            return Count(kept[1], estimate=True)
        bounded = query.limit(limit + 1).subquery()
        exact = self.session.execute(select(func.count()).select_from(bounded)).scalar_one()
        if exact <= limit:
            return Count(exact)
        if not estimating:
            counted = query.subquery()
            total = self.session.execute(select(func.count()).select_from(counted)).scalar_one()
            return Count(total)
        compiled = query.statement.compile(
            dialect=bind.dialect, compile_kwargs={"render_postcompile": True}
        )
        plan = (
            self.session.connection()
            .exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params)
            .scalar_one()
        )
        if isinstance(plan, str):
            plan = json.loads(plan)
        rows = max(int(plan[0]["Plan"]["Plan Rows"]), limit + 1)
        seconds = current_app.config.get("LIST_ESTIMATE_SECONDS", DEFAULT_ESTIMATE_SECONDS)
        if seconds and key is not None:
            estimates = kept_estimates()
            if len(estimates) >= KEPT_ESTIMATES:
                estimates.clear()
            estimates[key] = (time.monotonic() + seconds, rows)
        return Count(rows, estimate=True)

    def query_count(
        self, query: Any, filters: Any = None, select_columns: list[str] | None = None
    ) -> int:
        inner = self._apply_inner_all(
            query, filters, select_columns=select_columns, aliases_mapping={}
        )
        return self.count(inner).value

    # --- sorting ---------------------------------------------------------------------------

    def key_columns(self, order_column: str, ties: dict[str, tuple[str, ...]]) -> list[Column]:
        """The columns of a keyset sort on ``order_column`` (ties broken by ``ties`` and the
        id), or ``[]`` when the sort cannot page by key (a nullable or related column)."""
        pk = self.get_pk()
        names = [order_column, *ties.get(order_column, ())] if order_column else []
        columns: list[Column] = []
        table = self.obj.__table__.columns
        for name in names:
            column = table.get(name)
            if column is None or column.nullable or self.is_relation(name):
                return []
            if column is not pk and column not in columns:
                columns.append(column)
        return [*columns, pk]

    # --- cursors ---------------------------------------------------------------------------

    def make_cursor(self, cursor: Cursor) -> str:
        payload = {
            "s": list(cursor.sort),
            "k": [_encode(value) for value in cursor.key],
            "f": int(cursor.forward),
            "p": cursor.page,
        }
        return _serializer(self.obj.__tablename__).dumps(payload)

    def read_cursor(self, text: str, sort: tuple[str, str], columns: list[Column]) -> Cursor:
        """The cursor ``text`` for a list sorted by ``sort``; :class:`CursorError` if it is
        not one this list gave for that sort."""
        try:
            payload = _serializer(self.obj.__tablename__).loads(text)
        except BadSignature as error:
            raise CursorError("cursor: not a cursor of this list (altered or expired)") from error
        if not isinstance(payload, dict):
            raise CursorError("cursor: not a cursor of this list")
        if payload.get("s") != list(sort):
            raise SortChanged("cursor: made for another sort of this list; start again")
        key, page = payload.get("k"), payload.get("p")
        if not isinstance(key, list) or len(key) != len(columns):
            raise CursorError("cursor: not a cursor of this list")
        if isinstance(page, bool) or not isinstance(page, int) or not 0 <= page < 2**31:
            raise CursorError("cursor: not a cursor of this list")
        values = tuple(_decode(column, value) for column, value in zip(columns, key, strict=True))
        return Cursor(sort, values, bool(payload.get("f")), page)

    # --- the list query --------------------------------------------------------------------

    def default_sort(self, order_column: str, order_direction: str) -> tuple[str, str]:
        """The sort a list applies: the one asked, else by id (a stable order to page in)."""
        if order_column:
            return order_column, order_direction or "asc"
        return self.get_pk_name(), "asc"

    def find_page(
        self,
        filters: Any = None,
        order_column: str = "",
        order_direction: str = "",
        page: int | None = None,
        page_size: int | None = None,
        select_columns: list[str] | None = None,
        cursor: str | None = None,
        ties: dict[str, tuple[str, ...]] | None = None,
        related: tuple[str, ...] = (),
    ) -> Page:
        """One page of the list, its count and the cursors of the pages either side.

        ``cursor`` (text from an earlier page) wins over ``page``; :class:`CursorError` if it
        is not one of this list's for this sort. The many-to-one relations named in
        ``related`` are joined into the page's query (the records a list shows by name; a
        dotted name such as ``invoice.customer`` joins each relation on its path).
        """
        order_column, order_direction = self.default_sort(order_column, order_direction)
        sort = (order_column, order_direction)
        columns = self.key_columns(order_column, self.keyset_ties if ties is None else ties)
        asked = self.read_cursor(cursor, sort, columns) if cursor else None
        size = page_size or 0
        base = self._list_query(filters, select_columns)
        count = self.count(base)
        base = base.options(*filter(None, (joined_path(self.obj, name) for name in related)))
        if asked is not None and size and columns:
            items, more = self._keyset_rows(base, columns, order_direction, asked, size)
            number = asked.page if asked.forward or more else 0
            before, after = (True, more) if asked.forward else (more, True)
            number = max(number, 1) if before else number
        else:
            number = asked.page if asked is not None else page or 0
            way = asc if order_direction == "asc" else desc
            if columns:  # in key order, so a page asked by number and the next one agree
                query = base.order_by(*(way(column) for column in columns))
            else:
                query = self._apply_inner_all(
                    base, None, order_column, order_direction, aliases_mapping={}
                )
            if size:
                query = query.offset(number * size).limit(size + 1)
            items = self._entities(query.all())
            more = bool(size) and len(items) > size
            items = items[:size] if size else items
            before, after = number > 0, more
        found = Page(count, items, number, keyset=bool(columns))
        if items and size:
            sides = ((after, items[-1], True, number + 1), (before, items[0], False, number - 1))
            for wanted, row, forward, target in sides:
                if wanted:
                    key = tuple(getattr(row, column.key) for column in columns)
                    text = self.make_cursor(Cursor(sort, key, forward, target))
                    setattr(found, "next" if forward else "previous", text)
        return found

    def _list_query(self, filters: Any, select_columns: list[str] | None) -> Any:
        """The list's query before sorting and paging: FAB's, filtered. A list without
        filters reuses the one built by its first page (per column set): FAB builds it
        with its joins and column options, which costs more than reading the page."""
        if filters is not None and filters.filters:
            return self._apply_inner_all(
                self.session.query(self.obj), filters, select_columns=select_columns,
                aliases_mapping={},
            )  # fmt: skip
        kept = self._unfiltered_queries
        key = tuple(select_columns or ())
        if key not in kept:
            kept[key] = self._apply_inner_all(
                self.session.query(self.obj), None, select_columns=select_columns,
                aliases_mapping={},
            )  # fmt: skip
        session = self.session
        return kept[key].with_session(session() if isinstance(session, scoped_session) else session)

    def _keyset_rows(
        self, base: Any, columns: list[Column], direction: str, asked: Cursor, size: int
    ) -> tuple[list[Any], bool]:
        """The ``size`` rows after (or before) the cursor's key, in list order, and whether
        there are more beyond them."""
        ascending = (direction == "asc") == asked.forward
        row = tuple_(*columns)
        bound = row > tuple_(*asked.key) if ascending else row < tuple_(*asked.key)
        way = asc if ascending else desc
        query = base.filter(bound).order_by(*(way(column) for column in columns))
        items = self._entities(query.limit(size + 1).all())
        more = len(items) > size
        items = items[:size]
        if not asked.forward:
            items.reverse()
        return items, more

    def _entities(self, rows: list[Any]) -> list[Any]:
        name = self.obj.__name__
        return [getattr(row, name) if hasattr(row, name) else row for row in rows]

    def query(
        self,
        filters: Any = None,
        order_column: str = "",
        order_direction: str = "",
        page: int | None = None,
        page_size: int | None = None,
        select_columns: list[str] | None = None,
        outer_default_load: bool = False,
    ) -> tuple[int, list[Any]]:
        """FAB's list query, counted and paged as :meth:`find_page` does; the page found is
        kept for the request (:func:`last_page`) so a resource can answer with its cursors."""
        if select_columns and self.exists_col_to_many(select_columns):
            return super().query(
                filters, order_column, order_direction, page, page_size, select_columns,
                outer_default_load,
            )  # fmt: skip
        found = self.find_page(
            filters,
            order_column,
            order_direction,
            page,
            page_size,
            select_columns,
            cursor=g.pop("_ob_list_cursor", None),
        )
        g._ob_list_page = found
        return found.count.value, found.items


def ask_cursor(cursor: str | None) -> None:
    """Hand the request's ``cursor`` to the next list query of this request."""
    g._ob_list_cursor = cursor or None


def last_page() -> Page | None:
    """The page the request's last list query found."""
    return g.get("_ob_list_page")
