"""The append-only, hash-chained audit trail.

Every service write appends one event in the same transaction as the change. Each event
stores the hash of the previous one, and a single head row stores the last event's id and
hash, so altering, removing or truncating events breaks the chain and :func:`verify` names the
first bad event.

An event's hash is an HMAC-SHA256 with a key kept outside the database (``audit_keys``), so
whoever can write the tables cannot recompute a valid chain; events written before keyed
hashing (``key_id`` null) keep their plain SHA-256 as legacy events. Signed checkpoints of
the head, appended to a file outside the database (``audit_checkpoint``), catch removing the
latest events together with rewinding the head row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.models import AuditChainHead, AuditEvent, utcnow
from portal.services import audit_checkpoint, audit_keys
from portal.services.actor import Actor

GENESIS_HASH = "0" * 64


def plain(value: Any) -> Any:
    """A JSON-safe, lossless form of a field value (Decimal and dates as strings)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool | int | str | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


@dataclass(slots=True)
class PendingEvent:
    """An event of the current transaction, written when it commits."""

    occurred_at: datetime
    actor: str
    source: str
    entity: str
    entity_id: str | None
    action: str
    changes: str
    record: Any = None  # a new record whose id becomes entity_id at commit
    id: int | None = None
    prev_hash: str | None = None
    hash: str | None = None
    key_id: str | None = None


def event_hash(event: AuditEvent | PendingEvent) -> str:
    """HMAC-SHA256, with the key named by ``key_id``, over the event's canonical content
    (key id included) and the previous event's hash; plain SHA-256 without the key id for a
    legacy event (``key_id`` None). Raises ``audit_keys.UnknownKeyError`` for an unknown key.
    """
    content = {
        "prev": event.prev_hash,
        "at": event.occurred_at.isoformat(timespec="microseconds"),
        "actor": event.actor,
        "source": event.source,
        "entity": event.entity,
        "entity_id": event.entity_id,
        "action": event.action,
        "changes": event.changes,
    }
    if event.key_id is not None:
        content["key"] = event.key_id
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return audit_keys.digest(event.key_id, payload.encode())


def record(
    actor: Actor,
    entity: str,
    entity_id: Any,
    action: str,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Add one event to the current transaction; it joins the chain when that commits.

    Events wait in the session until commit, where :func:`_chain_pending` links them all
    under one lock of the chain head, so a transaction pays for the lock once however many
    events it writes, and a rolled-back transaction leaves no event behind. ``entity_id``
    may be the record itself: a new record's id is then read at commit, after the final
    flush, so a service needs no flush of its own just to learn the id.
    """
    record_of_event = entity_id if hasattr(entity_id, "__mapper__") else None
    changes: dict[str, Any] = {}
    if before:
        changes["before"] = plain(dict(before))
    if after:
        changes["after"] = plain(dict(after))
    if detail:
        changes["detail"] = plain(dict(detail))
    event = PendingEvent(
        occurred_at=utcnow(),
        actor=actor.name,
        source=actor.source,
        entity=entity,
        entity_id=None if entity_id is None or record_of_event else str(entity_id),
        action=action,
        changes=json.dumps(changes, sort_keys=True, separators=(",", ":")),
        record=record_of_event,
    )
    db.session.info.setdefault(PENDING, []).append(event)
    ref = record_of_event if record_of_event is not None else event.entity_id
    moved = before is not None and after is not None and "status" in before and "status" in after
    left = str(before["status"]) if moved else ""  # type: ignore[index]
    db.session.info.setdefault(CHANGED, {})[(entity, actor.name, ref, left)] = None


PENDING = "audit_pending"
# (entity, actor, record or id, status it left or "") of the transaction's events, in order:
# events.RECORDS_CHANGED announces them
CHANGED = "audit_changed"


@sa_event.listens_for(Session, "before_commit")
def _chain_pending(sess: Session) -> None:
    """Link the transaction's events onto the chain, holding the head row's lock.

    The ``UPDATE … RETURNING`` locks the head row on PostgreSQL and takes SQLite's write lock,
    so concurrent commits append one after the other and never fork the chain. Under that
    lock the events take the ids after the head's, so ids are gap-free and follow the chain,
    and they are written with one multi-row INSERT.
    """
    if sess.in_nested_transaction():  # a savepoint released: chained at the real commit
        return
    pending: list[PendingEvent] = sess.info.pop(PENDING, [])
    if not pending:
        return
    if any(event.record is not None for event in pending):
        sess.flush()
        for event in pending:
            if event.record is not None:
                event.entity_id = str(event.record.id)
    head = sess.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == 1)
        .values(last_event_id=AuditChainHead.last_event_id)
        .returning(AuditChainHead.last_event_id, AuditChainHead.last_hash)
    ).first()
    if head is None:
        sess.execute(insert(AuditChainHead).values(id=1, last_event_id=0, last_hash=GENESIS_HASH))
        last_id, previous = 0, GENESIS_HASH
    else:
        last_id, previous = head
    columns = [column.key for column in AuditEvent.__table__.columns]
    key_id = audit_keys.current_id()
    rows = []
    for offset, item in enumerate(pending, start=1):
        item.id = last_id + offset
        item.prev_hash = previous
        item.key_id = key_id
        item.hash = previous = event_hash(item)
        rows.append({name: getattr(item, name) for name in columns})
    sess.execute(insert(AuditEvent.__table__), rows)
    sess.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == 1)
        .values(last_event_id=last_id + len(pending), last_hash=previous)
    )


@sa_event.listens_for(Session, "after_rollback")
def _drop_pending(sess: Session) -> None:
    if sess.in_nested_transaction():  # a savepoint: services.transactions keeps the rest
        return
    sess.info.pop(PENDING, None)
    sess.info.pop(CHANGED, None)


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of a chain verification: ``ok``, how many events, the first problem.

    ``legacy`` counts the unkeyed events written before keyed hashing, ``checkpoints`` the
    checkpoints that held; ``bad_checkpoint`` is the failing checkpoint's line in the file.
    ``last_id`` and ``last_hash`` are the verified chain's end.
    """

    ok: bool
    checked: int
    bad_event_id: int | None = None
    problem: str | None = None
    legacy: int = 0
    checkpoints: int = 0
    bad_checkpoint: int | None = None
    last_id: int = 0
    last_hash: str = GENESIS_HASH


@dataclass(slots=True)
class _Walk:
    """The state of a walk along the chain in id order."""

    expected_prev: str = GENESIS_HASH
    previous_id: int | None = None
    checked: int = 0
    legacy: int = 0
    keyed: bool = False

    def step(self, event: AuditEvent) -> str | None:
        """Check ``event`` as the chain's next one: what is wrong with it, else None."""
        if event.prev_hash != self.expected_prev:
            where = f"after event {self.previous_id}" if self.previous_id else "at the start"
            return (
                f"event {event.id} does not follow the chain: an event {where} was "
                "removed or altered"
            )
        if event.key_id is None and self.keyed:
            return (
                f"event {event.id} has no key id after keyed events: it was rewritten with an "
                "unkeyed hash"
            )
        try:
            expected = event_hash(event)
        except audit_keys.UnknownKeyError as error:
            return f"event {event.id} names a {error}"
        if not audit_keys.same(expected, event.hash):
            how = f"HMAC with key {event.key_id!r}" if event.key_id else "legacy unkeyed hash"
            return f"event {event.id} was altered (hash mismatch: {how})"
        self.expected_prev = event.hash
        self.previous_id = event.id
        self.checked += 1
        self.legacy += event.key_id is None
        self.keyed = self.keyed or event.key_id is not None
        return None


def _events(batch_size: int) -> Iterator[AuditEvent]:
    """Every event in id order, loaded a batch at a time and released after it."""
    sess = db.session
    last_id = 0
    while True:
        events = (
            sess.execute(
                select(AuditEvent)
                .where(AuditEvent.id > last_id)
                .order_by(AuditEvent.id)
                .limit(batch_size)
            )
            .scalars()
            .all()
        )
        if not events:
            return
        yield from events
        last_id = events[-1].id
        for event in events:
            sess.expunge(event)


def verify(batch_size: int = 5000, *, checkpoints: bool = True) -> VerifyResult:
    """Recompute the whole chain with the audit keys, then hold it against the checkpoints;
    report the first altered, removed or reordered event, or the first failing checkpoint.
    """
    walk = _Walk()
    for event in _events(batch_size):
        problem = walk.step(event)
        if problem is not None:
            return VerifyResult(False, walk.checked, event.id, problem, walk.legacy)
    end_id = walk.previous_id or 0
    head = db.session.get(AuditChainHead, 1)
    head_id, head_hash = (head.last_event_id, head.last_hash) if head else (0, GENESIS_HASH)
    if head_id != end_id or head_hash != walk.expected_prev:
        return VerifyResult(
            False,
            walk.checked,
            head_id or None,
            f"the chain ends at event {end_id} but its head names event {head_id}: "
            "the latest events were removed",
            walk.legacy,
        )
    held = 0
    if checkpoints:
        held, bad = audit_checkpoint.check(end_id, walk.legacy)
        if bad is not None:
            return VerifyResult(
                False,
                walk.checked,
                bad.event_id,
                bad.text,
                legacy=walk.legacy,
                checkpoints=held,
                bad_checkpoint=bad.line,
            )
    return VerifyResult(
        True,
        walk.checked,
        legacy=walk.legacy,
        checkpoints=held,
        last_id=end_id,
        last_hash=walk.expected_prev,
    )


def checkpoint() -> tuple[VerifyResult, audit_checkpoint.Checkpoint | None]:
    """Verify the chain, then append a signed checkpoint of its end to the checkpoint file.

    A broken chain gets no checkpoint (the result says why), so a checkpoint only ever
    vouches for a chain that verified.
    """
    result = verify()
    if not result.ok:
        return result, None
    point = audit_checkpoint.sign(result.last_id, result.last_hash, result.checked, result.legacy)
    audit_checkpoint.append(point)
    return result, point


def history(entity: str, entity_id: Any) -> list[AuditEvent]:
    """Every event of one record, oldest first (what a Specialist sees on a record)."""
    return list(
        db.session.execute(
            select(AuditEvent)
            .where(AuditEvent.entity == entity, AuditEvent.entity_id == str(entity_id))
            .order_by(AuditEvent.id)
        ).scalars()
    )
