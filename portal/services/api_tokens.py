"""Personal API tokens: create (shown once), list, revoke, and verify a presented token.

A token is ``obt_`` followed by 43 URL-safe characters (256 random bits). Only its SHA-256
is stored (``ApiToken.token_hash``), with the last four characters for display; the
plaintext exists once, in what :func:`create` returns. Every signed-in role manages its own
tokens (``can_write`` on ``ApiToken``); Admins see and revoke everyone's. Creation and
revocation are audited (entity ``api_token``) without the token. :func:`verify` is what
bearer authentication (``portal.tokenauth``) calls: unknown, revoked and expired tokens and
deactivated users are refused with a message that says which.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import or_, select, update

from portal.models import ApiToken, utcnow
from portal.services import audit
from portal.services.base import (
    Actor,
    ConflictError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    require,
    session,
    unit_of_work,
)

TOKEN_VIEW = "ApiToken"  # the permission view name of the page (and of these rules)
PREFIX = "obt_"
SECRET_BYTES = 32
NAME_MAX = 100
# last_used_at is written at most once a minute per token, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
_MAX_PRESENTED = 200  # longer "tokens" are refused before hashing


class TokenInvalid(Exception):
    """A presented token does not authenticate; ``message`` says why (for the 401)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CreatedToken:
    """A new token's record and its plaintext, which is never available again."""

    record: ApiToken
    plaintext: str


def hash_token(plaintext: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def default_days() -> int:
    return int(current_app.config.get("API_TOKEN_DEFAULT_DAYS", 90))


def max_days() -> int:
    return int(current_app.config.get("API_TOKEN_MAX_DAYS", 365))


def _checked_input(name: object, days: object) -> tuple[str, int]:
    errors: dict[str, list[str]] = {}
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        errors["name"] = ["a name is required (what the token is for, e.g. 'Excel on laptop')"]
    elif len(text) > NAME_MAX:
        errors["name"] = [f"at most {NAME_MAX} characters"]
    if days is None or days == "":
        days = default_days()
    try:
        whole = int(days) if not isinstance(days, bool | float) else None
    except (TypeError, ValueError):
        whole = None
    if whole is None or not 1 <= whole <= max_days():
        errors["expires_in_days"] = [f"a whole number of days from 1 to {max_days()}"]
    if errors:
        raise ValidationFailed(errors)
    return text, whole  # type: ignore[return-value]


def create(actor: Actor, name: object, expires_in_days: object = None) -> CreatedToken:
    """Make a token for the actor's own user; the plaintext is in the result, only there."""
    require(actor, "can_write", TOKEN_VIEW, "create API tokens")
    if actor.user_id is None:
        raise PermissionDenied("API tokens belong to users; a system actor has none")
    text, days = _checked_input(name, expires_in_days)
    plaintext = PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    now = utcnow()
    with unit_of_work() as sess:
        record = ApiToken(
            user_id=actor.user_id,
            name=text,
            token_hash=hash_token(plaintext),
            last_four=plaintext[-4:],
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        sess.add(record)
        audit.record(
            actor,
            "api_token",
            record,
            "created",
            detail={
                "name": text,
                "user": actor.name,
                "last_four": record.last_four,
                "expires_at": record.expires_at,
            },
        )
    return CreatedToken(record, plaintext)


def visible_to(actor: Actor) -> list[ApiToken]:
    """The tokens the actor may see: their own; an Admin's view holds everyone's."""
    require(actor, "can_read", TOKEN_VIEW, "see API tokens")
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if not actor.is_admin:
        query = query.where(ApiToken.user_id == actor.user_id)
    return list(session().scalars(query))


def get_for(actor: Actor, token_id: int) -> ApiToken:
    """One token the actor may manage: their own, or any for an Admin (403 otherwise)."""
    require(actor, "can_write", TOKEN_VIEW, "manage API tokens")
    record = session().get(ApiToken, token_id)
    if record is None:
        raise NotFound(f"API token {token_id} does not exist")
    if record.user_id != actor.user_id and not actor.is_admin:
        raise PermissionDenied("You may revoke only your own API tokens.")
    return record


def revoke(actor: Actor, token_id: int) -> ApiToken:
    """Revoke a token now (its owner or an Admin); it stops working on the next request."""
    with unit_of_work() as sess:
        record = get_for(actor, token_id)
        now = utcnow()
        changed = sess.execute(
            update(ApiToken)
            .where(ApiToken.id == record.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=actor.name)
            .execution_options(synchronize_session="fetch")
        ).rowcount
        if not changed:
            raise ConflictError(f"The API token '{record.name}' is already revoked.")
        audit.record(
            actor,
            "api_token",
            record.id,
            "revoked",
            detail={
                "name": record.name,
                "user": record.user.username,
                "last_four": record.last_four,
            },
        )
    return record


def _moment(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def verify(plaintext: str, now: datetime | None = None) -> ApiToken:
    """The live token matching ``plaintext`` (last use noted), or :class:`TokenInvalid`."""
    if not plaintext.startswith(PREFIX) or len(plaintext) > _MAX_PRESENTED:
        raise TokenInvalid("Unknown API token.")
    digest = hash_token(plaintext)
    sess = session()
    record = sess.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    # The lookup is by hash of a 256-bit secret; the compare is constant-time all the same.
    if record is None or not hmac.compare_digest(record.token_hash, digest):
        raise TokenInvalid("Unknown API token.")
    now = now or utcnow()
    state = record.state(now)
    if state == "revoked":
        raise TokenInvalid(
            f"This API token ('{record.name}') was revoked on {_moment(record.revoked_at)}; "
            "create a new one under Account → API tokens."
        )
    if state == "expired":
        raise TokenInvalid(
            f"This API token ('{record.name}') expired on {_moment(record.expires_at)}; "
            "create a new one under Account → API tokens."
        )
    user: User | None = record.user
    if user is None or not user.is_active:
        raise TokenInvalid("The user of this API token is deactivated.")
    _note_use(record, now)
    return record


def _note_use(record: ApiToken, now: datetime) -> None:
    """Set ``last_used_at`` unless it was set within :data:`LAST_USED_RESOLUTION`."""
    if record.last_used_at is not None and now - record.last_used_at < LAST_USED_RESOLUTION:
        return
    with unit_of_work() as sess:
        sess.execute(
            update(ApiToken)
            .where(
                ApiToken.id == record.id,
                or_(
                    ApiToken.last_used_at.is_(None),
                    ApiToken.last_used_at < now - LAST_USED_RESOLUTION,
                ),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session="fetch")
        )
