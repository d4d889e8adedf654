"""Account → API tokens: a user's personal API tokens (Admins: everyone's).

Create shows the new token once, on the answer to the form (never stored, never in the
session, ``Cache-Control: no-store``) with a Copy button; revoke asks for confirmation on a
page of its own. Every change goes through ``services.api_tokens``.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, make_response, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface

import portal.security as security
from portal.actors import current_actor
from portal.extensions import appbuilder
from portal.models import ApiToken, utcnow
from portal.services import api_tokens
from portal.services.base import NotFound, PermissionDenied, ServiceError
from portal.views.base import has_access_audited


class ApiTokensView(BaseView):
    """List, create and revoke API tokens (``can_read``/``can_write`` on ``ApiToken``)."""

    route_base = "/api-tokens"
    default_view = "index"
    class_permission_name = security.API_TOKENS
    method_permission_name = {
        "index": "read",
        "create": "write",
        "confirm_revoke": "write",
        "revoke": "write",
    }
    datamodel = SQLAInterface(ApiToken)  # names the record of an audited refusal

    def _page(self, status: int = 200, created: Any = None, form: Any = None) -> Any:
        actor = current_actor("web")
        response = make_response(
            self.render_template(
                "api_tokens.html",
                tokens=api_tokens.visible_to(actor),
                show_owner=actor.is_admin,
                created=created,
                form=form or {},
                default_days=api_tokens.default_days(),
                max_days=api_tokens.max_days(),
                now=utcnow(),
            ),
            status,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def _token(self, pk: int) -> ApiToken:
        try:
            return api_tokens.get_for(current_actor("web"), pk)
        except (NotFound, PermissionDenied) as error:
            abort(error.status)

    @expose("/")
    @has_access
    def index(self) -> Any:
        return self._page()

    @expose("/create", methods=["POST"])
    @has_access_audited
    def create(self) -> Any:
        form = {
            "name": request.form.get("name", ""),
            "expires_in_days": request.form.get("expires_in_days", ""),
        }
        try:
            created = api_tokens.create(current_actor("web"), form["name"], form["expires_in_days"])
        except ServiceError as error:
            flash(error.message, "danger")
            return self._page(status=error.status, form=form)
        return self._page(status=201, created=created)

    @expose("/<int:pk>/revoke", methods=["GET"])
    @has_access
    def confirm_revoke(self, pk: int) -> Any:
        return self.render_template("api_token_revoke.html", token=self._token(pk))

    @expose("/<int:pk>/revoke", methods=["POST"])
    @has_access_audited
    def revoke(self, pk: int) -> Any:
        try:
            token = api_tokens.revoke(current_actor("web"), pk)
        except NotFound:
            abort(404)
        except ServiceError as error:
            flash(error.message, "danger")
        else:
            flash(f"API token '{token.name}' revoked; it no longer works.", "success")
        return redirect(url_for("ApiTokensView.index"))


def register_api_token_views() -> None:
    """Add Account → API tokens (every role; a menu of its own, so only Admins see Security)."""
    appbuilder.add_view(ApiTokensView, "API tokens", icon="fa-key", category="Account")
