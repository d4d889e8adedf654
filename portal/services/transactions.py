"""Many writes in one transaction, each in a savepoint of its own (sheet batches).

A sheet's bulk edits and new rows are applied :data:`~portal.sync.adapters.BATCH_ROWS` at a
time: one transaction, one commit, but each row inside a ``SAVEPOINT`` so a row the services
refuse (a validation, a state transition, a stale record, a constraint) is rolled back alone
with its error, and the other rows of the batch keep what they did. The session's
transaction-scoped bookkeeping (audit events waiting for the commit, after-commit callbacks,
the changed-record announcement) is kept for the applied rows and dropped for the refused
ones, as a transaction per row would; the session's commit and rollback handlers ignore the
end of a savepoint (``Session.in_nested_transaction()``), so the batch's audit events are
chained and its callbacks run once, at the real commit.

A failure that ends the whole transaction (a service rolled it back) raises
:class:`BatchBroken`; the caller applies the batch again row by row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from portal.services import audit, integrity
from portal.services.base import ConflictError, ServiceError, session

T = TypeVar("T")
R = TypeVar("R")

_AFTER_COMMIT = "after_commit"  # base.after_commit's session key
STALE = (
    "This record was changed by someone else while you were editing it; "
    "reload it and apply your change again."
)


class BatchBroken(ConflictError):
    """The batch's transaction ended under it (rolled back): apply its rows one by one."""


def _begin(sess: Session) -> None:
    """Open the database transaction before the first savepoint.

    pysqlite begins a transaction only before a data change; a ``SAVEPOINT`` issued outside
    one would itself be the transaction, and its ``RELEASE`` would commit the batch so far.
    """
    raw = sess.connection().connection.dbapi_connection
    if type(raw).__module__.startswith("sqlite3") and not raw.in_transaction:
        raw.execute("BEGIN")


@contextmanager
def _kept(sess: Session) -> Iterator[None]:
    """If the block raises, forget what it added to the session's transaction-scoped lists:
    audit events waiting for the commit, after-commit callbacks, changed records. (The
    session's handlers leave these alone when a savepoint ends: ``in_nested_transaction``.)"""
    info = sess.info
    pending = info.setdefault(audit.PENDING, [])
    callbacks = info.setdefault(_AFTER_COMMIT, {})
    changed = info.setdefault(audit.CHANGED, {})
    waiting, queued, touched = len(pending), len(callbacks), len(changed)
    try:
        yield
    except BaseException:
        del pending[waiting:]
        for key in list(callbacks)[queued:]:
            del callbacks[key]
        for key in list(changed)[touched:]:
            del changed[key]
        raise


def each_in_savepoint(items: Sequence[T], apply: Callable[[T], R]) -> list[R | ServiceError]:
    """``apply`` each item in a savepoint of the caller's unit of work; per item, what it
    returned or the :class:`ServiceError` that refused it (its savepoint rolled back).

    Each savepoint is flushed before it is released, so a stale version or a constraint is
    the item's own error. Raises :class:`BatchBroken` if the transaction itself was rolled
    back (nothing of the batch survives: the caller retries it a row per transaction).
    """
    sess = session()()  # the scoped session's own Session (it proxies no in_transaction)
    _begin(sess)
    outcomes: list[R | ServiceError] = []
    for item in items:
        try:
            with _kept(sess), sess.begin_nested():
                result = apply(item)
        except ServiceError as error:
            outcomes.append(error)
        except IntegrityError as error:
            outcomes.append(ConflictError(*integrity.describe(error)))
        except StaleDataError:
            outcomes.append(ConflictError(STALE))
        else:
            outcomes.append(result)
        if not sess.in_transaction():
            raise BatchBroken("the batch's transaction was rolled back; applying row by row")
    return outcomes


def refusal(outcome: Any) -> ServiceError | None:
    """The error of an :func:`each_in_savepoint` outcome (None: applied)."""
    return outcome if isinstance(outcome, ServiceError) else None


@contextmanager
def rehearsal() -> Iterator[Session]:
    """A transaction that is always rolled back (a dry run): the services called inside run
    every check and write as they would, their units of work join it and never commit, and
    at the end everything — records, audit events, after-commit work — is dropped.

    While it lasts it holds what it wrote (row locks on PostgreSQL, the write lock on
    SQLite), like any transaction that writes."""
    sess = session()
    depth = sess.info.get("uow_depth", 0)
    sess.info["uow_depth"] = depth + 1  # nested: no unit of work inside commits
    try:
        yield sess
    finally:
        sess.info["uow_depth"] = depth
        sess.rollback()
        for key in (audit.PENDING, audit.CHANGED, _AFTER_COMMIT):
            sess.info.pop(key, None)
