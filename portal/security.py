"""Roles and permissions, declared in code (DESIGN.md section 4).

Every view and REST resource of one kind of record shares a FAB permission name (its
``class_permission_name``) and maps its methods onto a few verbs (``can_read``, ``can_write``
and action verbs such as ``can_approve``), so the same rule holds in the browser and on the API.
``orderbridge roles sync`` makes the database's roles match :data:`ROLE_PERMISSIONS` exactly.
Admin is FAB's admin role and holds every permission.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from flask import g, has_request_context, request
from flask_appbuilder import AppBuilder
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_jwt_extended import verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from flask_login import current_user
from jwt import PyJWTError
from sqlalchemy.orm import joinedload

from portal.auth import (
    ResetMyPasswordView,
    check_password_policy,
    login_failed,
    permission_stamp,
)
from portal.permission_cache import PermissionCache
from portal.services import audit, email_addresses
from portal.services.base import Actor, unit_of_work
from portal.tokenauth import TokenRefused, user_from_bearer

ADMIN_ROLE = "Admin"
SPECIALIST = "Specialist"
SUPERVISOR = "Supervisor"
AUDITOR = "Auditor"
ROLES = (SPECIALIST, SUPERVISOR, AUDITOR, ADMIN_ROLE)
ROLES_ACTOR = Actor.system("system:roles-sync")

# View methods → permission verbs, shared by ModelViews and ModelRestApis.
READ_METHODS = {
    "list": "read",
    "show": "read",
    "get": "read",
    "get_list": "read",
    "info": "read",
    "history": "read",
}
WRITE_METHODS = {"add": "write", "edit": "write", "post": "write", "put": "write"}
METHOD_PERMISSIONS = {**READ_METHODS, **WRITE_METHODS}

# Permission view names (class_permission_name) of the business records.
ORDERS = "SalesOrder"
ORDER_LINES = "OrderLine"
CUSTOMERS = "Customer"
PRODUCTS = "Product"
WAREHOUSES = "Warehouse"
STOCK = "StockLevel"
MASTER_DATA = "MasterData"
AUDIT = "AuditEvent"
JOBS = "JobRun"
SHIPMENTS = "Shipment"
BACKORDERS = "Backorder"
RETURNS = "ReturnAuthorization"
NOTIFICATIONS = "Notification"
RECEIPTS = "StockReceipt"  # goods receipts (portal.services.receipts.RECEIPT_VIEW)
IMPORTS = "OrderImport"  # the Import page (Specialists and Admins; docs/import.md)
IMPROVEMENTS = "ImprovementAction"  # the improvement log (docs/service-levels.md)

BUSINESS_RECORDS = (
    ORDERS,
    ORDER_LINES,
    CUSTOMERS,
    PRODUCTS,
    WAREHOUSES,
    STOCK,
    MASTER_DATA,
    SHIPMENTS,
    BACKORDERS,
    RETURNS,
    NOTIFICATIONS,
    RECEIPTS,
    IMPROVEMENTS,
)
SPECIALIST_WRITES = (ORDERS, ORDER_LINES, SHIPMENTS, RETURNS, RECEIPTS, IMPROVEMENTS)
SUPERVISOR_WRITES = (*SPECIALIST_WRITES, CUSTOMERS, PRODUCTS, WAREHOUSES, STOCK, MASTER_DATA)
# Order actions only a Supervisor (or Admin) takes.
SUPERVISOR_ORDER_ACTIONS = {("can_release", ORDERS), ("can_override_price", ORDERS)}

# Actions only Admin takes (Admin is FAB's admin role and holds every permission; no other
# role may be declared with these): requeue a failed notification, fixing its recipient.
ADMIN_ACTIONS = frozenset({("can_requeue", NOTIFICATIONS)})

# Finance: everyone reads; Specialists and Supervisors write (invoice, record payments,
# request credits, open and update disputes); Supervisors approve credits within their limit;
# Supervisors and Auditors export (Admin holds everything and approves without a limit).
INVOICES = "Invoice"
PAYMENTS = "Payment"
CREDIT_MEMOS = "CreditMemo"
DISPUTES = "Dispute"
FINANCE_RECORDS = (INVOICES, PAYMENTS, CREDIT_MEMOS, DISPUTES)
# Returns and disputes: only a Supervisor authorizes a return (never the requester) and
# resolves a dispute they opened themselves.
SUPERVISOR_CHECKS = {("can_authorize", RETURNS), ("can_resolve_own", DISPUTES)}
EXPORTABLE = (*FINANCE_RECORDS, AUDIT)
APPROVAL_LIMITS: dict[str, Decimal] = {SUPERVISOR: Decimal("5000.00")}

# Two-way sync: trackers are the Admin's; Specialists and Supervisors follow sync runs and
# conflicts, Supervisors resolve conflicts; Auditors read all of it.
TRACKERS = "Tracker"
SYNC_RUNS = "SyncRun"
SYNC_CONFLICTS = "SyncConflict"
SYNC_DELETED = "SyncDeletedRow"  # rows deleted from a tracker; Supervisors decide (resolve)
SYNC_RECORDS = (SYNC_RUNS, SYNC_CONFLICTS, SYNC_DELETED)
# "My trackers": the trackers a user owns or that are shared with them (Admins: all) —
# sync now, download and upload the workbook, run history (services.tracker_work.WORK_VIEW).
TRACKER_WORK = "TrackerWork"
# Attaching a workbook a team already has (issue 12): Specialists and Admins.
ATTACH = "AttachWorkbook"

# Service levels: Specialists and Supervisors watch them (the page, its drill-down);
# Supervisors set the targets; the weekly order-health workbook is theirs and the Auditors',
# who read the page it is made from (read-only: no targets, no improvement log entries).
SERVICE_LEVELS = "ServiceLevel"
WEEKLY_REPORT = ("can_report", SERVICE_LEVELS)

API_TOKENS = "ApiToken"  # portal.services.api_tokens.TOKEN_VIEW

# What every signed-in user may do regardless of role (FAB's own self-service pages).
SELF_SERVICE = frozenset(
    {
        ("can_get", "OpenApi"),
        ("can_userinfo", "UserDBModelView"),
        ("resetmypassword", "UserDBModelView"),
        ("can_this_form_get", "ResetMyPasswordView"),
        ("can_this_form_post", "ResetMyPasswordView"),
        ("can_show", "SwaggerView"),
        # Personal API tokens: each user's own (Admins: everyone's; services.api_tokens).
        ("can_read", API_TOKENS),
        ("can_write", API_TOKENS),
    }
)


class OrderbridgeSecurityManager(SecurityManager):
    """FAB's security manager, with each request's permission checks answered from one load.

    FAB asks the database once per check, and a page checks every menu entry; here the
    user's (permission, view) pairs come from the process's :class:`PermissionCache`, checked
    against the permission stamp once per request. The user-statistics chart is left out (it
    fails with few users).
    """

    userstatschartview = None
    resetmypasswordview = ResetMyPasswordView  # asks for the current password

    def auth_user_db(self, username: str, password: str) -> Any:
        """FAB's check, plus the failure count and lockout of ``portal.auth``."""
        user = super().auth_user_db(username, password)
        if user is None and has_request_context():
            login_failed(self, username)
        return user

    def add_user(self, *args: Any, **kwargs: Any) -> Any:
        """FAB's ``add_user``; a plain password must meet the policy (CLI included) and the
        e-mail address the portal's address rule (``ValueError`` naming the field)."""
        email = kwargs["email"] if "email" in kwargs else (args[3:4] or [None])[0]
        problem = email_addresses.address_problem(email)
        if problem is not None:
            raise ValueError(f"email {problem}")
        password = kwargs["password"] if "password" in kwargs else (args[5:6] or [""])[0]
        if password:  # no password: FAB sets a random one (users of other auth backends)
            check_password_policy(password)
        return super().add_user(*args, **kwargs)

    def validate_api_key(self, api_key_string: str) -> Any:
        """FAB's ``@protect`` asks this for an ``obt_`` bearer token: the portal's own API
        tokens (``portal.tokenauth``, which signed the request in already), never FAB's
        ``ab_api_key`` table."""
        try:
            return user_from_bearer()
        except TokenRefused:
            return None

    def reset_password(self, userid: Any, password: str) -> None:
        check_password_policy(password)
        super().reset_password(userid, password)

    def __init__(self, appbuilder: AppBuilder) -> None:
        super().__init__(appbuilder)
        self.permission_cache = PermissionCache()

    def request_permissions(self, user: object | None) -> frozenset[tuple[str, str]]:
        """The (permission, view) pairs of ``user`` (``None`` or anonymous: the Public
        role's) for this request: from the process's cache while the permission stamp this
        request read has not moved (``portal.permission_cache``)."""
        owner = getattr(user, "id", None) if getattr(user, "is_authenticated", False) else None
        held = g.get("_orderbridge_permissions")
        if held is None or held[0] != owner:
            pairs = self.permission_cache.get(
                self.session, owner, permission_stamp(), self.auth_role_public
            )
            held = g._orderbridge_permissions = (owner, pairs)
        return held[1]

    def _has_view_access(self, user: object, permission_name: str, view_name: str) -> bool:
        if not has_request_context():
            return super()._has_view_access(user, permission_name, view_name)
        return (permission_name, view_name) in self.request_permissions(user)

    def is_item_public(self, permission_name: str, view_name: str) -> bool:
        if not has_request_context():
            return super().is_item_public(permission_name, view_name)
        _read_user_first()
        return (permission_name, view_name) in self.request_permissions(None)


def _read_user_first() -> None:
    """Before the Public role's check (FAB's first on an API route), the request's user from
    its session or JWT: the statement that loads them reads the permission stamp too, so the
    check costs no statement of its own. A bad token is left to FAB's own check."""
    if "_ob_permission_stamp" in g or current_user.is_authenticated:
        return
    if request.headers.get("Authorization", "").startswith("Bearer "):
        try:
            verify_jwt_in_request(optional=True)
        except (JWTExtendedException, PyJWTError):
            return


def _grant(verb: str, views: Iterable[str]) -> set[tuple[str, str]]:
    return {(f"can_{verb}", view) for view in views}


ROLE_PERMISSIONS: dict[str, frozenset[tuple[str, str]]] = {
    SPECIALIST: frozenset(
        SELF_SERVICE
        | _grant("read", (*BUSINESS_RECORDS, *FINANCE_RECORDS))
        | _grant("write", (*SPECIALIST_WRITES, *FINANCE_RECORDS, IMPORTS))
        | _grant("read", SYNC_RECORDS)
        | _grant("work", (TRACKER_WORK,))
        | _grant("write", (ATTACH,))
        | _grant("read", (SERVICE_LEVELS,))
        | {WEEKLY_REPORT}
    ),
    SUPERVISOR: frozenset(
        SELF_SERVICE
        | _grant("read", (*BUSINESS_RECORDS, *FINANCE_RECORDS, AUDIT))
        | _grant("write", (*SUPERVISOR_WRITES, *FINANCE_RECORDS))
        | SUPERVISOR_ORDER_ACTIONS
        | SUPERVISOR_CHECKS
        | _grant("verify", (AUDIT,))
        | _grant("approve", (CREDIT_MEMOS,))
        | _grant("export", EXPORTABLE)
        | _grant("read", SYNC_RECORDS)
        | _grant("resolve", (SYNC_CONFLICTS, SYNC_DELETED))
        | _grant("work", (TRACKER_WORK,))
        | _grant("read", (SERVICE_LEVELS,))
        | _grant("write", (SERVICE_LEVELS,))
        | {WEEKLY_REPORT}
    ),
    AUDITOR: frozenset(
        SELF_SERVICE
        | _grant("read", (*BUSINESS_RECORDS, *FINANCE_RECORDS, AUDIT))
        | _grant("verify", (AUDIT,))
        | _grant("export", EXPORTABLE)
        | _grant("read", (*SYNC_RECORDS, TRACKERS))
        | _grant("read", (SERVICE_LEVELS,))
        | {WEEKLY_REPORT}
    ),
}


def role_allows(role: str, permission: str, view_menu: str) -> bool:
    """Whether ``role`` holds ``permission`` on ``view_menu`` by this module's declaration."""
    if role == ADMIN_ROLE:
        return True
    return (permission, view_menu) in ROLE_PERMISSIONS.get(role, frozenset())


def _menu_grants(appbuilder: AppBuilder, permissions: frozenset[tuple[str, str]]) -> set[str]:
    """Menu entries to show a role: items whose view it may read (or hold the view's
    ``menu_permission``, e.g. ``can_write`` for a form page), and their categories."""
    granted: set[str] = set()
    for category in appbuilder.menu.get_list():
        children = [category, *category.childs] if category.childs else [category]
        for item in children:
            view = getattr(item, "baseview", None)
            needed = getattr(view, "menu_permission", "can_read")
            if (needed, getattr(view, "class_permission_name", None)) in permissions:
                granted.add(item.name)
                granted.add(category.name)
    return granted


def declared_permission_views(appbuilder: AppBuilder) -> set[tuple[str, str]]:
    """Every ``(permission, view)`` the registered views, APIs and menu entries use.

    What FAB's ``add_permissions`` creates, with the verbs of the views and APIs that share a
    ``class_permission_name`` merged: FAB adds them view by view and then tries to delete the
    verbs the next view of the same name lacks (refused, with a warning, as roles hold them).
    """
    pairs = {
        (permission, view.class_permission_name)
        for view in appbuilder.baseviews
        for permission in getattr(view, "base_permissions", None) or ()
    }
    for category in appbuilder.menu.get_list():
        for item in (category, *category.childs):
            if item.name != "-":
                pairs.add(("menu_access", item.name))
    return pairs


def _permission_views(sm: SecurityManager, wanted: set[tuple[str, str]]) -> dict[tuple, Any]:
    """The permission-view rows of ``wanted``, creating the missing ones (no commit)."""
    sess = sm.session
    rows = {
        (pv.permission.name, pv.view_menu.name): pv
        for pv in sess.query(sm.permissionview_model).options(
            joinedload(sm.permissionview_model.permission),
            joinedload(sm.permissionview_model.view_menu),
        )
        if pv.permission is not None and pv.view_menu is not None
    }
    missing = wanted - set(rows)
    if missing:
        permissions = {row.name: row for row in sess.query(sm.permission_model)}
        views = {row.name: row for row in sess.query(sm.viewmenu_model)}
        for perm, view in sorted(missing):
            if perm not in permissions:
                permissions[perm] = sm.permission_model(name=perm)
            if view not in views:
                views[view] = sm.viewmenu_model(name=view)
            pv = sm.permissionview_model()
            pv.permission, pv.view_menu = permissions[perm], views[view]
            sess.add(pv)
            rows[(perm, view)] = pv
    return rows


def _role(sm: SecurityManager, name: str) -> tuple[Any, bool]:
    """The role called ``name``, created (not committed) if missing; and whether it was."""
    role = sm.session.query(sm.role_model).filter_by(name=name).one_or_none()
    if role is not None:
        return role, False
    role = sm.role_model()
    role.name = name
    sm.session.add(role)
    return role, True


def sync_roles(appbuilder: AppBuilder, actor: Actor = ROLES_ACTOR) -> dict[str, tuple[int, int]]:
    """Create or update each declared role to hold exactly its permissions (idempotent).

    Admin holds every permission the app declares, Public none (FAB's built-in roles); each
    role of :data:`ROLE_PERMISSIONS` holds its pairs plus the menu entries it may read. All of
    it is one transaction. Returns role → (permissions added, permissions removed); a sync
    that changed a role writes one audit event naming, per role, what it gained and lost.
    """
    sm = appbuilder.sm
    declared = declared_permission_views(appbuilder)
    plans = {sm.auth_role_admin: declared}
    for role_name, permissions in ROLE_PERMISSIONS.items():
        plans[role_name] = set(permissions) | {
            ("menu_access", menu) for menu in _menu_grants(appbuilder, permissions)
        }
    report: dict[str, tuple[int, int]] = {}
    changed: dict[str, dict[str, Any]] = {}
    with unit_of_work():
        rows = _permission_views(sm, declared.union(*plans.values()))
        _role(sm, sm.auth_role_public)
        for role_name, wanted in plans.items():
            role, created = _role(sm, role_name)
            current = {(pv.permission.name, pv.view_menu.name): pv for pv in role.permissions}
            added = sorted(wanted - set(current))
            # Admin keeps whatever it holds; the declared roles hold exactly their pairs.
            removed = [] if role_name == sm.auth_role_admin else sorted(set(current) - wanted)
            role.permissions.extend(rows[key] for key in added)
            for key in removed:
                role.permissions.remove(current[key])
            report[role_name] = (len(added), len(removed))
            if created or added or removed:
                changed[role_name] = {"created": True} if created else {}
            if added or removed:
                changed[role_name].update(
                    added=[f"{perm} on {view}" for perm, view in added],
                    removed=[f"{perm} on {view}" for perm, view in removed],
                )
        if changed:
            audit.record(actor, "role", None, "sync", detail=changed)
    return report


def sync_summary(report: dict[str, tuple[int, int]]) -> str:
    """A :func:`sync_roles` report in one line: ``3 permissions added, 0 removed``."""
    added = sum(count for count, _ in report.values())
    removed = sum(count for _, count in report.values())
    detail = ", ".join(f"{role} +{a} -{r}" for role, (a, r) in report.items() if a or r)
    return f"{added} permissions added, {removed} removed" + (f" ({detail})" if detail else "")
