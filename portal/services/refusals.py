"""Refused finance attempts are audited: ``<action>_refused`` with the reason.

Every refused attempt on invoices, payments, credit memos and disputes (wrong role,
segregation of duties, over the approval limit, wrong state) leaves the records unchanged and
is itself recorded, in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from portal.services import audit
from portal.services.base import Actor, AlreadyDecided, ServiceError, session, unit_of_work


def record_refusal(
    actor: Actor, entity: str, entity_id: Any, action: str, error: ServiceError
) -> None:
    """Commit an audit event ``<action>_refused`` with the reason (nothing else changes)."""
    session().rollback()
    with unit_of_work():
        audit.record(
            actor,
            entity,
            entity_id,
            f"{action}_refused",
            detail={"reason": error.message, "status": error.status},
        )


@contextmanager
def audited_refusal(actor: Actor, entity: str, entity_id: Any, action: str) -> Iterator[None]:
    """Audit a refused ``action`` (``<action>_refused``) in a transaction of its own.

    The refused change was rolled back by its unit of work; only the refusal is committed.
    Inside a caller's unit of work the outermost refusal is the one recorded. A decision
    repeated on a record already decided (:class:`AlreadyDecided`) is not a refusal.
    """
    try:
        yield
    except ServiceError as error:
        if session().info.get("uow_depth", 0) == 0 and not isinstance(error, AlreadyDecided):
            record_refusal(actor, entity, entity_id, action, error)
        raise
