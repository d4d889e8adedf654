"""Base classes of the portal's views: service-backed CRUD, read-only lists, record history."""

from __future__ import annotations

import json
from typing import Any

from flask import abort
from flask_appbuilder import ModelView, expose, has_access
from wtforms import HiddenField

import portal.security as security
from portal.actors import current_actor
from portal.crud import ServiceInterface, ServiceRefused, pending_changes
from portal.services import audit
from portal.services.base import RecordService, ServiceError


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
