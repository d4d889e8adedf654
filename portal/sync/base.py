"""What every record kind shares: its fields, the chunked record loop and the sheet actor.

A :class:`Kind` lists its records as plain dicts (one SQL query, no ORM objects: trackers hold
50,000 rows) through :func:`rows_by_key`, the one loop that reads all records or only some keys
in chunks, and applies sheet edits through the record's service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, select

from portal.extensions import db
from portal.models import Invoice, OrderStatus
from portal.services.base import Actor, NotFound, ServiceError, ValidationFailed
from portal.services.transactions import each_in_savepoint, refusal
from sheets.trackers import Column

Row = dict[str, Any]
Narrow = Callable[[Select, list[str]], Select]
# a service's batch path: (record, changes) pairs and the actor -> each one's error or None
BatchApply = Callable[[list[tuple[Any, dict[str, Any]]], Actor], list[ServiceError | None]]
CHUNK = 500  # keys per IN (...) query
CLOSED_ORDER_STATUSES = (
    OrderStatus.DELIVERED.value,
    OrderStatus.INVOICED.value,
    OrderStatus.CLOSED.value,
    OrderStatus.CANCELLED.value,
)


@dataclass(frozen=True)
class Field:
    """A field a tracker column may map: its type, and what the sheet may do with it."""

    name: str
    type: str = "text"
    editable: bool = False
    creatable: bool = False


def sheet_actor(tracker_name: str, actor: Actor | None = None) -> Actor:
    """The audit actor of writes made on behalf of a tracker: ``actor`` when a person
    syncs (the xlwings client in Excel), else the system actor ``sheet:<tracker>``."""
    return actor if actor is not None else Actor.system(f"sheet:{tracker_name}")


def select_chunks(
    query: Select, keys: Iterable[str] | None, narrow: Narrow
) -> Iterator[tuple[frozenset[str] | None, Sequence[Any]]]:
    """The rows of ``query``: all of them (``keys`` None), or those ``narrow(query, chunk)``
    selects for each chunk of ``keys``, each with the chunk's keys (None: all wanted)."""
    if keys is None:
        for values in db.session.execute(query):
            yield None, values
        return
    key_list = list(keys)
    for i in range(0, len(key_list), CHUNK):
        chunk = key_list[i : i + CHUNK]
        wanted = frozenset(chunk)
        for values in db.session.execute(narrow(query, chunk)):
            yield wanted, values


def rows_by_key(
    query: Select,
    names: list[str],
    key_field: str,
    keys: Iterable[str] | None,
    narrow: Narrow,
    finish: Callable[[Row], None] | None = None,
) -> dict[str, Row]:
    """key -> row (``names`` -> the query's columns, completed by ``finish``) for the records
    of ``query``, or only for ``keys``."""
    out: dict[str, Row] = {}
    for wanted, values in select_chunks(query, keys, narrow):
        row = dict(zip(names, values, strict=True))
        if finish is not None:
            finish(row)
        key = row[key_field]
        if wanted is None or key in wanted:
            out[key] = row
    return out


class Kind:
    """One kind of record a tracker can hold. Subclasses fill in the class attributes and
    :meth:`query`; ``columns`` maps each selected name to its SQL column."""

    name: str
    key_field: str
    key_header: str
    fields: dict[str, Field]
    filters: dict[str, str] = {}
    can_create: bool = False
    can_cancel: bool = False  # whether a deleted row may cancel the record
    preset: tuple[Column, ...] = ()
    choices: dict[str, tuple[str, ...]] = {}  # field -> allowed values (dropdowns in new books)
    columns: dict[str, Any] = {}
    # audit entities whose changes can change this kind's rows (a live sync follows them)
    entities: frozenset[str] = frozenset()
    batch_updates: bool = False  # update_many applies a sheet's many edits in one transaction

    def query(self, filter: str | None) -> Select:
        """The records inside ``filter`` (a select of :attr:`columns`)."""
        raise NotImplementedError

    def narrow(self, query: Select, keys: list[str]) -> Select:
        """``query`` cut down to (at least) the records ``keys``."""
        return query.where(self.columns[self.key_field].in_(keys))

    def finish(self, row: Row) -> None:
        """Complete a selected row with computed fields (and the key, if composed)."""

    def records(
        self, filter: str | None, wanted: Iterable[str], keys: Iterable[str] | None = None
    ) -> dict[str, Row]:
        """key -> field -> value for the records in ``filter`` (only ``keys`` if given)."""
        return rows_by_key(
            self.query(filter), list(self.columns), self.key_field, keys, self.narrow, self.finish
        )

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        """Apply ``changes`` (field -> value) to the record ``key``; raises ServiceError."""
        raise NotImplementedError

    def update_many(
        self, items: Sequence[tuple[str, Mapping[str, Any]]], actor: Actor, tracker_name: str
    ) -> list[ServiceError | None]:
        """Apply many ``(key, changes)`` in the caller's unit of work, each checked alone; the
        error of each (None: applied). Used when :attr:`batch_updates` is set.

        By default each edit is :meth:`update` in a savepoint of its own
        (``transactions.each_in_savepoint``): a refused edit is rolled back alone. Kinds
        with a set-based service path override it (:meth:`update_loaded`). A record changed
        meanwhile, or a transaction that ended, raises ``ConflictError`` (the caller then
        applies the edits one per transaction)."""

        def one(item: tuple[str, Mapping[str, Any]]) -> None:
            self.update(item[0], item[1], actor, tracker_name)

        return [refusal(outcome) for outcome in each_in_savepoint(items, one)]

    def update_loaded(
        self,
        items: Sequence[tuple[str, Mapping[str, Any]]],
        found: Mapping[str, Any],
        apply: BatchApply,
        actor: Actor,
    ) -> list[ServiceError | None]:
        """:meth:`update_many` of the records ``found`` (key -> record, loaded together):
        the fields checked per edit, then one ``apply`` (the service's batch path) of the
        rest."""
        outcomes: list[ServiceError | None] = [None] * len(items)
        todo: list[tuple[Any, dict[str, Any]]] = []
        where: list[int] = []
        for index, (key, changes) in enumerate(items):
            try:
                self.check_fields(changes, "editable")
                if key not in found:
                    raise NotFound(f"{self.name.replace('_', ' ')[:-1]} {key} does not exist")
            except ServiceError as error:
                outcomes[index] = error
                continue
            todo.append((found[key], dict(changes)))
            where.append(index)
        for index, error in zip(where, apply(todo, actor), strict=True):
            outcomes[index] = error
        return outcomes

    def create(self, values: Mapping[str, Any], actor: Actor) -> str:
        """Create a record from ``values`` (field -> value); its key. Raises ServiceError."""
        raise ServiceError(f"a tracker cannot add {self.name.replace('_', ' ')}")

    def cancel(self, key: str, actor: Actor, tracker_name: str) -> None:
        """Cancel the record ``key``, whose row was deleted from a tracker; raises ServiceError."""
        raise ServiceError(f"a tracker cannot cancel {self.name.replace('_', ' ')}")

    def check_fields(self, names: Iterable[str], how: str) -> None:
        """Refuse fields a sheet may not set (``how``: ``editable`` or ``creatable``)."""
        bad = {
            n: [f"is not {'editable' if how == 'editable' else 'settable'} from a tracker"]
            for n in names
            if n not in self.fields or not getattr(self.fields[n], how)
        }
        if bad:
            raise ValidationFailed(bad)

    # -- live sync: can a change be a row of a tracker with this filter? ------------------

    def touches(self, entity: str, ids: list[int]) -> ColumnElement[bool] | None:
        """A condition on :meth:`query`'s rows that a change of the ``entity`` records ``ids``
        can alter; None when the kind cannot tell (a change of it syncs every tracker)."""
        return None

    def left_filter(self, filter: str, entity: str, status: str) -> bool:
        """Whether an ``entity`` record that moved out of ``status`` may have been inside
        ``filter`` before (its row then changes: it is no longer synced). Unknown: True."""
        return True

    def may_hold(
        self,
        conn: Connection,
        filter: str | None,
        changed: Mapping[str, set[str]],
        left: Mapping[str, set[str]],
    ) -> bool:
        """Whether the records ``changed`` (entity -> ids) may be rows of a tracker with
        ``filter``: inside it now (one query per chunk of ids, on ``conn``), or moved out of a
        status inside it (``left``: entity -> statuses left). No filter: True."""
        if not filter:
            return True
        if any(self.left_filter(filter, e, s) for e, statuses in left.items() for s in statuses):
            return True
        conditions = []
        for entity, ids in changed.items():
            numbers = sorted(int(i) for i in ids if i.isdigit())
            if len(numbers) < len(ids):
                return True  # an event named no record: it may be any
            for start in range(0, len(numbers), CHUNK):
                condition = self.touches(entity, numbers[start : start + CHUNK])
                if condition is None:
                    return True
                conditions.append(condition)
        return any(
            conn.execute(self.query(filter).where(condition).limit(1)).first() is not None
            for condition in conditions
        )

    def current(self, key: str, filter: str | None, wanted: Iterable[str]) -> Row:
        """The record ``key`` as :meth:`records` lists it; NotFound outside the tracker."""
        row = self.records(filter, wanted, keys=[key]).get(key)
        if row is None:
            raise NotFound(f"{self.name.replace('_', ' ')} record {key} is not in this tracker")
        return row


def fields_of(*fields: Field) -> dict[str, Field]:
    """name -> field, in order."""
    return {f.name: f for f in fields}


def invoice_by_number(number: Any) -> Invoice:
    """The invoice a new row names; ValidationFailed if blank or unknown."""
    invoice = (
        db.session.execute(select(Invoice).where(Invoice.number == number)).scalar_one_or_none()
        if number
        else None
    )
    if invoice is None:
        raise ValidationFailed({"invoice": [f"{number or 'blank'}: no such invoice"]})
    return invoice
