"""One pipeline for actions on records, shared by the REST API and the HTML forms.

The actions themselves are tables in this package, one module per record kind
(:mod:`.sales_orders`, :mod:`.shipments`, :mod:`.returns`, :mod:`.finance`), with the JSON
bodies' schemas in :mod:`.schemas` and the forms' in :mod:`.forms`; ``portal.api`` and
``portal.views`` both run them.

:func:`perform` runs an :class:`Action` the same way whatever the transport:

1. the record by id, or 404 (unknown, not a whole number, or out of SQL INTEGER range);
2. the body (read by the transport: JSON for the API, form fields for views; 400 if unreadable)
   loaded by the action's marshmallow schema, 422 per field;
3. the lines the body names must be the record's own lines, or 404;
4. the service call with the request's actor; a ``ServiceError`` becomes its status
   (403/404/409/422) with the message and field errors.

Any failure rolls the session back, so nothing half-done stays in it and the next request
starts clean. A permission denial is audited (``<action>_refused``) here, once: a refusal
the service already audited itself is not audited twice. FAB's own 403s (no permission on
the route) are audited through :func:`record_route_denial` by the transport.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from portal.actions.labels import INVALID_INPUT, per_line, refusal_text
from portal.actors import current_actor
from portal.extensions import db
from portal.services import audit, refusals
from portal.services.base import Actor, NotFound, PermissionDenied, ServiceError

MAX_INT = 2**31 - 1  # SQL INTEGER: ids and quantities
_REFUSALS = "refusals_committed"

Call = Callable[[Any, Actor, dict[str, Any]], Any]


@dataclass(frozen=True)
class Action:
    """One action on one kind of record.

    ``call(record, actor, body)`` is the service call (``record`` is ``None`` when the action
    names no record, as a create does); ``schema`` loads the body (``None``: the call gets the
    body as sent and loads it itself); ``line_ids(body)`` lists the line ids the body names,
    each of which must be on the record; ``status`` is the HTTP status of success.
    """

    name: str
    model: type
    call: Call
    schema: type[Schema] | None = Schema
    line_ids: Callable[[dict[str, Any]], Iterable[int]] | None = None
    status: int = 200
    body_required: bool = False

    @property
    def entity(self) -> str:
        """The audit trail's name of the record kind (its table name)."""
        return self.model.__tablename__


@dataclass(frozen=True)
class Outcome:
    """What an action came to: a status, the service's result, or an error body."""

    status: int
    result: Any = None
    error: dict[str, Any] | None = None
    line_numbers: Mapping[int, int] | None = None  # a refused per-line field's line, by id

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def category(self) -> str:
        """The flash category of the outcome."""
        return "success" if self.ok else "danger"

    @property
    def message(self) -> str:
        """The error as one line of text for a page's flash message, fields named by their
        labels ("Product: pick one"); empty on success. The API answers ``error`` itself."""
        if self.error is None:
            return ""
        message = self.error["message"]
        if isinstance(message, dict):
            return refusal_text(message, self.line_numbers)
        fields = self.error.get("errors")
        if isinstance(fields, dict) and str(message).startswith(INVALID_INPUT):
            return refusal_text(fields, self.line_numbers)
        return str(message)


def _line_numbers(record: Any, errors: Any) -> dict[int, int] | None:
    """The record's line numbers by line id (an order's lines, a return's order lines), to
    name a refused per-line field (``qty_12``) as the page shows the line; read (after the
    rollback) only when ``errors`` name such a field."""
    if record is None or not isinstance(errors, Mapping) or not any(map(per_line, errors)):
        return None
    numbers: dict[int, int] = {}
    for line in getattr(record, "lines", None) or ():
        number = getattr(line, "line_no", None)
        if number is None:
            number = getattr(getattr(line, "order_line", None), "line_no", None)
        if number is not None:
            numbers[line.id] = number
    return numbers


def valid_id(pk: Any) -> bool:
    """Whether ``pk`` is a whole number that can be a record id."""
    try:
        return 1 <= int(pk) <= MAX_INT
    except (TypeError, ValueError):
        return False


def load(model: type, pk: Any) -> Any:
    """The ``model`` record with id ``pk``, or ``NotFound``."""
    record = db.session.get(model, int(pk)) if valid_id(pk) else None
    if record is None:
        raise NotFound(f"{model.__tablename__} {pk} does not exist")
    return record


# What a record's lines are "on", in the message about a line that is not one of them.
_NOUNS = {"sales_order": "order", "return_authorization": "return"}


def _check_lines(record: Any, entity: str, line_ids: Iterable[int]) -> None:
    own = {line.id for line in record.lines}
    for line_id in line_ids:
        if line_id not in own:
            raise NotFound(f"line {line_id} is not on this {_NOUNS.get(entity, entity)}")


def record_denial(
    actor: Actor, entity: str, entity_id: Any, action: str, error: ServiceError
) -> None:
    """Audit a refused ``action`` as ``<action>_refused`` (in a transaction of its own)."""
    refusals.record_refusal(actor, entity, entity_id, action, error)


def record_route_denial(actor: Actor, model: type, pk: Any, action: str) -> None:
    """FAB refused the route of ``action`` on record ``pk`` for want of the permission: audit
    it as the pipeline audits a service's refusal (nothing to refuse on a missing record)."""
    if pk is not None and (not valid_id(pk) or db.session.get(model, int(pk)) is None):
        return
    entity = model.__tablename__
    error = PermissionDenied(f"{actor.name} may not {action} {entity} records")
    record_denial(actor, entity, pk, action, error)


@event.listens_for(Session, "before_commit", insert=True)
def _count_refusals(sess: Session) -> None:
    """Count the refusals services audit themselves (before the audit chain takes them)."""
    if sess.in_nested_transaction():  # a savepoint released: counted at the real commit
        return
    pending = sess.info.get(audit.PENDING, ())
    count = sum(1 for item in pending if item.action.endswith("_refused"))
    if count:
        sess.info[_REFUSALS] = sess.info.get(_REFUSALS, 0) + count


def perform(action: Action, pk: Any, read: Callable[[], Mapping[str, Any]], source: str) -> Outcome:
    """Run ``action`` on record ``pk`` (``None``: no record) with the body ``read`` returns."""
    sess = db.session
    refusals = sess.info.get(_REFUSALS, 0)
    actor: Actor | None = None
    record: Any = None
    try:
        record = load(action.model, pk) if pk is not None else None
        raw = read()
        body = action.schema().load(raw) if action.schema is not None else dict(raw)
        if action.line_ids is not None:
            _check_lines(record, action.entity, action.line_ids(body))
        actor = current_actor(source)
        result = action.call(record, actor, body)
    except BadRequest as error:
        sess.rollback()
        return Outcome(400, error={"message": error.description})
    except ValidationError as error:
        sess.rollback()
        numbers = _line_numbers(record, error.messages)
        return Outcome(422, error={"message": error.messages}, line_numbers=numbers)
    except ServiceError as error:
        sess.rollback()
        numbers = _line_numbers(record, error.field_errors)
        audited = sess.info.get(_REFUSALS, 0) != refusals
        if isinstance(error, PermissionDenied) and actor is not None and not audited:
            record_denial(actor, action.entity, pk, action.name, error)
        return Outcome(error.status, error=error.to_dict(), line_numbers=numbers)
    return Outcome(action.status, result=result)
