"""Sign-in state kept beside FAB's ``ab_user``: the auth version and the lockout.

``auth_version`` is stamped into every session and JWT at sign-in; bumping it (sign-out,
password change, deactivation) makes every earlier session and token of the user invalid.
``locked_until`` is set after too many consecutive failed sign-ins. See ``portal.auth``.

``permission_stamp`` is one row whose ``value`` database triggers (migration 0019) bump on any
change of roles, permissions, or who holds which role; each web process keeps users'
permissions loaded until the stamp it reads once per request has moved
(``portal.security``).
"""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder.models.sqla import Model
from sqlalchemy import BigInteger, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.core import UTCDateTime

__all__ = ["PermissionStamp", "UserAuthState"]


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
