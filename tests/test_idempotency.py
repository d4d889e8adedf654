"""Idempotency keys: replay, stale claims that may be taken again, and expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import update

from portal.extensions import db
from portal.models import IdempotencyKey, utcnow
from portal.services import idempotency
from portal.services.base import ConflictError

ENDPOINT = "sales_order.post"


def _age(key: str, seconds: float) -> None:
    """Make ``key``'s claim ``seconds`` old."""
    db.session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.key == key)
        .values(created_at=utcnow() - timedelta(seconds=seconds))
    )
    db.session.commit()


def test_a_claim_whose_request_crashed_can_be_taken_again_after_the_claim_time(clean_db) -> None:
    claim_seconds = current_app.config["IDEMPOTENCY_CLAIM_SECONDS"]
    idempotency.claim("crash-1", 1, ENDPOINT, "a" * 64)
    # the request died here: never completed, never released
    with pytest.raises(ConflictError, match="being processed"):
        idempotency.claim("crash-1", 1, ENDPOINT, "a" * 64)
    _age("crash-1", claim_seconds - 5)
    with pytest.raises(ConflictError, match="being processed"):
        idempotency.claim("crash-1", 1, ENDPOINT, "a" * 64)
    _age("crash-1", claim_seconds + 1)
    again = idempotency.claim("crash-1", 1, ENDPOINT, "a" * 64)
    assert again.replay is None
    idempotency.complete(again, 201, {"id": 7})
    assert idempotency.claim("crash-1", 1, ENDPOINT, "a" * 64).replay == (201, {"id": 7})
    assert db.session.query(IdempotencyKey).filter_by(key="crash-1").count() == 1


def test_a_completed_key_is_replayed_until_its_retention_ends(clean_db) -> None:
    retention = current_app.config["IDEMPOTENCY_RETENTION_SECONDS"]
    assert retention > current_app.config["IDEMPOTENCY_CLAIM_SECONDS"]
    done = idempotency.claim("kept", 1, ENDPOINT, "b" * 64)
    idempotency.complete(done, 201, {"id": 1})
    _age("kept", retention - 60)
    assert idempotency.claim("kept", 1, ENDPOINT, "b" * 64).replay == (201, {"id": 1})
    _age("kept", retention + 1)
    fresh = idempotency.claim("kept", 1, ENDPOINT, "c" * 64)  # a new body is fine: forgotten
    assert fresh.replay is None


def test_purge_deletes_only_expired_keys(clean_db) -> None:
    config = current_app.config
    for key in ("stale-claim", "open-claim", "old-answer", "new-answer"):
        claimed = idempotency.claim(key, 1, ENDPOINT, "d" * 64)
        if key.endswith("answer"):
            idempotency.complete(claimed, 201, {})
    _age("stale-claim", config["IDEMPOTENCY_CLAIM_SECONDS"] + 1)
    _age("old-answer", config["IDEMPOTENCY_RETENTION_SECONDS"] + 1)
    _age("new-answer", config["IDEMPOTENCY_CLAIM_SECONDS"] + 1)  # answers outlive claims
    assert idempotency.purge_expired() == 2
    left = {row.key for row in db.session.query(IdempotencyKey)}
    assert left == {"open-claim", "new-answer"}
