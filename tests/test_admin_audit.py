"""Role syncs and demo seeding leave audit events."""

from __future__ import annotations

import json

from portal.demo import SEED_ACTOR, ensure_users, seed_demo_data
from portal.extensions import appbuilder, db
from portal.models import AuditEvent
from portal.security import SPECIALIST, sync_roles
from portal.services import audit
from tests.conftest import TEST_PASSWORD


def _events(entity: str) -> list[AuditEvent]:
    return db.session.query(AuditEvent).filter_by(entity=entity).order_by(AuditEvent.id).all()


def test_a_role_sync_that_changes_roles_writes_one_event_naming_the_changes(clean_db) -> None:
    sync_roles(appbuilder)  # in step with the declaration: nothing to change, no event
    assert _events("role") == []
    sm = appbuilder.sm
    role = sm.find_role(SPECIALIST)
    taken = next(pv for pv in role.permissions if pv.permission.name == "can_write")
    lost = f"{taken.permission.name} on {taken.view_menu.name}"
    sm.del_permission_role(role, taken)
    report = sync_roles(appbuilder)
    assert report[SPECIALIST] == (1, 0)
    (event,) = _events("role")
    assert (event.actor, event.action) == ("system:roles-sync", "sync")
    assert json.loads(event.changes)["detail"] == {SPECIALIST: {"added": [lost], "removed": []}}
    sync_roles(appbuilder)
    assert len(_events("role")) == 1
    assert audit.verify().ok


def test_demo_seeding_records_an_event_for_the_seed_and_for_each_user(clean_db) -> None:
    ensure_users(TEST_PASSWORD)  # the test users exist: their passwords are reset (to the same)
    resets = _events("user")
    assert {(e.entity_id, e.action) for e in resets} >= {
        ("admin", "reset_password"),
        ("specialist", "reset_password"),
    }
    assert seed_demo_data(order_count=3)
    (seed,) = _events("demo")
    assert (seed.actor, seed.action) == (SEED_ACTOR.name, "seed")
    assert json.loads(seed.changes)["detail"] == {"orders": 3, "seed": 7}
    assert not seed_demo_data(order_count=3)  # already there: no second seed event
    assert len(_events("demo")) == 1
    assert audit.verify().ok
