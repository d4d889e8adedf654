"""Sign-in hardening: password policy, lockout and rate limits, revocable sessions and tokens.

* **Password policy** (:func:`password_problem`): at least ``PASSWORD_MIN_LENGTH`` characters
  and not one of the most common passwords. FAB's user and reset-password forms apply it
  through ``FAB_PASSWORD_COMPLEXITY_VALIDATOR``; the security manager applies it to every
  ``add_user``/``reset_password`` with a plain password (so ``orderbridge fab create-admin``
  too). Only ``seed-demo`` in demo/test mode may set a weak password
  (:func:`demo_passwords_allowed`).
* **Lockout and limits**: ``LOGIN_MAX_FAILURES`` consecutive failures lock the account for
  ``LOGIN_LOCKOUT_SECONDS`` (audited); failed sign-ins are also counted per client address
  and per submitted user name in moving windows (``LOGIN_IP_FAILURE_LIMIT``,
  ``LOGIN_USER_FAILURE_LIMIT``) kept in Flask-Limiter's storage layer (the ``limits``
  package: Redis when ``REDIS_URL`` is set, else memory). A refused sign-in says when to
  try again; the API answers 429 with ``Retry-After``.
* **Revocation**: each user has an ``auth_version`` (:class:`UserAuthState`) stamped into the
  session at sign-in and into every JWT (claim ``ob_av``). Signing out, a password change
  (self-service, by an Admin or from the CLI) and (de)activation bump it, and every request
  checks it, so every earlier session cookie, access token and refresh token stops working.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import (
    Flask,
    current_app,
    flash,
    g,
    has_app_context,
    jsonify,
    redirect,
    request,
    session,
)
from flask_appbuilder.exceptions import PasswordComplexityValidationError
from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget
from flask_appbuilder.security.forms import ResetPasswordForm
from flask_appbuilder.security.sqla.models import User
from flask_appbuilder.security.views import ResetMyPasswordView as FabResetMyPasswordView
from flask_babel import lazy_gettext
from flask_login import user_logged_in, user_logged_out
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash
from wtforms import PasswordField
from wtforms.validators import DataRequired, ValidationError

from portal.common_passwords import COMMON_PASSWORDS
from portal.extensions import db
from portal.models import PermissionStamp, UserAuthState, utcnow

log = logging.getLogger(__name__)

SESSION_KEY = "_ob_auth_version"
JWT_CLAIM = "ob_av"
LOGIN_ENDPOINTS = {"AuthDBView.login": "web", "SecurityApi.login": "api"}
AUTH_ACTOR_NAME = "system:auth"


# --- password policy -----------------------------------------------------------------------


class PasswordPolicyError(ValueError):
    """A password people chose is too weak; the message says why."""


_demo_passwords = ContextVar("orderbridge_demo_passwords", default=False)


@contextmanager
def demo_passwords_allowed() -> Iterator[None]:
    """Let ``seed-demo`` set a weak demo password, in demo and test mode only."""
    allowed = current_app.config.get("ORDERBRIDGE_MODE") in ("demo", "test")
    token = _demo_passwords.set(allowed)
    try:
        yield
    finally:
        _demo_passwords.reset(token)


def password_problem(password: str | None, min_length: int | None = None) -> str | None:
    """Why ``password`` is refused, or None when it is acceptable."""
    if min_length is None:
        min_length = current_app.config.get("PASSWORD_MIN_LENGTH", 12)
    password = password or ""
    if len(password) < min_length:
        return f"Password must be at least {min_length} characters long."
    lowered = password.lower()
    forms = {
        lowered,
        re.sub(r"[^a-z0-9]", "", lowered),
        re.sub(r"[^a-z]", "", lowered),
    }
    if forms & COMMON_PASSWORDS or len(set(lowered)) < 4:
        return "This password is too common or too easy to guess; choose another."
    return None


def check_password_policy(password: str | None) -> None:
    """Raise :class:`PasswordPolicyError` unless the password meets the policy."""
    if _demo_passwords.get():
        return
    problem = password_problem(password)
    if problem:
        raise PasswordPolicyError(problem)


def fab_password_validator(password: str) -> None:
    """``FAB_PASSWORD_COMPLEXITY_VALIDATOR``: FAB's forms call it with the new password."""
    problem = password_problem(password)
    if problem:
        raise PasswordComplexityValidationError(problem)


class ResetMyPasswordForm(ResetPasswordForm):
    """FAB's self-service reset form, which also asks for the current password."""

    current_password = PasswordField(
        lazy_gettext("Current password"),
        validators=[DataRequired()],
        widget=BS3PasswordFieldWidget(),
    )

    def validate_current_password(self, field: PasswordField) -> None:
        user = g.user
        if not (user and user.password and check_password_hash(user.password, field.data)):
            raise ValidationError("The current password is not correct.")


class ResetMyPasswordView(FabResetMyPasswordView):
    """Same name, route and permissions as FAB's view; the form asks for the old password."""

    form = ResetMyPasswordForm


# --- auth version: revocable sessions and tokens ---------------------------------------------


def stamp_value() -> Any:
    """The permission stamp as a scalar subquery, for a statement that reads it alongside."""
    return select(PermissionStamp.value).where(PermissionStamp.id == 1).scalar_subquery()


def auth_version(user_id: Any) -> int:
    """The user's current auth version (0 until first bumped); cached for the request.

    The one statement that reads it also loads the user (so FAB's ``load_user`` finds them in
    the session) and the permission stamp (:func:`permission_stamp`).
    """
    cache = g.setdefault("_ob_auth_versions", {})
    user_id = int(user_id)
    if user_id not in cache:
        row = db.session.execute(
            select(User, UserAuthState.auth_version, stamp_value())
            .outerjoin(UserAuthState, UserAuthState.user_id == User.id)
            .where(User.id == user_id)
        ).first()
        cache[user_id] = (row[1] or 0) if row else 0
        if row is not None:
            g._ob_permission_stamp = (row[2],)
            g._ob_users = {**g.get("_ob_users", {}), user_id: row[0]}  # the session keeps it
    return cache[user_id]


def permission_stamp() -> int | None:
    """The permission stamp as this request read it (once); None if it has no row."""
    if "_ob_permission_stamp" not in g:
        g._ob_permission_stamp = (db.session.execute(select(stamp_value())).scalar(),)
    return g._ob_permission_stamp[0]


def _state_for(sess: Session, user_id: int) -> UserAuthState:
    with sess.no_autoflush:
        state = sess.get(UserAuthState, user_id)
    if state is None:
        state = UserAuthState(user_id=user_id, auth_version=0)
        sess.add(state)
    return state


def _bump(sess: Session, user_id: int) -> None:
    state = _state_for(sess, user_id)
    state.auth_version = (state.auth_version or 0) + 1
    if has_app_context():
        g.pop("_ob_auth_versions", None)


def revoke_sessions_and_tokens(user: Any) -> None:
    """Invalidate every session and token of ``user`` now (committed)."""
    from portal.services.base import unit_of_work

    with unit_of_work() as sess:
        _bump(sess, user.id)


@event.listens_for(Session, "before_flush")
def _bump_on_credential_change(sess: Session, flush_context: Any, instances: Any) -> None:
    """A changed password or active flag revokes the user's sessions and tokens."""
    for obj in list(sess.dirty):
        if not isinstance(obj, User) or obj.id is None:
            continue
        attrs = inspect(obj).attrs
        if attrs.password.history.has_changes() or attrs.active.history.has_changes():
            _bump(sess, obj.id)


def _stamp_session(sender: Any, user: Any, **extra: Any) -> None:
    session[SESSION_KEY] = auth_version(user.id)


def _revoke_on_logout(sender: Any, user: Any, **extra: Any) -> None:
    if getattr(user, "id", None) is not None:
        revoke_sessions_and_tokens(user)


def _load_session_user(sm: Any, pk: Any) -> Any:
    """Flask-Login's loader: FAB's (active users only), plus the auth version check (read
    first: its statement loads the user too)."""
    try:
        version = auth_version(pk)
    except (TypeError, ValueError):
        return None
    user = sm.load_user(pk)
    if user is None or session.get(SESSION_KEY) != version:
        return None
    return user


def _jwt_claims(identity: Any) -> dict[str, int]:
    try:
        return {JWT_CLAIM: auth_version(identity)}
    except (TypeError, ValueError):
        return {}


def _jwt_revoked(jwt_header: dict, jwt_payload: dict) -> bool:
    try:
        return jwt_payload.get(JWT_CLAIM) != auth_version(jwt_payload["sub"])
    except (KeyError, TypeError, ValueError):
        return True


# --- lockout and rate limits -----------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        unit = "minute" if minutes == 1 else "minutes"
        return f"Too many failed sign-ins; try again in {minutes} {unit}."


class LoginThrottle:
    """Failed sign-ins per client address and per user name, in moving windows."""

    def __init__(self, storage_uri: str, ip_limit: str, user_limit: str) -> None:
        self.storage = storage_from_string(storage_uri)
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.ip_limit = parse(ip_limit)
        self.user_limit = parse(user_limit)

    def _keys(self, username: str) -> list[tuple[Any, str, str]]:
        return [
            (self.ip_limit, "login-ip", request.remote_addr or "unknown"),
            (self.user_limit, "login-user", (username or "").strip().lower()),
        ]

    def refusal(self, username: str) -> Refusal | None:
        try:
            for item, scope, key in self._keys(username):
                if not self.strategy.test(item, scope, key):
                    stats = self.strategy.get_window_stats(item, scope, key)
                    now = utcnow().timestamp()
                    return Refusal(max(1, math.ceil(stats.reset_time - now)))
        except Exception:  # the limits store is down: the account lockout still holds
            log.exception("login rate limit store unavailable; not limiting")
        return None

    def failed(self, username: str) -> None:
        try:
            for item, scope, key in self._keys(username):
                self.strategy.hit(item, scope, key)
        except Exception:
            log.exception("login rate limit store unavailable; failure not counted")

    def reset(self) -> None:
        self.storage.reset()


def throttle() -> LoginThrottle:
    return current_app.extensions["orderbridge_login_throttle"]


def _find_user(sm: Any, username: str) -> Any:
    if not username:
        return None
    return sm.find_user(username=username) or sm.find_user(email=username)


def account_lock(user: Any) -> Refusal | None:
    """The lockout of ``user``'s account, if it is locked now."""
    if user is None:
        return None
    state = db.session.get(UserAuthState, user.id)
    if state is None or state.locked_until is None:
        return None
    remaining = (state.locked_until - utcnow()).total_seconds()
    return Refusal(math.ceil(remaining)) if remaining > 0 else None


def login_refusal(sm: Any, username: str) -> Refusal | None:
    """Why a sign-in as ``username`` is refused right now (locked, or too many failures)."""
    return account_lock(_find_user(sm, username)) or throttle().refusal(username)


def login_failed(sm: Any, username: str) -> None:
    """Count a failed sign-in; lock the account after too many consecutive failures."""
    throttle().failed(username)
    user = _find_user(sm, username)
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    if user is None or not limit or (user.fail_login_count or 0) < limit:
        return
    from portal.services import audit
    from portal.services.base import Actor, unit_of_work

    with unit_of_work():
        seconds = current_app.config["LOGIN_LOCKOUT_SECONDS"]
        state = _state_for(db.session, user.id)
        state.locked_until = utcnow() + timedelta(seconds=seconds)
        failures = user.fail_login_count
        user.fail_login_count = 0  # the next lockout needs as many failures again
        audit.record(
            Actor.system(AUTH_ACTOR_NAME),
            "user",
            user.username,
            "locked_out",
            detail={
                "failures": failures,
                "locked_until": state.locked_until,
                "address": request.remote_addr,
            },
        )
    g.login_refusal = Refusal(seconds)


def _refuse(refusal: Refusal, kind: str):
    if kind == "api":
        response = jsonify(message=refusal.message)
        response.status_code = 429
    else:
        flash(refusal.message, "danger")
        response = redirect(request.full_path if request.query_string else request.path)
    response.headers["Retry-After"] = str(refusal.retry_after)
    return response


def _username_of_request(kind: str) -> str:
    if kind == "api":
        body = request.get_json(silent=True)
        value = body.get("username") if isinstance(body, dict) else None
    else:
        value = request.form.get("username")
    return value if isinstance(value, str) else ""


# --- wiring ----------------------------------------------------------------------------------


def _policy_errors_as_click_errors() -> None:
    """``orderbridge fab create-admin`` & co.: a refused password is a message, not a trace."""
    import click
    from flask_appbuilder.cli import fab

    for name in ("create-admin", "create-user", "reset-password"):
        command = fab.commands.get(name)
        if command is None or getattr(command.callback, "_ob_policy", False):
            continue

        def checked(*args: Any, _callback: Any = command.callback, **kwargs: Any) -> Any:
            try:
                return _callback(*args, **kwargs)
            except PasswordPolicyError as error:
                raise click.ClickException(str(error)) from error

        checked._ob_policy = True  # type: ignore[attr-defined]
        command.callback = checked


def init_app(app: Flask) -> None:
    """Register the hooks; call after ``appbuilder.init_app``."""
    from portal.extensions import appbuilder

    sm = appbuilder.sm
    app.config.setdefault("FAB_PASSWORD_COMPLEXITY_ENABLED", True)
    app.config.setdefault("FAB_PASSWORD_COMPLEXITY_VALIDATOR", fab_password_validator)
    app.extensions["orderbridge_login_throttle"] = LoginThrottle(
        app.config["LOGIN_LIMIT_STORAGE_URI"],
        app.config["LOGIN_IP_FAILURE_LIMIT"],
        app.config["LOGIN_USER_FAILURE_LIMIT"],
    )
    _policy_errors_as_click_errors()
    sm.lm.user_loader(lambda pk: _load_session_user(sm, pk))
    sm.jwt_manager.additional_claims_loader(_jwt_claims)
    sm.jwt_manager.token_in_blocklist_loader(_jwt_revoked)
    user_logged_in.connect(_stamp_session, app, weak=False)
    user_logged_out.connect(_revoke_on_logout, app, weak=False)

    @app.before_request
    def _refuse_throttled_logins():
        kind = LOGIN_ENDPOINTS.get(request.endpoint or "")
        if kind is None or request.method != "POST":
            return None
        refusal = login_refusal(sm, _username_of_request(kind))
        return _refuse(refusal, kind) if refusal else None

    @app.after_request
    def _lockout_on_api_login(response):
        refusal = g.get("login_refusal")
        if refusal is not None and request.endpoint == "SecurityApi.login":
            return _refuse(refusal, "api")
        if refusal is not None and response.status_code in (301, 302, 303):
            flash(refusal.message, "danger")
        return response
