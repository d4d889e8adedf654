"""Sign-in state kept beside FAB's ``ab_user``, and personal API tokens.

``auth_version`` is stamped into every session and JWT at sign-in; bumping it (sign-out,
password change, deactivation) makes every earlier session and token of the user invalid.
``locked_until`` is set after too many consecutive failed sign-ins. See ``portal.auth``.

``permission_stamp`` is one row whose ``value`` database triggers (migration 0020) bump on any
change of roles, permissions, or who holds which role; each web process keeps users'
permissions loaded until the stamp it reads once per request has moved
(``portal.permission_cache``).

An :class:`ApiToken` lets a client (a script, the xlwings add-in) act as its user with
``Authorization: Bearer obt_…``. Only the SHA-256 of the token is stored, never the token;
``last_four`` is what the page shows. See ``portal.services.api_tokens`` and
``portal.tokenauth``.
"""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder.models.sqla import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.core import UTCDateTime, utcnow

__all__ = ["ApiToken", "PermissionStamp", "UserAuthState"]


class UserAuthState(Model):
    """One row per user who ever signed out, changed password or got locked out."""

    __tablename__ = "user_auth_state"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True
    )
    auth_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PermissionStamp(Model):
    """The one row (id 1) whose value changes with any role or permission (by triggers)."""

    __tablename__ = "permission_stamp"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class ApiToken(Model):
    """A personal API token: its owner, a name, the token's SHA-256 and its lifetime."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    last_four: Mapped[str] = mapped_column(String(4), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(120))
    user: Mapped[User] = relationship(User, lazy="joined")

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"
