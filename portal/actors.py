"""Turning the signed-in user into a service :class:`Actor` (view and API layer only)."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_jwt_extended import current_user as jwt_current_user
from flask_jwt_extended import verify_jwt_in_request
from flask_login import current_user

from portal.security import ADMIN_ROLE
from portal.services.base import Actor, PermissionDenied


def actor_for_user(user: Any, source: str) -> Actor:
    """An actor carrying the user's name, id and the FAB permissions of all their roles."""
    permissions = frozenset(
        (pv.permission.name, pv.view_menu.name) for role in user.roles for pv in role.permissions
    )
    return Actor(
        name=user.username,
        source=source,
        user_id=user.id,
        permissions=permissions,
        is_admin=any(role.name == ADMIN_ROLE for role in user.roles),
    )


def current_actor(source: str) -> Actor:
    """The actor of the current request (``web`` or ``api``); refuses anonymous users."""
    user = getattr(g, "user", None) or current_user
    if user is None or not getattr(user, "is_authenticated", False):
        # REST clients authenticate with a JWT, which FAB resolves through flask-jwt-extended.
        verify_jwt_in_request(optional=True)
        user = jwt_current_user
    if user is None or not getattr(user, "is_authenticated", False):
        raise PermissionDenied("sign in first")
    return actor_for_user(user, source)
