"""Two-way sync views: trackers (Admin), sync runs, and conflicts a Supervisor resolves.

Tracker edits go through ``portal.services.trackers`` like every other write; "Sync now"
queues the tracker's sync job; resolving a conflict calls ``trackers.resolve``.
"""

from __future__ import annotations

import json
import logging

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from redis.exceptions import RedisError

import portal.security as security
from jobs.queue import QUEUE_UNAVAILABLE
from portal.actors import current_actor
from portal.extensions import appbuilder, db
from portal.models import ConflictStatus, SyncConflict, SyncRun, Tracker
from portal.services import trackers
from portal.services.base import ServiceError
from portal.views.base import ReadOnlyModelView, ServiceModelView
from sheets.values import display

log = logging.getLogger(__name__)

TRACKER_FIELDS = list(trackers.trackers.creatable)


class SyncRunView(ReadOnlyModelView):
    datamodel = SQLAInterface(SyncRun)
    class_permission_name = security.SYNC_RUNS
    list_title = "Sync runs"
    list_columns = [
        "tracker",
        "started_at",
        "status",
        "rows_read",
        "applied",
        "created",
        "written",
        "conflicts",
        "errors",
        "duration_seconds",
    ]
    show_columns = [*list_columns, "finished_at", "attempts", "job_id", "error"]
    search_columns = ["tracker", "status", "started_at"]
    base_order = ("id", "desc")
    label_columns = {"duration_seconds": "Seconds", "rows_read": "Rows read"}


class TrackerView(ServiceModelView):
    service = trackers.trackers
    class_permission_name = security.TRACKERS
    method_permission_name = {**security.METHOD_PERMISSIONS, "sync_now": "write"}
    include_route_methods = {"list", "show", "add", "edit", "sync_now"}
    show_template = "tracker_show.html"
    list_title = "Trackers"
    list_columns = ["name", "kind", "backend", "location", "tab", "interval_seconds", "enabled"]
    add_columns = TRACKER_FIELDS
    edit_columns = list(trackers.trackers.editable)
    show_columns = [*TRACKER_FIELDS, "version", "created_at"]
    related_views = [SyncRunView]
    description_columns = {
        "kind": "orders, order_lines, stock_levels or shipments",
        "backend": "xlsx (a file on the server), gsheets (spreadsheet key) or xlwings",
        "location": "the .xlsx path, or the Google spreadsheet key",
        "key_header": "empty: the kind's default (e.g. Order No)",
        "key_field": "empty: the kind's key (number, line_key, stock_key; shipments: number); "
        "external_ref: the team's own ids (orders, order lines; see Attach workbook)",
        "header_row": "the sheet row holding the headers (a title may sit above them)",
        "append_records": "add portal records missing from the sheet (off for a team's sheet)",
        "columns": 'JSON list of {"header", "field", "type", "owner"}; empty: the preset',
        "conflict_policy": "portal_wins, sheet_wins or flag (a Supervisor resolves)",
        "interval_seconds": "sync every N seconds; 0 = only on demand",
        "filter": "orders, lines, shipments: open; stock levels: active; empty: all records",
    }

    @expose("/sync/<int:pk>", methods=["POST"])
    @has_access
    def sync_now(self, pk: int):
        tracker = db.session.get(Tracker, pk)
        if tracker is None:
            flash("No such tracker.", "danger")
            return redirect(url_for("TrackerView.list"))
        from jobs.sync import request_sync

        try:
            flash(f"{tracker.name}: {request_sync(tracker.id)}.", "success")
        except RedisError as error:  # Redis down: say so instead of a 500 (nothing was queued)
            log.warning("Sync now: %s", error)
            flash(f"Could not queue the sync: {QUEUE_UNAVAILABLE}", "danger")
        return redirect(url_for("TrackerView.show", pk=pk))


class SyncConflictView(ReadOnlyModelView):
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
    base_order = ("id", "desc")
    label_columns = {"sheet_value": "Sheet", "portal_value": "Portal", "base_value": "Before"}

    @expose("/resolve/<int:pk>", methods=["GET", "POST"])
    @has_access
    def resolve(self, pk: int):
        conflict = db.session.get(SyncConflict, pk)
        if conflict is None:
            abort(404)
        if request.method == "POST":
            try:
                trackers.resolve(
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
            values = {k: display(v) for k, v in trackers.conflict_values(conflict).items()}
        return self.render_template(
            "sync_conflict_resolve.html",
            conflict=conflict,
            values=values,
            resolution=json.loads(conflict.resolution) if conflict.resolution else None,
        )


def register_sync_views() -> None:
    """Add the sync views: trackers (Admin), sync runs and conflicts."""
    ab = appbuilder
    ab.add_view(TrackerView, "Trackers", icon="fa-table", category="Sync")
    ab.add_view(SyncRunView, "Sync runs", icon="fa-refresh", category="Sync")
    ab.add_view(SyncConflictView, "Sync conflicts", icon="fa-exclamation-triangle", category="Sync")
