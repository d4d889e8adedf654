"""Service errors, the unit of work and the generic record service (and the :class:`Actor`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeVar

from flask_appbuilder.models.sqla import Model
from sqlalchemy import Column, Table, bindparam, event, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history, set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from portal.extensions import db
from portal.services import audit, integrity, order_totals, service_level_marks
from portal.services.actor import Actor
from portal.services.bounds import entered_value_problem

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of the errors a service raises; ``status`` is the matching HTTP status."""

    status: ClassVar[int] = 400

    def __init__(self, message: str, field_errors: Mapping[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.field_errors = dict(field_errors or {})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.field_errors:
            body["errors"] = self.field_errors
        return body


class ValidationFailed(ServiceError):
    """Input broke a business rule; ``field_errors`` names each field and why."""

    status = 422

    def __init__(self, field_errors: Mapping[str, list[str]], message: str | None = None):
        summary = "; ".join(f"{name}: {', '.join(msgs)}" for name, msgs in field_errors.items())
        super().__init__(message or f"Invalid input — {summary}", field_errors)


class ConflictError(ServiceError):
    """A stale version or an illegal state transition; nothing was changed."""

    status = 409


class AlreadyDecided(ConflictError):
    """A decision (approve, reject, authorize) on a record that was already decided: a
    repeated click, not a refusal, so it is answered 409 and not audited as one."""


class NotFound(ServiceError):
    status = 404


class PermissionDenied(ServiceError):
    status = 403


def require(actor: Actor, permission: str, view_menu: str, doing: str) -> None:
    """Refuse ``actor`` unless it holds ``permission`` on ``view_menu``."""
    if not actor.can(permission, view_menu):
        raise PermissionDenied(f"{actor.name} may not {doing}")


def after_commit(
    callback: Callable[[], None], key: str | None = None, sess: Session | None = None
) -> None:
    """Run ``callback`` once the current transaction (of ``sess``) commits (dropped on
    rollback).

    Used to queue background work (sending mail, filling backorders) only when the records it
    needs are visible to other processes. Callbacks with the same ``key`` run once.
    """
    pending = (sess or session()).info.setdefault("after_commit", {})
    pending.setdefault(key or f"#{len(pending)}", callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(sess: Session) -> None:
    if sess.in_nested_transaction():  # a savepoint released: the transaction goes on
        return
    for callback in sess.info.pop("after_commit", {}).values():
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(sess: Session) -> None:
    if sess.in_nested_transaction():  # a savepoint: services.transactions keeps the rest
        return
    sess.info.pop("after_commit", None)


PINNED = "pinned_rows"


def pin(sess: Session, record: Any) -> Any:
    """Hold ``record`` in the identity map until the transaction ends.

    The identity map keeps rows only while something references them, so a row loaded just to
    check it (a foreign key's target, say) would be loaded again by the next relationship
    access; pinned, later ``order.customer`` style accesses are answered without a query.
    """
    if record is not None:
        sess.info.setdefault(PINNED, []).append(record)
    return record


def preload(sess: Session, model: type, ids: Iterable[Any], *options: Any) -> dict[Any, Any]:
    """Load the rows of ``model`` with these ids in one query and pin them (see :func:`pin`).

    A batch reads what its records refer to once, instead of once per record (and each
    miss would also flush everything the batch has built so far).
    """
    wanted = {value for value in ids if isinstance(value, int) and not isinstance(value, bool)}
    if not wanted:
        return {}
    query = select(model).where(model.id.in_(wanted)).options(*options)
    return {row.id: pin(sess, row) for row in sess.execute(query).scalars()}


@event.listens_for(Session, "after_transaction_end")
def _unpin(sess: Session, transaction: Any) -> None:
    if transaction.parent is None:
        sess.info.pop(PINNED, None)


def session() -> Session:
    """The scoped session services write through."""
    return db.session


def _rollback(sess: Session) -> None:
    """Roll back, forgetting the after-commit callbacks and audit events that waited.

    SQLAlchemy fires ``after_rollback`` only if the transaction had begun on the database; a
    unit of work that failed before its first statement must not leave them to the next commit.
    """
    sess.rollback()
    sess.info.pop("after_commit", None)
    sess.info.pop(audit.PENDING, None)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """Commit once at the outermost level; roll back everything on any error.

    Nested service calls join the outer unit of work, so a compound operation (a sheet row
    creating an order with lines, say) commits or fails as one.
    """
    sess = session()
    depth = sess.info.get("uow_depth", 0)
    sess.info["uow_depth"] = depth + 1
    try:
        yield sess
        if depth == 0:
            sess.commit()
    except StaleDataError as exc:
        _rollback(sess)
        raise ConflictError(
            "This record was changed by someone else while you were editing it; "
            "reload it and apply your change again."
        ) from exc
    except IntegrityError as exc:
        _rollback(sess)
        log.warning("the database refused a change: %s", exc.orig)
        raise ConflictError(*integrity.describe(exc)) from exc
    except OperationalError as exc:
        _rollback(sess)
        if "locked" not in str(exc.orig).lower():
            raise
        # SQLite refuses a write from a transaction whose snapshot another writer made stale.
        raise ConflictError("Another change was being saved at the same time; try again.") from exc
    except BaseException:
        if depth == 0:
            _rollback(sess)
        raise
    finally:
        sess.info["uow_depth"] = depth


def check_version(record: Any, expected_version: int | None) -> None:
    """Refuse an edit made against an older version of ``record``."""
    if expected_version is None:
        return
    if int(expected_version) != record.version:
        raise ConflictError(
            f"{type(record).__name__} {describe(record)} was changed by someone else "
            f"(now version {record.version}, you edited version {expected_version}); "
            "reload it and apply your change again.",
            {"version": [f"stale: current version is {record.version}"]},
        )


def save_versioned(sess: Session, records: Sequence[Any], fields: Sequence[str]) -> None:
    """Write the pending changes of ``fields`` of versioned rows of one model, one statement.

    The same optimistic lock as the ORM's flush (``WHERE version = :seen``, version + 1, and
    ``StaleDataError`` — a 409 — if any row was changed meanwhile), but one executemany
    UPDATE for every record with a change instead of one statement each. Columns with an
    ``onupdate`` (``updated_at``) are set as a flush would. The written values become the
    records' committed state, so a later flush does not write them again.
    """
    changed = [
        record
        for record in records
        if any(get_history(record, name).has_changes() for name in fields)
    ]
    if not changed:
        return
    model = type(changed[0])
    if any(type(record) is not model for record in changed):
        raise TypeError("save_versioned writes rows of one model at a time")
    table = model.__table__
    stamped = {
        column.key: column.onupdate.arg(None)
        for column in table.columns
        if column.onupdate is not None and column.onupdate.is_callable and column.key not in fields
    }
    rows = [
        {
            "row_id": record.id,
            "seen_version": record.version,
            "new_version": record.version + 1,
            **{f"new_{name}": getattr(record, name) for name in fields},
            **{f"new_{name}": value for name, value in stamped.items()},
        }
        for record in changed
    ]
    written = [*fields, *stamped]
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"), table.c.version == bindparam("seen_version"))
        .values(
            {name: bindparam(f"new_{name}") for name in written}
            | {"version": bindparam("new_version")}
        )
    )
    with sess.no_autoflush:  # the records' own pending values are written here, not flushed
        service_level_marks.mark_records(sess, changed)  # no flush: its listener won't see them
        matched = sess.execute(statement, rows).rowcount
    if matched != len(rows):
        raise StaleDataError(
            f"{model.__name__}: {len(rows) - matched} of {len(rows)} rows were changed "
            "by another transaction"
        )
    for record, row in zip(changed, rows, strict=True):
        for name in written:
            set_committed_value(record, name, row[f"new_{name}"])
        set_committed_value(record, "version", row["new_version"])
    if model.__tablename__ == "order_line" and set(fields) & set(order_totals.AMOUNT_FIELDS):
        order_totals.refresh(sess, (record.order_id for record in changed))


PREASSIGN_IDS_FROM = 20


def assign_ids(sess: Session, records: Sequence[Any]) -> None:
    """Give many new records of one model their ids from the table's sequence, in advance.

    With its ids known, the ORM inserts the rows as one pipelined executemany of a short,
    prepared statement instead of a multi-row ``INSERT … RETURNING id`` whose text grows with
    the batch (and is parsed anew each time). PostgreSQL only, and only for batches of
    ``PREASSIGN_IDS_FROM`` records or more; otherwise the flush fetches the ids as usual.
    """
    if len(records) < PREASSIGN_IDS_FROM or sess.get_bind().dialect.name != "postgresql":
        return
    table = type(records[0]).__table__
    sequence = func.pg_get_serial_sequence(table.name, "id")
    with sess.no_autoflush:  # the records must still be pending when their ids are set
        ids = sess.execute(
            select(func.nextval(sequence)).select_from(func.generate_series(1, len(records)))
        ).scalars()
    for record, new_id in zip(records, sorted(ids), strict=True):
        record.id = new_id


def upsert(table: Table) -> Any:
    """An INSERT of ``table`` that can add ``ON CONFLICT … DO UPDATE`` on this database.

    PostgreSQL and SQLite share the clause; SQLAlchemy has a construct for each.
    """
    if session().get_bind().dialect.name == "postgresql":
        return postgresql_insert(table)
    return sqlite_insert(table)


def describe(record: Any) -> str:
    for attr in ("number", "code", "sku", "username"):
        value = getattr(record, attr, None)
        if value:
            return str(value)
    return f"#{getattr(record, 'id', '?')}"


M = TypeVar("M")


class RecordService(Generic[M]):
    """Create and update one kind of record with validation, locking and audit.

    Subclasses name the model, the fields a caller may set, and add business rules in
    :meth:`validate`. Column lengths, required columns and unique columns are checked here
    from the model's own table so every channel gets the same field-level messages.
    """

    model: type[M]
    entity: str
    creatable: tuple[str, ...] = ()
    editable: tuple[str, ...] = ()
    permission_view: str = ""

    def get(self, record_id: int) -> M:
        record = session().get(self.model, record_id)
        if record is None:
            raise NotFound(f"{self.entity} {record_id} does not exist")
        return record

    def create(self, data: Mapping[str, Any], actor: Actor) -> M:
        """Create a record from ``data`` (only ``creatable`` fields) as ``actor``."""
        with unit_of_work() as sess:
            record = self.build(data, actor)
            sess.flush()
            self.after_create(sess, record, actor)
        return record

    def build(self, data: Mapping[str, Any], actor: Actor, **preset: Any) -> M:
        """Validate and add a new record without flushing it.

        Its INSERT waits for the next flush, so many records built in one unit of work are
        written together; ``preset`` gives generated fields (a number taken in advance).
        Models whose :meth:`after_create` adds rows are created with :meth:`create`.
        """
        self._require(actor, "can_write")
        unknown = sorted(set(data) - set(self.creatable))
        if unknown:
            raise ValidationFailed({name: ["unknown or read-only field"] for name in unknown})
        with unit_of_work() as sess:
            record = self.model(**{**self.defaults(), **preset})
            for name, value in data.items():
                setattr(record, name, value)
            self._validate_all(sess, record, set(data), is_new=True)
            sess.add(record)
            audit.record(
                actor,
                self.entity,
                record,
                "create",
                after={name: getattr(record, name) for name in self.audit_fields(data)},
            )
        return record

    def update(
        self,
        record: M,
        changes: Mapping[str, Any],
        actor: Actor,
        expected_version: int | None = None,
    ) -> M:
        """Apply ``changes`` to ``record`` as ``actor``; stale ``expected_version`` → 409."""
        self._require(actor, "can_write")
        self._refuse_unknown(changes)
        check_version(record, expected_version)
        with unit_of_work() as sess:
            with sess.no_autoflush:  # checks read related rows: never flush unchecked values
                changed = self._change(sess, record, changes, actor)
            if changed:
                sess.flush()
        return record

    def update_many(
        self, items: Sequence[tuple[M, Mapping[str, Any]]], actor: Actor
    ) -> list[ServiceError | None]:
        """Apply each ``(record, changes)`` as :meth:`update` would, in one unit of work.

        Each record is checked alone (the same rules and messages); a refused one keeps its
        stored values and its error is returned at its position (None: applied). The applied
        ones are written with one ``UPDATE … WHERE version = :seen`` executemany
        (:func:`save_versioned`), their audit events with one insert at commit. A record
        changed meanwhile fails the whole batch with ``ConflictError`` (nothing written).
        """
        self._require(actor, "can_write")
        outcomes: list[ServiceError | None] = []
        written: list[tuple[M, set[str]]] = []
        with unit_of_work() as sess, sess.no_autoflush:
            for record, changes in items:
                try:
                    changed = self._change(sess, record, changes, actor)
                except ServiceError as error:
                    sess.expire(record)  # drop the refused values
                    outcomes.append(error)
                    continue
                if changed:
                    written.append((record, changed))
                outcomes.append(None)
            fields = sorted(set().union(*(changed for _, changed in written)))
            save_versioned(sess, [record for record, _ in written], fields)
        return outcomes

    def _change(
        self, sess: Session, record: M, changes: Mapping[str, Any], actor: Actor
    ) -> set[str]:
        """Set, check and audit one record's changes without writing them; the changed names."""
        self._refuse_unknown(changes)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for name, value in changes.items():
            old = getattr(record, name)
            if old != value:
                before[name], after[name] = old, value
                setattr(record, name, value)
        if after:
            self._validate_all(sess, record, set(after), is_new=False)
            audit.record(actor, self.entity, record.id, "update", before=before, after=after)
        return set(after)

    # -- hooks -------------------------------------------------------------------------

    def defaults(self) -> dict[str, Any]:
        return {}

    def validate(self, sess: Session, record: M, changed: set[str]) -> dict[str, list[str]]:
        """Business rules beyond the table's own; return field → messages."""
        return {}

    def after_create(self, sess: Session, record: M, actor: Actor) -> None:
        """Create dependent rows (e.g. stock levels for a new product)."""

    def audit_fields(self, data: Mapping[str, Any]) -> Iterable[str]:
        return data.keys()

    # -- internals ---------------------------------------------------------------------

    def _refuse_unknown(self, changes: Mapping[str, Any]) -> None:
        unknown = sorted(set(changes) - set(self.editable))
        if unknown:
            raise ValidationFailed({name: ["unknown or read-only field"] for name in unknown})

    def _require(self, actor: Actor, permission: str) -> None:
        view = self.permission_view or type(self).__name__
        if not actor.can(permission, view):
            raise PermissionDenied(f"{actor.name} may not change {self.entity} records")

    def _validate_all(self, sess: Session, record: M, changed: set[str], is_new: bool) -> None:
        errors = table_errors(sess, record, changed, is_new)
        for name, messages in self.validate(sess, record, changed).items():
            errors.setdefault(name, []).extend(messages)
        if errors:
            raise ValidationFailed(errors)


@functools.cache
def _model_of_table(table: Table) -> type | None:
    for mapper in Model.registry.mappers:
        if mapper.local_table is table:
            return mapper.class_
    return None


def _referenced_row_exists(sess: Session, target: Column, value: Any) -> bool:
    """Whether the row a foreign key points at exists (from the identity map when loaded)."""
    model = _model_of_table(target.table)
    if model is not None and target.primary_key and isinstance(value, int):
        return pin(sess, sess.get(model, value)) is not None
    query = select(func.count()).select_from(target.table).where(target == value)
    return bool(sess.execute(query).scalar_one())


def table_errors(
    sess: Session, record: Any, changed: set[str], is_new: bool
) -> dict[str, list[str]]:
    """Required, length, uniqueness and entered-value checks derived from the model's table."""
    errors: dict[str, list[str]] = {}
    table = type(record).__table__
    for column in table.columns:
        name = column.key
        if column.primary_key or name == "version":
            continue
        value = getattr(record, name, None)
        if isinstance(value, str):
            value = value.strip()
            setattr(record, name, value)
            if value == "" and column.nullable:
                setattr(record, name, None)
                value = None
        if value in (None, "") and not column.nullable and column.default is None:
            if is_new or name in changed:
                errors.setdefault(name, []).append("is required")
            continue
        length = getattr(column.type, "length", None)
        if isinstance(value, str) and length and len(value) > length:
            errors.setdefault(name, []).append(f"is longer than {length} characters")
        if value is not None and (is_new or name in changed):
            problem = entered_value_problem(column, value)
            if problem is not None:
                errors.setdefault(name, []).append(problem)
            for foreign_key in column.foreign_keys:
                if not _referenced_row_exists(sess, foreign_key.column, value):
                    errors.setdefault(name, []).append(f"{value!s} does not exist")
        # A unique value this service generated (a sequence number) is left to the constraint.
        if column.unique and value is not None and name in changed:
            query = select(func.count()).select_from(table).where(column == value)
            if not is_new:
                query = query.where(table.c.id != record.id)
            if sess.execute(query).scalar_one():
                errors.setdefault(name, []).append(f"{value!s} is already used")
    return errors
