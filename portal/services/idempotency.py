"""Idempotency keys for API creates: a retried request gets the first answer, never a twin.

``claim`` inserts the key in its own transaction before the work starts, so two concurrent
requests with the same key cannot both proceed (the unique constraint refuses the second).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import IdempotencyKey
from portal.services.base import ConflictError, ValidationFailed


@dataclass
class Claim:
    """A claimed key, or the stored answer to replay."""

    row_id: int | None
    replay: tuple[int, dict[str, Any]] | None = None


def claim(key: str, user_id: int | None, endpoint: str, request_hash: str) -> Claim:
    """Reserve ``key`` for this request, or return the first request's response."""
    if user_id is None:
        raise ValidationFailed({"Idempotency-Key": ["needs a signed-in user"]})
    existing = db.session.execute(
        select(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.endpoint == endpoint,
            IdempotencyKey.key == key,
        )
    ).scalar_one_or_none()
    if existing is None:
        row = IdempotencyKey(key=key, user_id=user_id, endpoint=endpoint, request_hash=request_hash)
        db.session.add(row)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise ConflictError(
                "A request with this Idempotency-Key is being processed; retry shortly."
            ) from None
        return Claim(row.id)
    if existing.request_hash != request_hash:
        raise ValidationFailed(
            {"Idempotency-Key": ["was already used with a different request body"]}
        )
    if existing.status_code is None:
        raise ConflictError(
            "A request with this Idempotency-Key is being processed; retry shortly."
        )
    return Claim(existing.id, (existing.status_code, json.loads(existing.response_body or "{}")))


def complete(claimed: Claim, status_code: int, body: dict[str, Any]) -> None:
    """Store the response to replay for later requests with the same key."""
    row = db.session.get(IdempotencyKey, claimed.row_id)
    row.status_code = status_code
    row.response_body = json.dumps(body, default=str)
    db.session.commit()


def release(claimed: Claim) -> None:
    """Free the key after a failed request, so a corrected retry may use it."""
    row = db.session.get(IdempotencyKey, claimed.row_id)
    if row is not None:
        db.session.delete(row)
        db.session.commit()
