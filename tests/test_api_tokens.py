"""Personal API tokens: stored hashed, shown once, expiry, revocation, bearer sign-in on REST.

The REST calls go through the real app with no session cookie: the token is the only
credential. CSRF is switched on where a test says so (the suite's app runs with it off).
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select, text

from portal.extensions import db
from portal.models import ApiToken, AuditEvent, utcnow
from portal.services import api_tokens
from portal.services.base import (
    ConflictError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tests.conftest import actor, login

WAREHOUSES = "/api/v1/warehouse/"


def _bearer(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}


def _token(username: str, name: str = "script", days: int | None = None) -> str:
    return api_tokens.create(actor(username), name, days).plaintext


def _warehouse(code: str) -> dict[str, object]:
    return {"code": code, "name": f"Warehouse {code}", "priority": 5}


def test_the_database_holds_only_the_hash_and_the_token_is_shown_once(clean_db: Flask) -> None:
    created = api_tokens.create(actor("specialist"), "Excel on laptop")
    plaintext = created.plaintext
    assert plaintext.startswith("obt_") and len(plaintext) >= 40
    row = db.session.get(ApiToken, created.record.id)
    assert row.token_hash == api_tokens.hash_token(plaintext) != plaintext
    assert row.last_four == plaintext[-4:]
    # The plaintext is in no column of any row of the table.
    dumped = db.session.execute(text("SELECT * FROM api_token")).all()
    assert dumped and all(plaintext not in str(value) for line in dumped for value in line)
    # Nothing the service offers later gives the plaintext back.
    listed = api_tokens.visible_to(actor("specialist"))
    assert [t.id for t in listed] == [row.id]
    assert not any(plaintext in str(getattr(row, c.key)) for c in ApiToken.__table__.columns)
    # Two tokens never share a secret.
    assert _token("specialist") != plaintext


def test_expiry_defaults_and_is_bounded(clean_db: Flask) -> None:
    before = utcnow()
    record = api_tokens.create(actor("auditor"), "reports").record
    assert timedelta(days=89) < record.expires_at - before <= timedelta(days=90, seconds=5)
    week = api_tokens.create(actor("auditor"), "a week", 7).record
    assert week.expires_at - week.created_at == timedelta(days=7)
    for bad in (0, 366, "soon", 2.5, True):
        with pytest.raises(ValidationFailed) as refused:
            api_tokens.create(actor("auditor"), "x", bad)
        assert "expires_in_days" in refused.value.field_errors
    with pytest.raises(ValidationFailed) as refused:
        api_tokens.create(actor("auditor"), "   ")
    assert "name" in refused.value.field_errors


def test_a_token_signs_in_on_rest_with_no_cookie_and_no_csrf(app: Flask, monkeypatch) -> None:
    with app.app_context():
        from tests.conftest import wipe_business_tables

        wipe_business_tables()
        plaintext = _token("supervisor")
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    client = app.test_client()
    read = client.get(WAREHOUSES, headers=_bearer(plaintext))
    assert read.status_code == 200, read.get_data(as_text=True)
    with client.session_transaction() as session:  # the call signed no session in
        assert "_user_id" not in session
    made = client.post(WAREHOUSES, json=_warehouse("TOK1"), headers=_bearer(plaintext))
    assert made.status_code == 201, made.get_data(as_text=True)
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.entity == "warehouse")).one()
        assert (event.actor, event.source) == ("supervisor", "api")


def test_a_cookie_post_without_csrf_is_still_refused(app: Flask, monkeypatch) -> None:
    browser = login(app, "supervisor")
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    response = browser.post(WAREHOUSES, json=_warehouse("COOK"))
    assert response.status_code == 400
    assert "CSRF" in response.json["message"]


def test_a_token_of_a_user_without_the_right_gets_403(clean_db: Flask) -> None:
    plaintext = _token("specialist")
    client = clean_db.test_client()
    assert client.get(WAREHOUSES, headers=_bearer(plaintext)).status_code == 200
    refused = client.post(WAREHOUSES, json=_warehouse("NOPE"), headers=_bearer(plaintext))
    assert refused.status_code == 403
    audit_trail = client.get("/api/v1/audit_event/", headers=_bearer(plaintext))
    assert audit_trail.status_code == 403  # Specialists do not read the full audit trail


def test_unknown_revoked_and_expired_tokens_get_401_with_a_message(clean_db: Flask) -> None:
    client = clean_db.test_client()
    unknown = client.get(WAREHOUSES, headers=_bearer("obt_" + "x" * 43))
    assert unknown.status_code == 401
    assert unknown.json["message"] == "Unknown API token."
    assert unknown.headers["WWW-Authenticate"].startswith("Bearer")

    plaintext = _token("specialist", "to revoke")
    assert client.get(WAREHOUSES, headers=_bearer(plaintext)).status_code == 200
    token_id = db.session.scalars(select(ApiToken.id)).one()
    api_tokens.revoke(actor("specialist"), token_id)
    revoked = client.get(WAREHOUSES, headers=_bearer(plaintext))
    assert revoked.status_code == 401
    assert "revoked" in revoked.json["message"] and "to revoke" in revoked.json["message"]
    # A revoked token is refused on writes too, before any permission or CSRF check.
    write = client.post(WAREHOUSES, json=_warehouse("REV"), headers=_bearer(plaintext))
    assert write.status_code == 401

    stale = api_tokens.create(actor("specialist"), "stale", 1)
    with pytest.raises(api_tokens.TokenInvalid) as refused:
        api_tokens.verify(stale.plaintext, now=utcnow() + timedelta(days=1, seconds=1))
    assert "expired" in refused.value.message
    db.session.execute(
        text("UPDATE api_token SET expires_at = :past WHERE id = :id"),
        {"past": utcnow() - timedelta(minutes=1), "id": stale.record.id},
    )
    db.session.commit()
    expired = client.get(WAREHOUSES, headers=_bearer(stale.plaintext))
    assert expired.status_code == 401 and "expired" in expired.json["message"]


def test_a_deactivated_users_token_is_refused(clean_db: Flask) -> None:
    from portal.extensions import appbuilder

    plaintext = _token("specialist2")
    user = appbuilder.sm.find_user(username="specialist2")
    user.active = False
    db.session.commit()
    try:
        response = clean_db.test_client().get(WAREHOUSES, headers=_bearer(plaintext))
        assert response.status_code == 401
        assert "deactivated" in response.json["message"]
    finally:
        user = appbuilder.sm.find_user(username="specialist2")
        user.active = True
        db.session.commit()


def test_only_the_owner_or_an_admin_revokes(clean_db: Flask) -> None:
    mine = api_tokens.create(actor("specialist"), "mine").record.id
    with pytest.raises(PermissionDenied):
        api_tokens.revoke(actor("specialist2"), mine)
    with pytest.raises(PermissionDenied):
        api_tokens.revoke(actor("supervisor"), mine)
    assert db.session.get(ApiToken, mine).revoked_at is None
    assert [t.id for t in api_tokens.visible_to(actor("specialist2"))] == []
    # An Admin sees everyone's and may revoke any.
    assert mine in {t.id for t in api_tokens.visible_to(actor("admin"))}
    revoked = api_tokens.revoke(actor("admin"), mine)
    assert revoked.revoked_by == "admin"
    with pytest.raises(ConflictError):
        api_tokens.revoke(actor("specialist"), mine)
    with pytest.raises(NotFound):
        api_tokens.revoke(actor("admin"), 999999)


def test_last_used_is_noted_at_most_once_a_minute(clean_db: Flask) -> None:
    created = api_tokens.create(actor("auditor"), "reads")
    assert created.record.last_used_at is None
    client = clean_db.test_client()
    assert client.get(WAREHOUSES, headers=_bearer(created.plaintext)).status_code == 200
    db.session.expire_all()
    first = db.session.get(ApiToken, created.record.id).last_used_at
    assert first is not None and utcnow() - first < timedelta(minutes=1)
    assert client.get(WAREHOUSES, headers=_bearer(created.plaintext)).status_code == 200
    db.session.expire_all()
    assert db.session.get(ApiToken, created.record.id).last_used_at == first
    later = first + api_tokens.LAST_USED_RESOLUTION + timedelta(seconds=1)
    api_tokens.verify(created.plaintext, now=later)
    db.session.expire_all()
    assert db.session.get(ApiToken, created.record.id).last_used_at == later


def test_creation_and_revocation_are_audited_without_the_token(clean_db: Flask) -> None:
    created = api_tokens.create(actor("supervisor"), "nightly export", 30)
    api_tokens.revoke(actor("admin"), created.record.id)
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.entity == "api_token").order_by(AuditEvent.id)
    ).all()
    assert [(e.action, e.actor, e.entity_id) for e in events] == [
        ("created", "supervisor", str(created.record.id)),
        ("revoked", "admin", str(created.record.id)),
    ]
    for event in events:
        detail = json.loads(event.changes)["detail"]
        assert (detail["name"], detail["user"]) == ("nightly export", "supervisor")
        assert created.plaintext not in str(event.changes)
        assert created.record.token_hash not in str(event.changes)


def test_a_jwt_still_works_beside_tokens(clean_db: Flask) -> None:
    from tests.conftest import api_headers

    response = clean_db.test_client().get(WAREHOUSES, headers=api_headers(clean_db, "auditor"))
    assert response.status_code == 200


# --- the page: Account → API tokens -------------------------------------------------------


def _create_on_page(client, name: str, days: str = "") -> tuple[int, str, str]:
    response = client.post("/api-tokens/create", data={"name": name, "expires_in_days": days})
    page = response.get_data(as_text=True)
    match = re.search(r'id="new-token-value"[^>]*value="(obt_[^"]+)"', page)
    return response.status_code, page, match.group(1) if match else ""


def test_every_role_manages_its_own_tokens_on_the_page(clean_db: Flask) -> None:
    for username in ("specialist", "supervisor", "auditor", "admin"):
        client = login(clean_db, username)
        listing = client.get("/api-tokens/")
        assert listing.status_code == 200, username
        assert "API tokens" in client.get("/").get_data(as_text=True)  # the menu entry
        status, page, plaintext = _create_on_page(client, f"{username} laptop", "30")
        assert status == 201 and plaintext.startswith("obt_"), (username, page[:500])
        assert "shown only this once" in page
        assert client.get(WAREHOUSES, headers=_bearer(plaintext)).status_code in (200, 403)
        # Shown once: the list afterwards has the last four characters, not the token.
        again = client.get("/api-tokens/").get_data(as_text=True)
        assert plaintext not in again and f"obt_…{plaintext[-4:]}" in again
        assert "None" not in again


def test_the_page_refuses_bad_input_with_the_form_kept(clean_db: Flask) -> None:
    client = login(clean_db, "specialist")
    status, page, plaintext = _create_on_page(client, "too long a life", "999")
    assert status == 422 and not plaintext
    assert "expires_in_days" in page and "too long a life" in page
    assert db.session.scalars(select(ApiToken)).all() == []


def test_revoking_on_the_page_asks_first_and_owners_only(clean_db: Flask) -> None:
    owner = login(clean_db, "specialist")
    _, _, plaintext = _create_on_page(owner, "to revoke")
    token_id = db.session.scalars(select(ApiToken.id)).one()
    other = login(clean_db, "specialist2")
    assert other.get(f"/api-tokens/{token_id}/revoke").status_code == 403
    refused = other.post(f"/api-tokens/{token_id}/revoke", follow_redirects=True)
    assert "only your own" in refused.get_data(as_text=True)
    assert "to revoke" not in other.get("/api-tokens/").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ApiToken, token_id).revoked_at is None

    confirm = owner.get(f"/api-tokens/{token_id}/revoke")
    assert confirm.status_code == 200 and "stops" in confirm.get_data(as_text=True)
    done = owner.post(f"/api-tokens/{token_id}/revoke", follow_redirects=True)
    assert "revoked; it no longer works" in done.get_data(as_text=True)
    assert clean_db.test_client().get(WAREHOUSES, headers=_bearer(plaintext)).status_code == 401
    assert owner.get("/api-tokens/999999/revoke").status_code == 404


def test_an_admin_sees_and_revokes_everyones_tokens(clean_db: Flask) -> None:
    _create_on_page(login(clean_db, "auditor"), "auditor export")
    admin = login(clean_db, "admin")
    page = admin.get("/api-tokens/").get_data(as_text=True)
    assert "auditor export" in page and "Everyone's tokens" in page
    token_id = db.session.scalars(select(ApiToken.id)).one()
    admin.post(f"/api-tokens/{token_id}/revoke")
    db.session.expire_all()
    assert db.session.get(ApiToken, token_id).revoked_by == "admin"


def test_bearer_only_views_take_a_token_and_nothing_else(clean_db: Flask) -> None:
    from portal import tokenauth
    from portal.extensions import csrf
    from portal.tokenauth import TokenRefused, bearer_only

    def sync(tracker: str) -> str:
        from flask import g

        return f"{tracker} by {g.user.username}"

    view = bearer_only(sync)
    assert f"{__name__}.sync" in csrf._exempt_views  # no CSRF token asked of token clients
    plaintext = _token("specialist")
    path = "/xlwings/sync/open-orders"

    def request_to(headers: dict[str, str]) -> ExitStack:  # own app context and g, as live
        stack = ExitStack()
        stack.enter_context(clean_db.app_context())
        stack.enter_context(clean_db.test_request_context(path, method="POST", headers=headers))
        return stack

    with request_to(_bearer(plaintext)):
        assert view("open-orders") == "open-orders by specialist"
    for headers in ({}, _bearer("obt_nope")):
        with request_to(headers), pytest.raises(TokenRefused) as refused:
            view("open-orders")
        assert refused.value.get_response().status_code == 401
    assert "Account → API tokens" in tokenauth.NO_TOKEN


def test_token_writes_count_against_the_users_write_limit(clean_db: Flask) -> None:
    from portal.requestlimits import write_limiter

    plaintext = _token("supervisor")
    client = clean_db.test_client()
    saved = {k: clean_db.config[k] for k in ("WRITE_RATE_LIMIT", "WRITE_IP_RATE_LIMIT")}
    write_limiter().reset()
    clean_db.config.update(WRITE_RATE_LIMIT="2/minute", WRITE_IP_RATE_LIMIT="100/minute")
    try:
        statuses = [
            client.post(WAREHOUSES, json=_warehouse(f"RL{n}"), headers=_bearer(plaintext))
            for n in range(3)
        ]
    finally:
        clean_db.config.update(saved)
        write_limiter().reset()
    assert [r.status_code for r in statuses] == [201, 201, 429]
    assert "per user" in statuses[-1].json["message"]


def test_deleting_a_user_deletes_their_tokens(clean_db: Flask) -> None:
    from portal.extensions import appbuilder
    from tests.conftest import TEST_PASSWORD

    sm = appbuilder.sm
    user = sm.add_user(
        "leaver", "Lea", "Ver", "leaver@example.test", sm.find_role("Specialist"), TEST_PASSWORD
    )
    db.session.commit()
    plaintext = _token("leaver")
    db.session.delete(sm.find_user(username="leaver"))
    db.session.commit()
    assert db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).all() == []
    response = clean_db.test_client().get(WAREHOUSES, headers=_bearer(plaintext))
    assert response.status_code == 401
