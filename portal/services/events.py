"""What the services announce once a transaction commits, and who listens.

Services never import ``jobs``: a service calls :func:`announce` inside its unit of work, and
when that transaction commits every handler subscribed to the name runs with the payload (on
rollback nothing runs). The background side subscribes at start-up (``jobs.handlers.register``,
called by ``create_app``), so every process that writes — web, worker, CLI, tests — reacts alike.

Announcements:

- ``stock_received(product_id, open_backorders)`` — a goods receipt was booked; the
  product had open backorders when it committed.
- ``notification_queued()`` — one or more messages were added to the outbox.
- ``records_changed(changed, records)`` — the transaction wrote audited records: ``changed``
  is the sorted tuple of ``(entity, actor)`` pairs of its audit events, ``records`` of
  ``(entity, actor, record id, status it left)`` (id ``""`` when an event named no record,
  status ``""`` unless the event moved its status) — announced here, at commit, for every
  service write, so trackers can sync within seconds (``jobs.live``) and only those whose
  filter can hold what changed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from portal.services import audit
from portal.services.base import after_commit

log = logging.getLogger(__name__)

STOCK_RECEIVED = "stock_received"
NOTIFICATION_QUEUED = "notification_queued"
RECORDS_CHANGED = "records_changed"
NAMES = (STOCK_RECEIVED, NOTIFICATION_QUEUED, RECORDS_CHANGED)

Handler = Callable[..., None]
_handlers: dict[str, list[Handler]] = {}


def _known(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"unknown announcement {name!r}; known: {', '.join(NAMES)}")
    return name


def subscribe(name: str, handler: Handler) -> None:
    """Run ``handler(**payload)`` after each commit that announced ``name`` (once per handler)."""
    handlers = _handlers.setdefault(_known(name), [])
    if handler not in handlers:
        handlers.append(handler)


def unsubscribe(name: str, handler: Handler) -> None:
    """Stop running ``handler`` for ``name`` (no error if it was not subscribed)."""
    handlers = _handlers.get(_known(name), [])
    if handler in handlers:
        handlers.remove(handler)


def announce(name: str, **payload: Any) -> None:
    """Tell the subscribers of ``name`` once the current transaction commits.

    The same announcement (name and payload) made twice in one transaction is delivered once.
    """
    key = f"event:{_known(name)}:{sorted(payload.items())!r}"
    after_commit(functools.partial(_deliver, name, payload), key=key)


def _deliver(name: str, payload: dict[str, Any]) -> None:
    """Run the handlers; the change is committed already, so a failing handler is only logged."""
    for handler in list(_handlers.get(name, ())):
        try:
            handler(**payload)
        except Exception:
            log.exception("handler %r of %s%r failed", handler, name, payload)


@sa_event.listens_for(Session, "before_commit")
def _announce_changed_records(sess: Session) -> None:
    """Announce ``records_changed`` for a transaction that recorded audit events."""
    if sess.in_nested_transaction():  # a savepoint released: announced at the real commit
        return
    changed = sess.info.pop(audit.CHANGED, None)
    if changed and _handlers.get(RECORDS_CHANGED):
        records = {(e, a, _record_id(ref), left) for e, a, ref, left in changed}
        payload = {
            "changed": tuple(sorted({(e, a) for e, a, _, _ in records})),
            "records": tuple(sorted(records)),
        }
        deliver = functools.partial(_deliver, RECORDS_CHANGED, payload)
        after_commit(deliver, key=f"event:{RECORDS_CHANGED}", sess=sess)


def _record_id(ref: Any) -> str:
    """The id of an audited record as text ("" when the event named none)."""
    if hasattr(ref, "__mapper__"):
        return "" if ref.id is None else str(ref.id)
    return "" if ref is None else str(ref)
