"""Base classes of the portal's views: service-backed CRUD, read-only lists, record history,
and :func:`run_form_action`, the HTML forms' entry into the action pipeline."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import abort, flash, request
from flask_appbuilder import ModelView, expose, has_access
from wtforms import HiddenField

import portal.security as security
from portal.actions import Action, perform
from portal.actors import current_actor
from portal.crud import ServiceInterface, ServiceRefused, pending_changes
from portal.services import audit
from portal.services.base import RecordService, ServiceError


def form_body() -> dict[str, str]:
    """The submitted form's fields; a blank field counts as not given."""
    return {
        name: value.strip()
        for name, value in request.form.items()
        if name != "csrf_token" and value.strip()
    }


def run_form_action(
    action: Action, pk: Any, success: Callable[[Any], str]
) -> tuple[bool, str, Any]:
    """Run ``action`` on record ``pk`` with the submitted form, through the action pipeline.

    The pipeline is the REST API's (404, 422 per field, the service's refusal with the session
    rolled back, denials audited); here the outcome is flashed: ``success(result)`` or the
    reason. Returns ``(ok, message, result)``; on a refusal the caller keeps the input by
    rendering the form again with ``request.form``.
    """
    outcome = perform(action, pk, form_body, "web")
    if outcome.ok:
        message = success(outcome.result)
        flash(message, "success")
        return True, message, outcome.result
    flash(outcome.message, "danger")
    return False, outcome.message, None


class ServiceModelView(ModelView):
    """A ModelView whose writes go through ``service`` and whose edits carry ``version``."""

    service: RecordService
    method_permission_name = security.METHOD_PERMISSIONS
    include_route_methods = {"list", "show", "add", "edit"}
    page_size = 50
    edit_form_extra_fields = {"version": HiddenField("version")}

    def __init__(self, **kwargs: Any):
        self.datamodel = ServiceInterface(self.service.model, self.service)
        if self.edit_columns and "version" not in self.edit_columns:
            self.edit_columns = [*self.edit_columns, "version"]
        super().__init__(**kwargs)

    def pre_update(self, item: Any) -> None:
        changes, expected_version = pending_changes(item)
        try:
            self.service.update(item, changes, current_actor("web"), expected_version)
        except ServiceError as error:
            raise ServiceRefused(error) from error


class ReadOnlyModelView(ModelView):
    """A list and record page only; the data changes through actions or services elsewhere."""

    method_permission_name = security.METHOD_PERMISSIONS
    include_route_methods = {"list", "show"}
    page_size = 50


class RecordHistoryMixin:
    """Adds ``/history/<pk>``: the record's own audit events (what a Specialist may see)."""

    audit_entity: str = ""
    include_route_methods = {"list", "show", "add", "edit", "history"}

    @expose("/history/<int:pk>")
    @has_access
    def history(self, pk: int):
        item = self.datamodel.get(pk)
        if item is None:
            abort(404)
        events = [
            {
                "id": event.id,
                "at": event.occurred_at,
                "actor": event.actor,
                "source": event.source,
                "action": event.action,
                "changes": json.loads(event.changes),
            }
            for event in audit.history(self.audit_entity, pk)
        ]
        return self.render_template(
            "record_history.html", item=item, events=events, back=self.route_base
        )
