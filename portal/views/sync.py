"""Two-way sync views: trackers (Admin), sync runs, and conflicts a Supervisor resolves.

Tracker edits go through ``portal.services.trackers`` like every other write; "Sync now"
queues the tracker's sync job; resolving a conflict calls ``sync_review.resolve``.
"""

from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import NumberRange, Optional

import portal.security as security
from portal.actions.trackers import DECIDE_DELETED_ROW
from portal.actors import current_actor
from portal.extensions import appbuilder, db
from portal.models import (
    BACKENDS,
    DELETED_ROW_POLICIES,
    ConflictStatus,
    SyncConflict,
    SyncDeletedRow,
    SyncRun,
    Tracker,
)
from portal.services import sync_review, sync_runs, trackers
from portal.services.base import ServiceError
from portal.views.base import (
    ReadOnlyModelView,
    ServiceModelView,
    has_access_audited,
    record_action,
)
from portal.views.formatting import moment
from portal.views.pickers import Picked, PickerFilters
from portal.views.sync_work import (
    BACKEND_LABELS,
    KIND_LABELS,
    OUTCOME_LABELS,
    RUN_LABELS,
    queue_sync,
    when,
)
from sheets.trackers import CONFLICT_POLICIES, RECORD_KINDS
from sheets.values import display

TRACKER_FIELDS = list(trackers.trackers.creatable)
DELETED_ROW_LABELS = {
    "ignore": "Keep the record",
    "cancel": "Cancel the record",
    "ask": "Ask a supervisor",
}
DELETED_STATUS_LABELS = {
    "ignored": "Record kept",
    "cancelled": "Record cancelled",
    "review": "Waiting for a supervisor",
    "kept": "Kept by a supervisor",
    "restored": "Row put back",
    "failed": "Could not cancel",
}


class SyncRunView(PickerFilters, ReadOnlyModelView):
    datamodel = SQLAInterface(SyncRun)
    class_permission_name = security.SYNC_RUNS
    list_title = "Sync runs"
    list_columns = [
        "tracker",
        "started_at",
        "started_by",
        "status",
        "rows_read",
        "applied",
        "created",
        "written",
        "conflicts",
        "errors",
        "unchanged",
        "duration_seconds",
    ]
    show_columns = [*list_columns, "finished_at", "attempts", "job_id", "error"]
    search_columns = ["tracker", "status", "started_at"]
    quick_search_column = None
    pickers = {"tracker": Picked("Tracker", Tracker, "tracker")}
    base_order = ("id", "desc")
    label_columns = {
        "duration_seconds": "Seconds",
        "started_by": "Started by",
        "rows_read": "Rows read",
        "applied": "Updated",
        "written": "Cells written",
        "errors": "Refused",
    }
    show_template = "sync_run_show.html"
    formatters_columns = {
        "started_by": lambda name: name or "Schedule",  # a person syncs from inside Excel
        "started_at": moment,
        "finished_at": moment,
        "status": lambda code: RUN_LABELS.get(code, code),
    }

    def render_template(self, template: str, **kwargs: Any) -> Any:
        """The run's page lists every row's outcome (all but the unchanged ones)."""
        if template == self.show_template and "pk" in kwargs:
            kwargs["rows"] = sync_runs.run_rows(int(kwargs["pk"]))
            kwargs["outcome_labels"] = OUTCOME_LABELS
        return super().render_template(template, **kwargs)


def _choices(values: tuple[str, ...], labels: dict[str, str] | None = None) -> list:
    return [(v, (labels or {}).get(v, v.replace("_", " ").capitalize())) for v in values]


def _tracker_form_fields() -> dict[str, Any]:
    """The tracker form's own fields: the "empty = default" ones optional, the flags plain
    checkboxes (a non-null boolean would otherwise be a required, i.e. forced, checkbox)."""
    optional = [Optional()]
    return {
        "kind": SelectField("Kind", choices=_choices(RECORD_KINDS, KIND_LABELS)),
        "backend": SelectField("Backend", choices=_choices(BACKENDS, BACKEND_LABELS)),
        "key_header": StringField("Key header", validators=optional),
        "key_field": StringField("Key field", validators=optional),
        "columns": TextAreaField("Columns", validators=optional),
        "conflict_policy": SelectField("Conflict policy", choices=_choices(CONFLICT_POLICIES)),
        "deleted_row_policy": SelectField(
            "Deleted row", choices=_choices(DELETED_ROW_POLICIES, DELETED_ROW_LABELS)
        ),
        "may_create": BooleanField("May create", default=False),
        "enabled": BooleanField("Enabled", default=True),
        "header_row": IntegerField(
            "Header row", default=1, validators=[Optional(), NumberRange(min=1)]
        ),
        "append_records": BooleanField("Append records", default=True),
    }


class TrackerView(ServiceModelView):
    service = trackers.trackers
    class_permission_name = security.TRACKERS
    method_permission_name = {**security.METHOD_PERMISSIONS, "sync_now": "write"}
    include_route_methods = {"list", "show", "add", "edit", "sync_now"}
    show_template = "tracker_show.html"
    list_title = "Trackers"
    list_columns = ["name", "kind", "backend", "location", "tab", "interval_seconds", "enabled"]
    add_columns = [f if f != "owner_id" else "owner" for f in TRACKER_FIELDS]
    edit_columns = [f if f != "owner_id" else "owner" for f in trackers.trackers.editable]
    add_form_extra_fields = _tracker_form_fields()
    edit_form_extra_fields = {
        **ServiceModelView.edit_form_extra_fields,
        **{k: v for k, v in _tracker_form_fields().items() if k != "kind"},
    }
    show_columns = [*(f for f in TRACKER_FIELDS if f != "owner_id"), "owner", "version"]
    related_views = [SyncRunView]
    formatters_columns = {
        "kind": lambda v: KIND_LABELS.get(v, v),
        "backend": lambda v: BACKEND_LABELS.get(v, v),
        "filter": lambda v: v or "all records",
        "owner": lambda v: v or "nobody",
        "line_key": lambda v: {"#": "row position in its order", None: "—", "": "—"}.get(v, v),
        "deleted_row_policy": lambda v: DELETED_ROW_LABELS.get(v, v),
        "created_at": when,
    }
    description_columns = {
        "kind": "orders, order_lines, stock_levels or shipments",
        "backend": "xlsx (a file on the server), gsheets (spreadsheet key) or xlwings",
        "location": "the .xlsx path, or the Google spreadsheet key",
        "key_header": "empty: the kind's default (e.g. Order No)",
        "key_field": "empty: the kind's key (number, line_key, stock_key; shipments: number); "
        "external_ref: the team's own ids (orders, order lines; see Attach workbook)",
        "header_row": "the sheet row holding the headers (a title may sit above them)",
        "append_records": "add portal records missing from the sheet (off for a team's sheet)",
        "line_key": "order lines without a line id: the line number header, or # for the row's "
        "position in its order (key header: Line key); empty: the sheet has line ids",
        "columns": 'JSON list of {"header", "field", "type", "owner"}; empty: the preset',
        "conflict_policy": "portal_wins, sheet_wins or flag (a Supervisor resolves)",
        "interval_seconds": "sync every N seconds; 0 = only on demand",
        "filter": "orders, lines, shipments: open; stock levels: active; empty: all records",
        "deleted_row_policy": "what a row deleted from the sheet means for its record",
        "owner": "the Specialist whose tracker it is (My trackers)",
        "may_create": "a row with a blank key adds a record (not for stock levels)",
    }

    @expose("/sync/<int:pk>", methods=["POST"])
    @has_access
    def sync_now(self, pk: int):
        tracker = db.session.get(Tracker, pk)
        if tracker is None:
            flash("No such tracker.", "danger")
            return redirect(url_for("TrackerView.list"))
        queue_sync(tracker)
        return redirect(url_for("TrackerView.show", pk=pk))


def _stored_value(text: str | None) -> str:
    """A conflict's stored value (JSON) as the sheet would show it."""
    if text is None:
        return ""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return "(empty)" if value is None else str(value)


class SyncConflictView(PickerFilters, ReadOnlyModelView):
    datamodel = SQLAInterface(SyncConflict)
    class_permission_name = security.SYNC_CONFLICTS
    method_permission_name = {**security.METHOD_PERMISSIONS, "resolve": "resolve"}
    include_route_methods = {"list", "show", "resolve"}
    list_title = "Sync conflicts"
    list_columns = ["tracker", "key", "header", "sheet_value", "portal_value", "status"]
    show_columns = [
        "tracker",
        "key",
        "header",
        "field",
        "base_value",
        "sheet_value",
        "portal_value",
        "status",
        "created_at",
        "resolved_by",
        "resolution",
        "resolved_at",
    ]
    search_columns = ["tracker", "key", "header", "status"]
    quick_search_column = None
    pickers = {"tracker": Picked("Tracker", Tracker, "tracker")}
    base_order = ("id", "desc")
    label_columns = {"sheet_value": "Sheet", "portal_value": "Portal", "base_value": "Before"}
    formatters_columns = {
        "sheet_value": _stored_value,
        "portal_value": _stored_value,
        "base_value": _stored_value,
        "resolution": _stored_value,
    }

    @expose("/resolve/<int:pk>", methods=["GET", "POST"])
    @has_access
    def resolve(self, pk: int):
        conflict = db.session.get(SyncConflict, pk)
        if conflict is None:
            abort(404)
        if request.method == "POST":
            try:
                sync_review.resolve(
                    conflict,
                    request.form.get("choice", ""),
                    current_actor("web"),
                    request.form.get("value"),
                )
            except ServiceError as error:
                db.session.rollback()
                flash(error.message, "danger")
                return redirect(url_for("SyncConflictView.resolve", pk=pk))
            flash(
                f"Resolved {conflict.key} / {conflict.header}; the next sync writes it to the "
                "sheet.",
                "success",
            )
            return redirect(url_for("SyncConflictView.list"))
        values = {}
        if conflict.status == ConflictStatus.OPEN.value:
            values = {k: display(v) for k, v in sync_review.conflict_values(conflict).items()}
        return self.render_template(
            "sync_conflict_resolve.html",
            conflict=conflict,
            values=values,
            resolution=json.loads(conflict.resolution) if conflict.resolution else None,
        )


class SyncDeletedRowView(PickerFilters, ReadOnlyModelView):
    """Rows deleted from trackers; a Supervisor decides the ones waiting for review."""

    datamodel = SQLAInterface(SyncDeletedRow)
    class_permission_name = security.SYNC_DELETED
    method_permission_name = {**security.METHOD_PERMISSIONS, "decide": "resolve"}
    include_route_methods = {"list", "show", "decide"}
    list_title = "Deleted rows"
    list_columns = ["tracker", "key", "status", "message", "created_at", "decided_by"]
    show_columns = [*list_columns, "decided_at"]
    search_columns = ["tracker", "key", "status"]
    quick_search_column = None
    pickers = {"tracker": Picked("Tracker", Tracker, "tracker")}
    base_order = ("id", "desc")
    label_columns = {
        "key": "Record",
        "message": "What happened",
        "created_at": "Deleted at",
        "decided_by": "Decided by",
        "decided_at": "Decided at",
    }
    formatters_columns = {
        "status": lambda s: DELETED_STATUS_LABELS.get(s, s),
        "created_at": when,
        "decided_at": when,
        "decided_by": lambda v: v or "",
    }
    show_template = "sync_deleted_row_show.html"

    def render_template(self, template: str, **kwargs: Any) -> Any:
        if template == self.show_template and "pk" in kwargs:
            kwargs["item"] = self.datamodel.get(kwargs["pk"])
        return super().render_template(template, **kwargs)

    @expose("/decide/<int:pk>", methods=["POST"])
    @has_access_audited
    def decide(self, pk: int):
        return record_action(
            DECIDE_DELETED_ROW,
            pk,
            lambda row: f"{row.key}: {row.message}.",
            "SyncDeletedRowView.show",
        )


def register_sync_views() -> None:
    """Add the sync views: trackers (Admin), sync runs, conflicts and deleted rows."""
    ab = appbuilder
    ab.add_view(TrackerView, "Trackers", icon="fa-table", category="Sync")
    ab.add_view(SyncRunView, "Sync runs", icon="fa-refresh", category="Sync")
    ab.add_view(SyncConflictView, "Sync conflicts", icon="fa-exclamation-triangle", category="Sync")
    ab.add_view(SyncDeletedRowView, "Deleted rows", icon="fa-trash", category="Sync")
