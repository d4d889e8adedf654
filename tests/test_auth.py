"""Sign-in hardening: lockout and limits, revocation of sessions and tokens, password policy."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from portal import auth
from portal.extensions import appbuilder, db
from portal.models import AuditEvent, UserAuthState, utcnow

PASSWORD = "a-long-enough-pass-phrase"
NEW_PASSWORD = "another-long-pass-phrase"
ORDERS_PAGE = "/salesorderview/list/"
ORDERS_API = "/api/v1/sales_order/"


@pytest.fixture
def user(app: Flask) -> Iterator[str]:
    """A Specialist of this test alone (signing out revokes all of a user's sessions)."""
    name = f"sec_{secrets.token_hex(4)}"
    with app.app_context():
        appbuilder.sm.add_user(
            name, "Sec", "User", f"{name}@example.test",
            appbuilder.sm.find_role("Specialist"), password=PASSWORD,
        )  # fmt: skip
        db.session.commit()
        auth.throttle().reset()
    yield name
    with app.app_context():
        auth.throttle().reset()


def _web_login(app: Flask, username: str, password: str = PASSWORD):
    client = app.test_client()
    response = client.post("/login/", data={"username": username, "password": password})
    return client, response


def _signed_in(app: Flask, username: str, password: str = PASSWORD):
    client, response = _web_login(app, username, password)
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    return client


def _api_login(app: Flask, username: str, password: str = PASSWORD):
    return app.test_client().post(
        "/api/v1/security/login",
        json={"username": username, "password": password, "provider": "db", "refresh": True},
    )


def _tokens(app: Flask, username: str, password: str = PASSWORD) -> tuple[str, str]:
    response = _api_login(app, username, password)
    assert response.status_code == 200, response.json
    return response.json["access_token"], response.json["refresh_token"]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _stolen_copy(app: Flask, client):
    """Another client holding a copy of ``client``'s session cookie."""
    copy = app.test_client()
    copy.set_cookie("session", client.get_cookie("session").value)
    return copy


def _assert_revoked(app: Flask, cookie_client, access: str, refresh: str) -> None:
    page = cookie_client.get(ORDERS_PAGE)
    assert page.status_code == 302 and "/login/" in page.headers["Location"]
    assert cookie_client.get(ORDERS_API).status_code == 401
    api = app.test_client()
    assert api.get(ORDERS_API, headers=_bearer(access)).status_code == 401
    assert api.post("/api/v1/security/refresh", headers=_bearer(refresh)).status_code == 401


def _assert_works(app: Flask, cookie_client, access: str, refresh: str) -> None:
    assert cookie_client.get(ORDERS_PAGE).status_code == 200
    assert cookie_client.get(ORDERS_API).status_code == 200
    api = app.test_client()
    assert api.get(ORDERS_API, headers=_bearer(access)).status_code == 200
    assert api.post("/api/v1/security/refresh", headers=_bearer(refresh)).status_code == 200


# --- sessions and tokens ---------------------------------------------------------------------


def test_logout_revokes_every_session_and_token(app: Flask, user: str) -> None:
    client = _signed_in(app, user)
    stolen = _stolen_copy(app, client)
    access, refresh = _tokens(app, user)
    _assert_works(app, stolen, access, refresh)
    client.get("/logout/")
    _assert_revoked(app, stolen, access, refresh)
    # Signing in again works, with a new session and new tokens.
    _assert_works(app, _signed_in(app, user), *_tokens(app, user))


def test_own_password_change_revokes_every_session_and_token(app: Flask, user: str) -> None:
    client = _signed_in(app, user)
    stolen = _stolen_copy(app, client)
    access, refresh = _tokens(app, user)
    response = client.post(
        "/resetmypassword/form",
        data={
            "current_password": PASSWORD,
            "password": NEW_PASSWORD,
            "conf_password": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    _assert_revoked(app, stolen, access, refresh)
    assert "/login/" in _web_login(app, user)[1].headers["Location"]  # old password
    _assert_works(app, _signed_in(app, user, NEW_PASSWORD), *_tokens(app, user, NEW_PASSWORD))


def test_admin_password_reset_revokes_the_users_sessions_and_tokens(app: Flask, user: str) -> None:
    victim = _signed_in(app, user)
    access, refresh = _tokens(app, user)
    with app.app_context():
        pk = appbuilder.sm.find_user(username=user).id
    admin = _signed_in(app, "admin", "correct-horse-battery")
    response = admin.post(
        f"/resetpassword/form?pk={pk}",
        data={"password": NEW_PASSWORD, "conf_password": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    _assert_revoked(app, victim, access, refresh)
    assert admin.get(ORDERS_PAGE).status_code == 200  # the admin's own session is untouched


def test_deactivation_revokes_sessions_and_tokens_for_good(app: Flask, user: str) -> None:
    client = _signed_in(app, user)
    access, refresh = _tokens(app, user)
    for active in (False, True):
        with app.app_context():
            appbuilder.sm.find_user(username=user).active = active
            db.session.commit()
    # Reactivated, but what was issued before the deactivation stays dead.
    _assert_revoked(app, client, access, refresh)


def test_tokens_without_the_auth_version_claim_are_refused(app: Flask, user: str) -> None:
    from flask_jwt_extended import create_access_token

    with app.test_request_context():
        pk = appbuilder.sm.find_user(username=user).id
        forged = create_access_token(identity=str(pk), additional_claims={"ob_av": None})
    assert app.test_client().get(ORDERS_API, headers=_bearer(forged)).status_code == 401


# --- lockout and limits ----------------------------------------------------------------------


def test_lockout_after_consecutive_failures_refuses_the_right_password(
    app: Flask, user: str
) -> None:
    limit = app.config["LOGIN_MAX_FAILURES"]
    assert limit == 5
    for _ in range(limit - 1):
        _, response = _web_login(app, user, "wrong-password-here")
        assert "/login/" in response.headers["Location"]
    client, response = _web_login(app, user, "wrong-password-here")  # the 5th: locked now
    with client.session_transaction() as session:
        flashes = [message for _, message in session.get("_flashes", [])]
    assert "Too many failed sign-ins; try again in 15 minutes." in flashes
    # The right password is refused now, on the web and on the API.
    client, response = _web_login(app, user)
    assert "/login/" in response.headers["Location"]
    with client.session_transaction() as session:
        flashes = [message for _, message in session.get("_flashes", [])]
    assert flashes == ["Too many failed sign-ins; try again in 15 minutes."]
    assert client.get(ORDERS_PAGE).status_code == 302
    api = _api_login(app, user)
    assert api.status_code == 429
    assert api.json["message"] == "Too many failed sign-ins; try again in 15 minutes."
    assert 800 < int(api.headers["Retry-After"]) <= 900
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.entity_id == user, AuditEvent.action == "locked_out"
            )
        ).all()
        assert len(events) == 1
        assert events[0].actor == "system:auth"
        assert json.loads(events[0].changes)["detail"]["failures"] == limit
        # The lockout is bounded: once it has passed, the right password works again.
        state = db.session.get(UserAuthState, appbuilder.sm.find_user(username=user).id)
        state.locked_until = utcnow() - timedelta(seconds=1)
        db.session.commit()
    _signed_in(app, user)


def test_lockout_on_the_api_login(app: Flask, user: str) -> None:
    for _ in range(4):
        assert _api_login(app, user, "wrong-password-here").status_code == 401
    fifth = _api_login(app, user, "wrong-password-here")
    assert fifth.status_code == 429 and "try again in 15 minutes" in fifth.json["message"]
    assert _api_login(app, user).status_code == 429


def test_a_success_resets_the_consecutive_failures(app: Flask, user: str) -> None:
    for _ in range(2):  # 8 failures, never 5 in a row
        for _ in range(4):
            _web_login(app, user, "wrong-password-here")
        _signed_in(app, user)


def test_failures_per_address_and_per_user_name_are_limited(
    app: Flask, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = app.config["LOGIN_LIMIT_STORAGE_URI"]
    small = auth.LoginThrottle(storage, "6 per 15 minutes", "3 per 15 minutes")
    monkeypatch.setitem(app.extensions, "orderbridge_login_throttle", small)
    # Unknown user names: limited per name (no account to lock).
    for _ in range(3):
        assert _api_login(app, "nobody-here", "guess-guess-guess").status_code == 401
    refused = _api_login(app, "nobody-here", "guess-guess-guess")
    assert refused.status_code == 429 and "try again in 15 minutes" in refused.json["message"]
    # Spraying other names from the same address: limited per address, for everyone there.
    for name in ("nobody-1", "nobody-2", "nobody-3"):
        _api_login(app, name, "guess-guess-guess")
    assert _api_login(app, user).status_code == 429
    assert "/login/" in _web_login(app, user)[1].headers["Location"]
    # Another address is not affected.
    other = app.test_client().post(
        "/api/v1/security/login",
        json={"username": user, "password": PASSWORD, "provider": "db"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert other.status_code == 200
    small.reset()


# --- password policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["a", "short-pw", "password1234", "Password123!", "123456789012", "qwertyuiop12", "aaaa" * 4],
)
def test_weak_passwords_are_refused(password: str, app: Flask) -> None:
    with app.app_context():
        assert auth.password_problem(password)
        with pytest.raises(auth.PasswordPolicyError):
            auth.check_password_policy(password)


def test_good_passwords_pass(app: Flask) -> None:
    with app.app_context():
        for password in (PASSWORD, "correct-horse-battery", "Tr4m-lines-at-dusk"):
            assert auth.password_problem(password) is None


def test_admin_add_user_form_refuses_a_weak_password(app: Flask) -> None:
    admin = _signed_in(app, "admin", "correct-horse-battery")
    name = f"weak_{secrets.token_hex(4)}"
    with app.app_context():
        role = appbuilder.sm.find_role("Specialist").id
    page = admin.post(
        "/users/add",
        data={
            "first_name": "W", "last_name": "K", "username": name, "active": "y",
            "email": f"{name}@example.test", "roles": [str(role)],
            "password": "a", "conf_password": "a",
        },
    )  # fmt: skip
    assert page.status_code == 200
    assert "Password must be at least 12 characters long." in page.get_data(as_text=True)
    with app.app_context():
        assert appbuilder.sm.find_user(username=name) is None


def test_reset_forms_refuse_a_weak_password(app: Flask, user: str) -> None:
    client = _signed_in(app, user)
    page = client.post(
        "/resetmypassword/form",
        data={"current_password": PASSWORD, "password": "a", "conf_password": "a"},
    )
    assert "Password must be at least 12 characters long." in page.get_data(as_text=True)
    with app.app_context():
        pk = appbuilder.sm.find_user(username=user).id
    admin = _signed_in(app, "admin", "correct-horse-battery")
    page = admin.post(
        f"/resetpassword/form?pk={pk}",
        data={"password": "password1234", "conf_password": "password1234"},
    )
    assert "too common" in page.get_data(as_text=True)
    _signed_in(app, user)  # unchanged


def test_own_reset_asks_for_the_current_password(app: Flask, user: str) -> None:
    client = _signed_in(app, user)
    form = client.get("/resetmypassword/form").get_data(as_text=True)
    assert 'name="current_password"' in form
    for current in ("", "not-my-password"):
        page = client.post(
            "/resetmypassword/form",
            data={
                "current_password": current,
                "password": NEW_PASSWORD,
                "conf_password": NEW_PASSWORD,
            },
        )
        assert page.status_code == 200
    assert "The current password is not correct." in page.get_data(as_text=True)
    _signed_in(app, user)  # the password did not change


def test_security_manager_and_cli_refuse_weak_passwords(app: Flask) -> None:
    from flask_appbuilder.cli import fab

    name = f"cli_{secrets.token_hex(4)}"
    with app.app_context():
        with pytest.raises(auth.PasswordPolicyError):
            appbuilder.sm.add_user(
                name, "C", "L", f"{name}@example.test",
                appbuilder.sm.find_role("Specialist"), "a",
            )  # fmt: skip
        with pytest.raises(auth.PasswordPolicyError):
            appbuilder.sm.reset_password(appbuilder.sm.find_user(username="admin").id, "a")
    args = ["--username", name, "--firstname", "C", "--lastname", "L"]
    args += ["--email", f"{name}@example.test", "--password", "a"]
    result = app.test_cli_runner().invoke(fab, ["create-admin", *args])
    assert result.exit_code != 0
    assert "Password must be at least 12 characters long." in result.output
    with app.app_context():
        assert appbuilder.sm.find_user(username=name) is None


def test_weak_demo_password_only_in_demo_and_test_mode(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.app_context():
        with auth.demo_passwords_allowed():
            auth.check_password_policy("demo")  # test mode: allowed for seed-demo
        monkeypatch.setitem(app.config, "ORDERBRIDGE_MODE", "production")
        with auth.demo_passwords_allowed(), pytest.raises(auth.PasswordPolicyError):
            auth.check_password_policy("demo")
        with pytest.raises(auth.PasswordPolicyError):
            auth.check_password_policy("demo")
