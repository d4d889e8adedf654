"""Base classes of the portal's views: service-backed CRUD, read-only lists, record history,
and the HTML forms' entry into the action pipeline: :func:`run_form_action` (and
:func:`record_action` for a record page's buttons), :func:`has_access_audited` for the routes."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import ModelView, expose, has_access
from werkzeug.exceptions import Forbidden
from wtforms import HiddenField

import portal.security as security
from portal.actions import Action, Outcome, load, perform, record_route_denial
from portal.actors import current_actor
from portal.crud import (
    ServiceInterface,
    ServiceRefused,
    ShownInterface,
    pending_changes,
    shown_relations,
)
from portal.extensions import db
from portal.services import audit
from portal.services.base import NotFound, PermissionDenied, RecordService, ServiceError
from portal.views.paged import PagedListMixin


def form_body() -> dict[str, str]:
    """The submitted form's fields; a blank field counts as not given."""
    return {
        name: value.strip()
        for name, value in request.form.items()
        if name != "csrf_token" and value.strip()
    }


def run_form_action(
    action: Action,
    pk: Any,
    success: Callable[[Any], str],
    read: Callable[[], Mapping[str, Any]] = form_body,
    category: Callable[[Any], str] | None = None,
) -> Outcome:
    """Run ``action`` on record ``pk`` with the submitted form (or ``read()``), through the
    action pipeline, and flash the outcome: ``success(result)`` or the reason.

    The pipeline is the REST API's (422 per field, a line not on the record 404, the service's
    refusal with the session rolled back, denials audited). A record that does not exist is
    the 404 page. ``category(result)`` may flash a success as something else (a warning).
    """
    if pk is not None:
        try:
            load(action.model, pk)
        except NotFound:
            abort(404)
    outcome = perform(action, pk, read, "web")
    if outcome.ok:
        flash(success(outcome.result), category(outcome.result) if category else "success")
    else:
        flash(outcome.message, outcome.category)
    return outcome


def record_action(
    action: Action,
    pk: Any,
    success: Callable[[Any], str],
    endpoint: str,
    category: Callable[[Any], str] | None = None,
):
    """Run ``action`` from a button on the record's page; back to that page either way."""
    run_form_action(action, pk, success, category=category)
    return redirect(url_for(endpoint, pk=pk))


def keeps_input(outcome: Outcome) -> bool:
    """Whether a form page is shown again with its input: the input itself was refused (the
    other refusals send the user back to the record, which has changed or is not theirs)."""
    return outcome.status in (400, 422)


def show_again(view: ModelView, pk: Any, status: int):
    """The record page of ``view`` rendered for this (refused) POST, so its forms show what
    was typed (the templates read ``request.form``), with the refusal's ``status``."""
    return view.render_template(
        view.show_template,
        pk=pk,
        title=view.show_title,
        widgets=view._show(pk),
        related_views=view._related_views,
    ), status


def form_on_record(
    view: ModelView, action: Action, pk: Any, success: Callable[[Any], str], endpoint: str
):
    """A form on a record's page: after Save back on the record; a refused input is shown
    again on the page, as typed, with the reason."""
    outcome = run_form_action(action, pk, success)
    if keeps_input(outcome):
        g.refusal = outcome.message  # the template shows it next to the form posted
        return show_again(view, pk, outcome.status)
    return redirect(url_for(endpoint, pk=pk))


def form_page(
    action: Action,
    pk: Any,
    success: Callable[[Any], str],
    made: str,
    back: str,
    render: Callable[[], str],
):
    """A form page that makes a record from record ``pk`` (a return from an order, a dispute
    from an invoice): GET shows ``render()``; a POST runs ``action``, and then the user is on
    the new record (endpoint ``made``), or sees the form again as typed when the input was
    refused, or is back at ``back`` (a URL) with the reason."""
    status = 200
    if request.method == "POST":
        outcome = run_form_action(action, pk, success)
        if outcome.ok:
            return redirect(url_for(made, pk=outcome.result.id))
        if not keeps_input(outcome):
            return redirect(back)
        status = outcome.status
    return render(), status


def has_access_audited(method: Callable[..., Any]) -> Callable[..., Any]:
    """FAB's ``has_access``; a POST it refuses (403) is audited as a refused action on the
    record, once, as the pipeline audits a service's refusal."""
    guarded = has_access(method)

    @functools.wraps(guarded)
    def route(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return guarded(self, *args, **kwargs)
        except Forbidden:
            if request.method == "POST":
                _audit_refused_route(self.datamodel.obj, kwargs.get("pk"), method.__name__)
            raise

    return route


def _audit_refused_route(model: type, pk: Any, action: str) -> None:
    try:
        actor = current_actor("web")
    except PermissionDenied:
        return
    record_route_denial(actor, model, pk, action)


class ServiceModelView(PagedListMixin, ModelView):
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
        self.datamodel.shown = shown_relations(self.datamodel, self.list_columns)

    def pre_update(self, item: Any) -> None:
        changes, expected_version = pending_changes(item)
        try:
            self.service.update(item, changes, current_actor("web"), expected_version)
        except ServiceError as error:
            g.form_refused = error.status
            raise ServiceRefused(error) from error

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk: Any):
        """FAB's edit form; after Save the user stays on the record's page, and a save refused
        for its input (400/422) shows the form again with the input kept and the reason."""
        widgets = self._edit(pk)
        status = 200
        if widgets is None:
            if g.get("form_refused") not in (400, 422):
                return redirect(url_for(f"{self.endpoint}.show", pk=pk))
            widgets = self._get_edit_widget(form=self.edit_form.refresh(request.form))
            status = 422
        return self.render_template(
            self.edit_template,
            title=self.edit_title,
            widgets=widgets,
            related_views=self._related_views,
        ), status


class ReadOnlyModelView(PagedListMixin, ModelView):
    """A list and record page only; the data changes through actions or services elsewhere."""

    method_permission_name = security.METHOD_PERMISSIONS
    include_route_methods = {"list", "show"}
    page_size = 50

    def __init__(self, **kwargs: Any):
        self.datamodel = ShownInterface(self.datamodel.obj, db.session)
        super().__init__(**kwargs)
        self.datamodel.shown = shown_relations(self.datamodel, self.list_columns)


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
