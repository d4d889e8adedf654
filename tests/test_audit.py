"""The hash-chained audit trail: every write is recorded, and tampering is detected."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from sqlalchemy import text

from portal.extensions import db
from portal.models import AuditEvent
from portal.services import audit, catalog
from tests.conftest import REPO, actor
from tests.factories import make_catalog


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", *args],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_each_write_appends_an_event_with_actor_source_and_changes(clean_db) -> None:
    data = make_catalog()
    supervisor = actor("supervisor", "web")
    catalog.customers.update(data.customer, {"credit_limit": Decimal("2500.00")}, supervisor)
    event = db.session.query(AuditEvent).order_by(AuditEvent.id.desc()).first()
    assert (event.actor, event.source, event.entity, event.action) == (
        "supervisor",
        "web",
        "customer",
        "update",
    )
    assert event.entity_id == str(data.customer.id)
    assert json.loads(event.changes) == {
        "before": {"credit_limit": "10000.00"},
        "after": {"credit_limit": "2500.00"},
    }
    assert audit.verify().ok


def test_chain_links_each_event_to_the_previous_one(clean_db) -> None:
    make_catalog()
    events = db.session.query(AuditEvent).order_by(AuditEvent.id).all()
    assert len(events) > 5
    assert events[0].prev_hash == audit.GENESIS_HASH
    for previous, event in itertools.pairwise(events):
        assert event.prev_hash == previous.hash
        assert event.hash == audit.event_hash(event)
    result = audit.verify()
    assert result.ok and result.checked == len(events)


def test_verify_cli_passes_on_an_intact_chain(clean_db) -> None:
    make_catalog()
    done = _cli("audit", "verify")
    assert done.returncode == 0, done.stderr
    assert "audit chain intact" in done.stdout


def test_altering_an_event_in_sql_fails_verification(clean_db) -> None:
    make_catalog()
    target = db.session.query(AuditEvent).order_by(AuditEvent.id).offset(3).first().id
    db.session.execute(
        text("UPDATE audit_event SET actor = 'mallory' WHERE id = :id"), {"id": target}
    )
    db.session.commit()
    result = audit.verify()
    assert not result.ok and result.bad_event_id == target
    done = _cli("audit", "verify")
    assert done.returncode == 1
    assert f"event {target}" in done.stderr


def test_altering_changes_json_fails_verification(clean_db) -> None:
    make_catalog()
    target = db.session.query(AuditEvent).order_by(AuditEvent.id).first().id
    db.session.execute(text("UPDATE audit_event SET changes = '{}' WHERE id = :id"), {"id": target})
    db.session.commit()
    assert audit.verify().bad_event_id == target


def test_deleting_an_event_in_sql_fails_verification(clean_db) -> None:
    make_catalog()
    ids = [row.id for row in db.session.query(AuditEvent.id).order_by(AuditEvent.id)]
    db.session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": ids[4]})
    db.session.commit()
    result = audit.verify()
    assert not result.ok and result.bad_event_id == ids[5]
    done = _cli("audit", "verify")
    assert done.returncode == 1 and f"event {ids[5]}" in done.stderr


def test_deleting_the_latest_events_fails_verification(clean_db) -> None:
    make_catalog()
    last = db.session.query(AuditEvent.id).order_by(AuditEvent.id.desc()).first().id
    db.session.execute(text("DELETE FROM audit_event WHERE id >= :id"), {"id": last - 1})
    db.session.commit()
    result = audit.verify()
    assert not result.ok and "removed" in result.problem


def test_recomputing_one_hash_still_breaks_the_next_link(clean_db) -> None:
    make_catalog()
    event = db.session.query(AuditEvent).order_by(AuditEvent.id).offset(2).first()
    event_id = event.id
    db.session.execute(
        text("UPDATE audit_event SET actor = 'mallory' WHERE id = :id"), {"id": event_id}
    )
    db.session.commit()
    db.session.expire_all()
    forged = db.session.get(AuditEvent, event_id)
    new_hash = audit.event_hash(forged)
    db.session.execute(
        text("UPDATE audit_event SET hash = :h WHERE id = :id"), {"h": new_hash, "id": event_id}
    )
    db.session.commit()
    result = audit.verify()
    assert not result.ok and result.bad_event_id == event_id + 1


def test_history_lists_one_records_events(clean_db) -> None:
    data = make_catalog()
    catalog.customers.update(data.customer, {"name": "Acme Group"}, actor("supervisor"))
    events = audit.history("customer", data.customer.id)
    assert [e.action for e in events] == ["create", "update"]


def test_events_of_one_transaction_chain_in_order_and_vanish_on_rollback(clean_db) -> None:
    from portal.services import orders
    from portal.services.base import ValidationFailed
    from tests.factories import SETUP

    data = make_catalog()
    before = db.session.query(AuditEvent).count()
    order = orders.orders.create_with_lines(
        {"customer_id": data.customer.id},
        [{"product_id": p.id, "quantity": 2} for p in data.products * 3],
        SETUP,
    )
    events = db.session.query(AuditEvent).order_by(AuditEvent.id).all()[before:]
    assert [e.entity for e in events] == ["sales_order"] + ["order_line"] * 9
    assert all(e.prev_hash == p.hash for p, e in itertools.pairwise(events))
    assert audit.verify().ok
    with pytest.raises(ValidationFailed):
        orders.orders.create_with_lines(
            {"customer_id": data.customer.id},
            [{"product_id": data.products[0].id, "quantity": 1}, {"product_id": 0, "quantity": 1}],
            SETUP,
        )
    assert db.session.query(AuditEvent).count() == before + 10
    assert order.number == "SO-000001" and audit.verify().ok
