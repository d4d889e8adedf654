"""Users' permissions, loaded once per process and kept until roles or permissions change.

Each web process keeps every user's (permission, view) pairs, and the Public role's, with the
permission stamp they were loaded under. The stamp (``permission_stamp``, bumped by database
triggers on any change of FAB's security tables, whoever makes it) is read once per request,
in the statement that loads the signed-in user (``portal.auth.auth_version``); while it has
not moved the pairs are used as kept, else they are loaded again in one statement. A change
made in any process (the Admin's role pages, ``orderbridge roles sync``, ``fab`` commands,
SQL) takes effect on each process's next request.
"""

from __future__ import annotations

from threading import Lock

from flask_appbuilder.security.sqla.models import (
    Permission,
    PermissionView,
    Role,
    ViewMenu,
    assoc_group_role,
    assoc_permissionview_role,
    assoc_user_group,
    assoc_user_role,
)
from sqlalchemy import select, union
from sqlalchemy.orm import Session

Pairs = frozenset[tuple[str, str]]


def load_permissions(session: Session, user_id: int | None, public_role: str) -> Pairs:
    """The (permission, view) pairs of the user's roles (their own and their groups'), or the
    Public role's for ``None``: one statement."""
    if user_id is None:
        roles = select(Role.id).where(Role.name == public_role)
    else:
        roles = union(
            select(assoc_user_role.c.role_id).where(assoc_user_role.c.user_id == user_id),
            select(assoc_group_role.c.role_id)
            .join(assoc_user_group, assoc_user_group.c.group_id == assoc_group_role.c.group_id)
            .where(assoc_user_group.c.user_id == user_id),
        )
    rows = session.execute(
        select(Permission.name, ViewMenu.name)
        .select_from(PermissionView)
        .join(Permission, Permission.id == PermissionView.permission_id)
        .join(ViewMenu, ViewMenu.id == PermissionView.view_menu_id)
        .join(
            assoc_permissionview_role,
            assoc_permissionview_role.c.permission_view_id == PermissionView.id,
        )
        .where(assoc_permissionview_role.c.role_id.in_(roles))
        .distinct()
    )
    return frozenset((permission, view) for permission, view in rows)


class PermissionCache:
    """Per process: user id (``None``: the Public role) → (stamp, pairs)."""

    def __init__(self) -> None:
        self._kept: dict[int | None, tuple[int, Pairs]] = {}
        self._lock = Lock()

    def get(
        self, session: Session, user_id: int | None, stamp: int | None, public_role: str
    ) -> Pairs:
        """The pairs of ``user_id`` as of ``stamp``: kept ones while the stamp is the same,
        else loaded (and kept, unless there is no stamp to check them against)."""
        kept = self._kept.get(user_id)
        if stamp is not None and kept is not None and kept[0] == stamp:
            return kept[1]
        pairs = load_permissions(session, user_id, public_role)
        if stamp is not None:
            with self._lock:
                self._kept[user_id] = (stamp, pairs)
        return pairs

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
