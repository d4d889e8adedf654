"""Routing FAB's generic create/edit through the service layer.

FAB's ModelView and ModelRestApi populate a model object from a form or a JSON payload and
then hand it to their datamodel. Here that object is only a carrier: its new values (or its
changed attributes, read from SQLAlchemy's history and then reverted) are passed to the
record's service, which validates, locks, writes and audits. Nothing is written any other way.

:class:`ShownInterface` is the datamodel of the lists and record pages: it loads what a page
shows and nothing more.
"""

from __future__ import annotations

from typing import Any

from flask_appbuilder.models.filters import Filters
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy import bindparam, inspect
from sqlalchemy.orm import RelationshipProperty, joinedload, lazyload

from portal.actions.labels import INVALID_INPUT, refusal_text
from portal.actors import current_actor
from portal.extensions import db
from portal.paging import PagedInterface
from portal.services.base import RecordService, ServiceError, pin


class ServiceRefused(Exception):
    """A service refused a UI write; FAB flashes ``str()`` of it to the user (the fields
    named by their labels, as on every page)."""

    def __init__(self, error: ServiceError):
        labelled = error.field_errors and error.message.startswith(INVALID_INPUT)
        super().__init__(refusal_text(error.field_errors) if labelled else error.message)
        self.error = error


def _foreign_key_of(prop: RelationshipProperty) -> str | None:
    columns = list(prop.local_columns)
    if prop.direction.name == "MANYTOONE" and len(columns) == 1:
        return columns[0].key
    return None


def new_values(item: Any) -> dict[str, Any]:
    """The values a form or payload set on a new, transient ``item``."""
    state = inspect(item)
    values: dict[str, Any] = {}
    for attr in state.attrs:
        hist = attr.history
        if not hist.added:
            continue
        prop = state.mapper.get_property(attr.key)
        value = hist.added[0]
        if isinstance(prop, RelationshipProperty):
            fk = _foreign_key_of(prop)
            if fk is not None:
                values[fk] = value.id if value is not None else None
            continue
        values[attr.key] = value
    if item in db.session:
        db.session.expunge(item)
    return values


def pending_changes(item: Any) -> tuple[dict[str, Any], int | None]:
    """Changed attributes of a loaded ``item`` and the version the editor saw; then revert.

    Reverting (a rollback of the session) leaves ``item`` as stored, so the service sees the
    record as it is and the requested changes separately.
    """
    state = inspect(item)
    changes: dict[str, Any] = {}
    expected_version: int | None = None
    for attr in state.attrs:
        hist = attr.history
        if not hist.has_changes():
            continue
        prop = state.mapper.get_property(attr.key)
        new = hist.added[0] if hist.added else None
        if attr.key == "version":
            try:
                expected_version = int(new)
            except (TypeError, ValueError):
                expected_version = -1
            continue
        if isinstance(prop, RelationshipProperty):
            fk = _foreign_key_of(prop)
            if fk is not None:
                changes[fk] = new.id if new is not None else None
            continue
        if isinstance(new, str) and not new.strip():
            new = None  # a blank text box means "no value", not an empty string
        old = hist.deleted[0] if hist.deleted else None
        if new == old:
            continue  # e.g. a blank field that was already empty
        changes[attr.key] = new
    db.session.rollback()
    return changes, expected_version


EAGER = ("selectin", "joined", "subquery", "immediate")
RECORD_ID = "ob_record_id"  # the bound id of ShownInterface's record query


class ShownInterface(PagedInterface):
    """The lists' datamodel (counted and paged by :class:`PagedInterface`), loading a list's
    rows (and a record page's row) with what they show.

    A collection the model loads eagerly by default (an order's ``lines``, for the services'
    batches) is not loaded unless asked for; the many-to-one relations a list shows
    (``shown``, set from the view's list columns) come joined into the page's query instead
    of one query per related row. Resources name their columns (``customer.name``), which
    FAB joins itself.
    """

    shown: tuple[str, ...] = ()

    def __init__(self, obj: type, session: Any = None) -> None:
        super().__init__(obj, session)
        self._record_queries: dict[tuple[str, ...], Any] = {}

    def _apply_inner_all(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        # the one step FAB's record lookup and every list page (``PagedInterface``) share
        options = self.load_options(kwargs)
        return super()._apply_inner_all(query.options(*options), *args, **kwargs)

    def get(
        self,
        id: Any,
        filters: Filters | None = None,
        select_columns: list[str] | None = None,
        outer_default_load: bool = False,
    ) -> Any:
        """FAB's record lookup; the record stays in the session's identity map for the rest
        of the request, so the page's own helpers find it without reading it again.

        A lookup by a whole-number id without base filters (a REST show, a record page)
        runs a query built once per column set: FAB's, with the id as a parameter, rather
        than FAB building it again (filters, joins, column options) on every request.
        """
        if (
            type(id) is not int
            or (filters is not None and filters.filters)
            or (select_columns and self.exists_col_to_many(select_columns))
            or self.is_pk_composite()
        ):
            return pin(db.session, super().get(id, filters, select_columns, outer_default_load))
        key = tuple(select_columns or ())
        query = self._record_queries.get(key)
        if query is None:
            built = self.apply_all(self.session.query(self.obj), select_columns=select_columns)
            query = built.filter(self.get_pk() == bindparam(RECORD_ID))
            self._record_queries[key] = query
        row = query.with_session(db.session()).params({RECORD_ID: id}).one_or_none()
        return pin(db.session, self._entities([row])[0] if row is not None else None)

    def load_options(self, kwargs: dict[str, Any]) -> list[Any]:
        mapper = inspect(self.obj)
        options: list[Any] = [
            lazyload(rel.class_attribute)
            for rel in mapper.relationships
            if rel.uselist and rel.lazy in EAGER
        ]
        if not kwargs.get("select_columns"):
            options += [joinedload(getattr(self.obj, name)) for name in self.shown]
        return options


def shown_relations(datamodel: SQLAInterface, columns: list[str]) -> tuple[str, ...]:
    """The many-to-one relations among a list's ``columns``."""
    return tuple(name for name in columns if datamodel.is_relation_many_to_one(name))


class ServiceInterface(ShownInterface):
    """FAB datamodel whose ``add`` and ``edit`` call a :class:`RecordService`."""

    def __init__(self, obj: type, service: RecordService, source: str = "web"):
        super().__init__(obj, db.session)
        self.service = service
        self.source = source

    def get_related_interface(self, col_name: str) -> SQLAInterface:
        return SQLAInterface(self.get_related_model(col_name), db.session)

    def add(self, item: Any, commit: bool = True) -> None:
        try:
            created = self.service.create(new_values(item), current_actor(self.source))
        except ServiceError as error:
            raise ServiceRefused(error) from error
        item.id = created.id

    def edit(self, item: Any, commit: bool = True) -> None:
        """Edits are applied in the view's ``pre_update``; nothing is left to write here."""
