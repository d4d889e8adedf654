"""The Google trackers' edit webhook (``POST /sheets/hook/<tracker>``, signed, no sign-in) and
the Apps Script that calls it (``GET /sheets/hook/<tracker>/script``, for those who may change
trackers). See ``portal.sync.hooks`` and docs/sync-jobs.md, "Live sync"."""

from __future__ import annotations

import logging

from flask import Response, abort, jsonify, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from redis.exceptions import RedisError
from sqlalchemy import select

import portal.security as security
from jobs.queue import QUEUE_UNAVAILABLE
from portal.extensions import appbuilder, csrf, db
from portal.models import Tracker
from portal.services.base import ServiceError
from portal.sync import hooks

log = logging.getLogger(__name__)


def _tracker(name: str) -> Tracker | None:
    return db.session.execute(select(Tracker).where(Tracker.name == name)).scalar_one_or_none()


class SheetsHookView(BaseView):
    route_base = "/sheets"
    class_permission_name = security.TRACKERS
    method_permission_name = {"script": "write"}
    default_view = "script"

    @expose("/hook/<name>", methods=["POST"])
    def hook(self, name: str):
        """A signed call from the tracker's Apps Script: sync the tracker soon (202)."""
        from jobs.live import sync_soon

        tracker = _tracker(name)
        if tracker is None:
            return jsonify(message=f"there is no tracker named {name!r}"), 404
        try:
            hooks.check(tracker, request.get_data(), request.headers.get(hooks.SIGNATURE_HEADER))
        except ServiceError as error:
            return jsonify(error.to_dict()), error.status
        if not tracker.enabled:
            return jsonify(message=f"tracker {name} is disabled; nothing was queued"), 409
        try:
            started = sync_soon(tracker.id, tracker.backend)
        except RedisError as error:
            log.warning("sheets hook: %s", error)
            return jsonify(message=QUEUE_UNAVAILABLE), 503
        status = "sync scheduled" if started else "joined the sync already scheduled"
        return jsonify(status=status), 202

    @expose("/hook/<name>/script")
    @has_access
    def script(self, name: str):
        """The tracker's Apps Script, as a ``.gs`` download."""
        tracker = _tracker(name)
        if tracker is None:
            abort(404)
        url = url_for("SheetsHookView.hook", name=tracker.name, _external=True)
        return Response(
            hooks.apps_script(tracker, url),
            mimetype="text/javascript",
            headers={"Content-Disposition": f'attachment; filename="orderbridge-{tracker.id}.gs"'},
        )


def register_sheets_hook_view() -> None:
    """Add the webhook and script routes (no menu entry: the tracker's page links them)."""
    csrf.exempt(SheetsHookView.hook)  # signed by the tracker's secret instead
    appbuilder.add_view_no_menu(SheetsHookView())
