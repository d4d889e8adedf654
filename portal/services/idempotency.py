"""Idempotency keys for API creates: a retried request gets the first answer, never a twin.

``claim`` inserts the key in its own transaction before the work starts, so two concurrent
requests with the same key cannot both proceed (the unique constraint refuses the second).
Keys do not live forever: a claim whose request never completed (the process crashed between
claim and complete) may be taken again after ``IDEMPOTENCY_CLAIM_SECONDS``, and a completed
key is replayed for ``IDEMPOTENCY_RETENTION_SECONDS`` after its request, then forgotten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, delete, or_, select

from portal.extensions import db
from portal.models import IdempotencyKey, utcnow
from portal.services.base import ConflictError, ValidationFailed, unit_of_work

BUSY = "A request with this Idempotency-Key is being processed; retry shortly."


@dataclass
class Claim:
    """A claimed key, or the stored answer to replay."""

    row_id: int | None
    replay: tuple[int, dict[str, Any]] | None = None


def _expired(now: datetime) -> Any:
    """SQL condition of keys that may be forgotten: stale claims and old completed keys."""
    settings = current_app.config
    claimed_before = now - timedelta(seconds=settings["IDEMPOTENCY_CLAIM_SECONDS"])
    kept_from = now - timedelta(seconds=settings["IDEMPOTENCY_RETENTION_SECONDS"])
    return or_(
        and_(IdempotencyKey.status_code.is_(None), IdempotencyKey.created_at < claimed_before),
        and_(IdempotencyKey.status_code.is_not(None), IdempotencyKey.created_at < kept_from),
    )


def claim(key: str, user_id: int | None, endpoint: str, request_hash: str) -> Claim:
    """Reserve ``key`` for this request, or return the first request's response."""
    if user_id is None:
        raise ValidationFailed({"Idempotency-Key": ["needs a signed-in user"]})
    same_key = (
        IdempotencyKey.user_id == user_id,
        IdempotencyKey.endpoint == endpoint,
        IdempotencyKey.key == key,
    )
    now = utcnow()
    existing = db.session.execute(
        select(IdempotencyKey).where(*same_key, ~_expired(now))
    ).scalar_one_or_none()
    if existing is None:
        row = IdempotencyKey(
            key=key, user_id=user_id, endpoint=endpoint, request_hash=request_hash, created_at=now
        )
        try:
            with unit_of_work() as sess:
                # An expired row of this key gives way; if two requests race for it, the
                # unique constraint lets one of them in.
                sess.execute(delete(IdempotencyKey).where(*same_key, _expired(now)))
                sess.add(row)
        except ConflictError:
            raise ConflictError(BUSY) from None
        return Claim(row.id)
    if existing.request_hash != request_hash:
        raise ValidationFailed(
            {"Idempotency-Key": ["was already used with a different request body"]}
        )
    if existing.status_code is None:
        raise ConflictError(BUSY)
    return Claim(existing.id, (existing.status_code, json.loads(existing.response_body or "{}")))


def complete(claimed: Claim, status_code: int, body: dict[str, Any]) -> None:
    """Store the response to replay for later requests with the same key."""
    with unit_of_work() as sess:
        row = sess.get(IdempotencyKey, claimed.row_id)
        if row is not None:  # gone only if the claim expired and another request took the key
            row.status_code = status_code
            row.response_body = json.dumps(body, default=str)


def release(claimed: Claim) -> None:
    """Free the key after a failed request, so a corrected retry may use it."""
    with unit_of_work() as sess:
        row = sess.get(IdempotencyKey, claimed.row_id)
        if row is not None:
            sess.delete(row)


def purge_expired(now: datetime | None = None) -> int:
    """Delete expired keys (the periodic clean-up); returns how many."""
    with unit_of_work() as sess:
        return sess.execute(delete(IdempotencyKey).where(_expired(now or utcnow()))).rowcount
