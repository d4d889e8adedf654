"""Role × endpoint matrix over every route the app registers.

The expected answer of each route for each role comes from the route's own FAB permission
(its view's ``class_permission_name`` and ``method_permission_name``) looked up in the roles
declared in ``portal.security``. A route that is neither protected by a permission nor listed
in PUBLIC_ENDPOINTS fails the test, so a new route cannot ship without a rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask

from portal.security import (
    ADMIN_ROLE,
    API_TOKENS,
    AUDITOR,
    SPECIALIST,
    SUPERVISOR,
    role_allows,
)
from tests.conftest import api_headers, login

ROLE_USERS = {
    SPECIALIST: "specialist",
    SUPERVISOR: "supervisor",
    AUDITOR: "auditor",
    ADMIN_ROLE: "admin",
}

# Routes anyone may call, with the reason.
PUBLIC_ENDPOINTS = {
    "static": "static files",
    "appbuilder.static": "FAB's static files",
    "AuthDBView.login": "the login form",
    "AuthDBView.logout": "signing out",
    "SecurityApi.login": "API login",
    "SecurityApi.refresh": "API token refresh (needs a refresh token)",
    "DashboardView.index": "landing page; shows data only to signed-in users",
    "UtilView.back": "redirects to the previous page",
    "LocaleView.index": "language switch",
    "MenuApi.get_menu_data": "the menu, filtered by the user's permissions",
    "SheetsHookView.hook": "a Google tracker's edit trigger; signed with the tracker's secret",
    "XlwingsView.sync": "the xlwings client in Excel; checks the user itself (401/403 as text)",
}
MISSING_ID = 999999


@dataclass(frozen=True)
class Route:
    endpoint: str
    path: str
    method: str
    permission: str
    view_menu: str
    is_api: bool
    enabled: bool  # False: the view does not grant this permission, so FAB denies everyone
    action: str | None = None


def _protected_routes(app: Flask) -> list[Route]:
    from portal.extensions import appbuilder

    views = {view.endpoint: view for view in appbuilder.baseviews}
    routes: list[Route] = []
    unruled: list[str] = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        blueprint, _, method_name = rule.endpoint.partition(".")
        view = views.get(blueprint)
        permission = None
        if view is not None:
            # What FAB's has_access/protect check: the method's permission on the view.
            name = getattr(getattr(view, method_name, None), "_permission_name", None)
            if name is not None and view.method_permission_name:
                name = view.method_permission_name.get(method_name, name)
            if name is not None:
                permission = f"can_{name}"
            elif method_name == "action":
                continue  # GET actions are refused whenever CSRF is on (production)
            elif method_name == "action_post":
                # Row actions: FAB checks each named action's own permission inside, and
                # the matrix checks each action on its own.
                for action_name in view.actions:
                    routes.append(
                        Route(
                            f"{rule.endpoint}:{action_name}",
                            rule.rule,
                            "POST",
                            view.get_action_permission_name(action_name),
                            view.class_permission_name,
                            False,
                            True,
                            action=action_name,
                        )
                    )
                continue
        if permission is None:
            unruled.append(f"{rule.endpoint} {rule.rule}")
            continue
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        method = "GET" if "GET" in methods else methods[0]
        path = re.sub(
            r"<(?:[a-z]+:)?(\w+)>",
            lambda m: "missing_sep_file.txt" if m.group(1) == "filename" else str(MISSING_ID),
            rule.rule,
        )
        routes.append(
            Route(
                rule.endpoint,
                path,
                method,
                permission,
                view.class_permission_name,
                path.startswith("/api/"),
                permission in (view.base_permissions or []),
            )
        )
    assert not unruled, f"routes without a permission or a PUBLIC_ENDPOINTS entry: {unruled}"
    return routes


def _call(client, route: Route, headers: dict[str, str] | None = None):
    kwargs = {"headers": headers or {}}
    if route.action:
        kwargs["data"] = {"action": route.action, "rowid": [str(MISSING_ID)]}
    elif route.method in ("POST", "PUT"):
        kwargs["json"] = {}
    return client.open(route.path, method=route.method, **kwargs)


def _denied(route: Route, response, client) -> bool:
    if route.action:
        with client.session_transaction() as session:
            flashes = session.pop("_flashes", [])
        return any("Access is Denied" in message for _, message in flashes)
    if route.is_api:
        return response.status_code in (401, 403)
    location = response.headers.get("Location", "")
    return response.status_code == 403 or (response.status_code == 302 and "/login/" in location)


def test_every_route_has_a_rule_and_the_matrix_covers_all_views(clean_db) -> None:
    routes = _protected_routes(clean_db)
    endpoints = {route.endpoint for route in routes}
    for expected in (
        "SalesOrderView.list",
        "SalesOrderView.edit",
        "SalesOrderApi.put",
        "AuditEventView.verify",
        "AuditEventApi.get_list",
        "UserDBModelView.list",
        "QueueView.index",
        "StockReceiptApi.post",
        "StockReceiptApi.get_list",
        "StockReceiptView.list",
        "ReceiveStockView.form",
        "ReceiveStockView.products",
        "MyTrackersView.index",
        "MyTrackersView.upload",
        "MyTrackersView.run",
        "MyTrackersView.share",
        "SyncDeletedRowView.decide",
        "CustomerLookupApi.customer",
        "CustomerLookupApi.ship_to",
        "ProductLookupApi.product",
        "InvoiceLookupApi.invoice",
        "SalesOrderApi.add_line",
        "SalesOrderApi.change_line",
        "SalesOrderApi.remove_line",
        "SalesOrderApi.request_price",
        "SalesOrderApi.checks",
        "SalesOrderApi.quote_line",
        "PriceOverrideRequestApi.approve",
        "PriceOverrideRequestApi.reject",
        "OrderEntryView.form",
        "OrderLinesView.add",
        "OrderLinesView.cancel",
        "PriceOverrideView.index",
        "PriceOverrideView.approve",
        "WeeklyReportApi.weekly",
        "ImprovementActionApi.post",
        "ImprovementActionApi.complete",
        # the daily duties (issue 14)
        "ShipmentView.update",
        "ShipmentView.deliver",
        "ReturnView.request_return",
        "ReturnView.authorize",
        "ReturnView.receive",
        "DisputeView.open_dispute",
        "CreditMemoView.request_credit",
        "FailedJobView.retry",
        # personal API tokens (issue 17): every role, each their own
        "ApiTokensView.index",
        "ApiTokensView.create",
        "ApiTokensView.confirm_revoke",
        "ApiTokensView.revoke",
    ):
        assert expected in endpoints
    by_endpoint = {route.endpoint: route for route in routes}
    # Authorizing a return is a Supervisor's (and Admin's), on the page and the API alike.
    for endpoint in ("ReturnView.authorize", "ReturnAuthorizationApi.authorize"):
        route = by_endpoint[endpoint]
        assert (route.permission, route.view_menu) == ("can_authorize", "ReturnAuthorization")
        allowed = {
            role
            for role in ROLE_USERS
            if role_allows(role, route.permission, "ReturnAuthorization")
        }
        assert allowed == {SUPERVISOR, ADMIN_ROLE}
    retry = by_endpoint["FailedJobView.retry"]
    assert {r for r in ROLE_USERS if role_allows(r, retry.permission, retry.view_menu)} == {
        ADMIN_ROLE
    }
    # Every role manages its own API tokens (the service keeps each to their own).
    for endpoint in ("ApiTokensView.index", "ApiTokensView.create", "ApiTokensView.revoke"):
        route = by_endpoint[endpoint]
        assert route.view_menu == API_TOKENS
        assert all(role_allows(r, route.permission, route.view_menu) for r in ROLE_USERS)


@pytest.mark.parametrize("role", [SPECIALIST, SUPERVISOR, AUDITOR, ADMIN_ROLE, None])
def test_role_endpoint_matrix(clean_db, role: str | None) -> None:
    app = clean_db
    routes = _protected_routes(app)
    client = login(app, ROLE_USERS.get(role)) if role else app.test_client()
    headers = api_headers(app, ROLE_USERS[role]) if role else {}
    wrong: list[str] = []
    for route in routes:
        expected = (
            role is not None
            and route.enabled
            and role_allows(role, route.permission, route.view_menu)
        )
        if route.action and expected:
            continue  # running a permitted action would change records; refusal is the point
        response = _call(client, route, headers if route.is_api else None)
        assert response.status_code < 500, f"{route} answered {response.status_code}"
        if _denied(route, response, client) == expected:
            wrong.append(
                f"{route.method} {route.path} ({route.permission} on {route.view_menu}): "
                f"expected {'allowed' if expected else 'denied'}, got {response.status_code}"
            )
    assert not wrong, f"{role or 'anonymous'}:\n" + "\n".join(wrong)


def test_auditor_can_read_everything_and_write_nothing(clean_db) -> None:
    routes = _protected_routes(clean_db)
    # Their own API tokens are the one thing an Auditor writes (a credential, no record).
    writes = [r for r in routes if r.permission == "can_write" and r.view_menu != API_TOKENS]
    # Auditors read every record and the Service levels page, whose weekly workbook they get.
    not_theirs = ("JobRun",)
    reads = [r for r in routes if r.permission == "can_read" and r.view_menu not in not_theirs]
    assert writes and reads
    assert not any(role_allows(AUDITOR, r.permission, r.view_menu) for r in writes)
    assert all(role_allows(AUDITOR, r.permission, r.view_menu) for r in reads)


def test_specialist_cannot_touch_admin_areas(clean_db) -> None:
    client = login(clean_db, "specialist")
    for path in ("/users/list/", "/roles/list/", "/queues/", "/jobrunview/list/"):
        response = client.get(path)
        assert response.status_code in (302, 403), path
        assert response.status_code == 403 or "/login/" in response.headers["Location"], path
    headers = api_headers(clean_db, "specialist")
    assert clean_db.test_client().get("/api/v1/audit_event/", headers=headers).status_code == 403


def test_a_refused_page_is_the_portals_own_and_names_the_role(clean_db) -> None:
    """A signed-in user's 403 keeps the portal's layout (menu, way home) and says why; the
    API's 403 stays JSON."""
    client = login(clean_db, "auditor")
    for method, path, what in (
        ("get", "/salesorderview/add", "this page"),
        ("post", "/service-levels/targets", "this action"),
    ):
        refused = getattr(client, method)(path)
        assert refused.status_code == 403, path
        html = refused.get_data(as_text=True)
        assert 'id="forbidden"' in html and "<h3>Forbidden</h3>" in html
        assert f"Your role (Auditor) does not allow {what}: <code>{path}</code>" in html
        assert 'class="navbar' in html and "Go to your home page" in html
    headers = api_headers(clean_db, "auditor")
    api = clean_db.test_client().post("/api/v1/sales_order/", json={}, headers=headers)
    assert api.status_code == 403 and api.is_json
