"""Sync → My trackers: the trackers a user owns or that are shared with them (Admins: all).

"Sync now" queues the tracker's sync job; an Excel tracker's workbook is downloaded as the
server's copy and an edited copy uploaded (``actions.trackers.UPLOAD_COPY``, then a sync
merges it like any sheet edit); each run lists every row's outcome, filterable by outcome.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, redirect, request, send_file, session, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from redis.exceptions import RedisError
from sqlalchemy import select

import portal.security as security
from jobs.queue import QUEUE_UNAVAILABLE
from portal.actions.trackers import SHARE_TRACKER, UPLOAD_COPY
from portal.actors import current_actor
from portal.extensions import appbuilder, db
from portal.models import ConflictStatus, SyncConflict, SyncRun, Tracker
from portal.services import sync_runs, tracker_work
from portal.services.base import NotFound, PermissionDenied, ServiceError
from portal.sync.backends import xlsx_limits
from portal.views.base import has_access_audited, run_form_action
from sheets.outcomes import OUTCOMES

log = logging.getLogger(__name__)

KIND_LABELS = {
    "orders": "Orders",
    "order_lines": "Order lines",
    "stock_levels": "Stock levels",
    "stock_receipts": "Stock receipts",
    "shipments": "Shipments",
    "disputes": "Disputes",
    "credit_memos": "Credit memos",
}
BACKEND_LABELS = {
    "xlsx": "Excel workbook",
    "gsheets": "Google Sheets",
    "xlwings": "Excel (xlwings)",
}
RUN_LABELS = {
    "running": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "skipped": "Skipped",
    "interrupted": "Interrupted",
}
OUTCOME_LABELS = {
    "created": "Created",
    "updated": "Updated",
    "written": "Written to the sheet",
    "appended": "Added to the sheet",
    "unchanged": "Unchanged",
    "refused": "Refused",
    "conflict": "Conflict",
    "unmatched": "No matching record",
    "deleted": "Deleted from the sheet",
}
RUNS_SHOWN = 20
ORIGIN = "tracker_copy_origin"  # session: tracker id -> fingerprint of the downloaded copy


def when(value: datetime | None) -> str:
    """A timestamp as the portal shows them (UTC); empty when unknown."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


class MyTrackersView(BaseView):
    """The Specialist's Sync menu entry (``can_work`` on ``TrackerWork``)."""

    route_base = "/my-trackers"
    default_view = "index"
    class_permission_name = security.TRACKER_WORK
    method_permission_name = {
        name: "work"
        for name in ("index", "tracker", "sync_now", "download", "upload", "run", "share")
    }
    menu_permission = "can_work"  # roles without it do not see the entry
    datamodel = SQLAInterface(Tracker)  # names the record of an audited refusal

    def _tracker(self, pk: int) -> Tracker:
        try:
            return tracker_work.tracker_for(current_actor("web"), pk)
        except NotFound:
            abort(404)
        except PermissionDenied:
            abort(403)

    @expose("/")
    @has_access
    def index(self):
        rows = []
        for tracker in tracker_work.visible(current_actor("web")):
            last = db.session.execute(
                select(SyncRun)
                .where(SyncRun.tracker_id == tracker.id)
                .order_by(SyncRun.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            rows.append({"tracker": tracker, "last": last})
        return self.render_template("my_trackers.html", rows=rows, **_labels())

    @expose("/tracker/<int:pk>")
    @has_access
    def tracker(self, pk: int):
        tracker = self._tracker(pk)
        runs = db.session.execute(
            select(SyncRun)
            .where(SyncRun.tracker_id == tracker.id)
            .order_by(SyncRun.id.desc())
            .limit(RUNS_SHOWN)
        ).scalars()
        actor = current_actor("web")
        return self.render_template(
            "my_tracker.html",
            tracker=tracker,
            runs=list(runs),
            pending=sync_pending(tracker.id),
            may_share=tracker_work.may_share(tracker, actor),
            **_labels(),
        )

    @expose("/sync/<int:pk>", methods=["POST"])
    @has_access
    def sync_now(self, pk: int):
        tracker = self._tracker(pk)
        queue_sync(tracker)
        return redirect(url_for("MyTrackersView.tracker", pk=pk))

    @expose("/download/<int:pk>")
    @has_access
    def download(self, pk: int):
        tracker = self._tracker(pk)
        actor = current_actor("web")
        try:
            path = tracker_work.workbook_path(tracker)
            data, origin = tracker_work.download(tracker, actor, _kept(), xlsx_limits())
        except ServiceError as error:
            flash(error.message, "danger")
            return redirect(url_for("MyTrackersView.tracker", pk=pk))
        origins = dict(session.get(ORIGIN) or {})
        origins[str(tracker.id)] = origin
        session[ORIGIN] = origins
        return send_file(
            io.BytesIO(data),
            as_attachment=True,
            download_name=f"{tracker.name}{path.suffix}",
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )

    @expose("/upload/<int:pk>", methods=["POST"])
    @has_access_audited
    def upload(self, pk: int):
        self._tracker(pk)
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash("Choose the edited workbook to upload.", "danger")
            return redirect(url_for("MyTrackersView.tracker", pk=pk))

        def body() -> dict[str, Any]:
            origin = (session.get(ORIGIN) or {}).get(str(pk))
            return {"file": upload.read(), "origin": origin, "kept": _kept()}

        outcome = run_form_action(UPLOAD_COPY, pk, lambda done: f"{done[0].name}: {done[1]}.", body)
        if outcome.ok:
            origins = dict(session.get(ORIGIN) or {})
            origins.pop(str(pk), None)
            session[ORIGIN] = origins
            queue_sync(outcome.result[0])
        return redirect(url_for("MyTrackersView.tracker", pk=pk))

    @expose("/share/<int:pk>", methods=["POST"])
    @has_access_audited
    def share(self, pk: int):
        self._tracker(pk)
        run_form_action(SHARE_TRACKER, pk, lambda t: f"{t.name} is shared.")
        return redirect(url_for("MyTrackersView.tracker", pk=pk))

    @expose("/run/<int:pk>")
    @has_access
    def run(self, pk: int):
        run = db.session.get(SyncRun, pk)
        if run is None:
            abort(404)
        tracker = self._tracker(run.tracker_id)
        wanted = request.args.get("outcome") or None
        if wanted is not None and wanted not in OUTCOMES:
            abort(400, description=f"outcome must be one of {', '.join(OUTCOMES)}")
        rows = sync_runs.run_rows(run.id, wanted)
        return self.render_template(
            "sync_run_rows.html",
            tracker=tracker,
            run=run,
            rows=rows,
            wanted=wanted,
            conflicts=_open_conflicts(tracker.id),
            may_resolve=current_actor("web").can("can_resolve", security.SYNC_CONFLICTS),
            **_labels(),
        )


def _kept() -> Path:
    """Where downloaded copies are kept (one per user and tracker) for their uploads."""
    return Path(current_app.instance_path) / "tracker-downloads"


def _labels() -> dict[str, Any]:
    return {
        "kind_labels": KIND_LABELS,
        "backend_labels": BACKEND_LABELS,
        "run_labels": RUN_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "when": when,
    }


def _open_conflicts(tracker_id: int) -> dict[tuple[str, str], int]:
    """(key, header) -> id of the tracker's open conflicts (their Resolve links)."""
    rows = db.session.execute(
        select(SyncConflict.key, SyncConflict.header, SyncConflict.id).where(
            SyncConflict.tracker_id == tracker_id,
            SyncConflict.status == ConflictStatus.OPEN.value,
        )
    )
    return {(key, header): cid for key, header, cid in rows}


def sync_pending(tracker_id: int) -> bool:
    """Whether a sync of the tracker is queued or running (False when Redis cannot say)."""
    from jobs.sync import is_pending

    try:
        return is_pending(tracker_id)
    except RedisError:
        return False


def queue_sync(tracker: Tracker) -> None:
    """Queue the tracker's sync (\"Sync now\") and flash what happened."""
    from jobs.sync import request_sync

    try:
        said = request_sync(tracker.id)
    except RedisError as error:  # Redis down: say so instead of a 500 (nothing was queued)
        log.warning("Sync now: %s", error)
        flash(f"Could not queue the sync: {QUEUE_UNAVAILABLE}", "danger")
        return
    flash(f"{tracker.name}: {said}.", "success")


def register_work_views() -> None:
    """Add Sync → My trackers."""
    appbuilder.add_view(MyTrackersView, "My trackers", icon="fa-table", category="Sync")
