"""Sync from inside Excel (docs/xlwings.md): ``POST /xlwings/sync/<tracker>`` and the client kit.

The xlwings client in the workbook (Office.js add-in, Office Scripts, VBA, or Apps Script for
Google Sheets) posts the workbook as JSON. The tracker's sync runs on it at once, like a
scheduled sync (``jobs.sync.sync_posted``: same lock, plan, services, run record) but as the
signed-in user, and the answer is the actions (``book.json()``) that write the changed cells
and the status cells into the open workbook. Every refusal is a 4xx whose plain-text body is
the message: each client shows a non-200 answer's body as it is (an alert or the script's
error). ``GET /xlwings/client/<tracker>`` downloads the client code for the tracker.

Authentication: personal API tokens only (``Authorization: Bearer obt_…``, signed in for the
request by ``portal.tokenauth``; ``bearer_only`` makes the POST CSRF-exempt and refuses a
request without a token with 401, so a session cookie never reaches it). An unknown, revoked
or expired token is tokenauth's 401 ``{"message": …}``. :func:`client_actor` is the one place
that turns the signed-in user into the actor.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, abort, json, request, url_for
from flask_appbuilder import BaseView, expose, has_access

import portal.security as security
from portal.actors import current_actor
from portal.extensions import appbuilder
from portal.models import Tracker
from portal.services import tracker_work, trackers
from portal.services.base import Actor, NotFound, PermissionDenied
from portal.sync import xlwings_client
from portal.sync.backends import backend_settings, open_tracker_backend
from portal.tokenauth import bearer_only
from sheets.backends import BackendUnavailable
from sheets.backends.xlwings import PayloadRefused, VersionMismatch, XlwingsBackend, remote_book
from sheets.trackers import header_id

log = logging.getLogger(__name__)

SOURCE = "xlwings"  # the actor's channel


class Refusal(Exception):
    """A request the endpoint refuses: HTTP status and the message the client shows."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def refused(status: int, message: str) -> Response:
    """A refusal as the xlwings clients show it: the body is the message."""
    return Response(message, status=status, mimetype="text/plain")


def client_actor() -> Actor:
    """The user the API token signed in, as the actor of the sync; 401 otherwise."""
    try:
        return current_actor(SOURCE)
    except PermissionDenied:
        raise Refusal(
            401,
            "Orderbridge: sign in first. Put your personal API token in the workbook's "
            'xlwings.conf sheet as AUTH = "Bearer obt_..." (docs/xlwings.md).',
        ) from None


def usable_tracker(name: str, actor: Actor) -> Tracker:
    """The xlwings tracker ``name`` if ``actor`` works with it (404 / 403 / 409 with why)."""
    try:
        tracker = tracker_work.tracker_for(actor, trackers.by_name(name).id)
    except NotFound:
        raise Refusal(404, f"Orderbridge has no tracker named {name!r}.") from None
    except PermissionDenied as error:
        raise Refusal(403, f"Orderbridge: {error.message}.") from None
    if tracker.backend != "xlwings":
        raise Refusal(
            409,
            f"Orderbridge: tracker {tracker.name} is synced from its {tracker.backend} "
            "workbook by the portal, not from Excel with xlwings.",
        )
    if not tracker.enabled:
        raise Refusal(409, f"Orderbridge: tracker {tracker.name} is disabled.")
    return tracker


def _sheet_values(payload: dict[str, Any], tab: str) -> list[Any]:
    for sheet in payload["sheets"]:
        if str(sheet["name"]).casefold() == tab.casefold():
            return sheet["values"]
    names = ", ".join(repr(s["name"]) for s in payload["sheets"])
    raise Refusal(422, f"Orderbridge: the workbook has no sheet named {tab!r} (it has {names}).")


def check_headers(tracker: Tracker, payload: dict[str, Any]) -> None:
    """422 unless the tab's header row holds each of the tracker's headers exactly once."""
    values = _sheet_values(payload, tracker.tab)
    row = tracker.header_row or 1
    header = values[row - 1] if len(values) >= row else []
    seen: dict[str, int] = {}
    for cell in header:
        hid = header_id(cell)
        if hid:
            seen[hid] = seen.get(hid, 0) + 1
    spec = tracker.spec()
    wanted = [*(c.header for c in spec.columns), spec.status_header]
    if not tracker.line_key:  # else the key is derived from the order id and line number
        wanted.insert(0, spec.key_header)
    missing = [h for h in wanted if not seen.get(header_id(h))]
    doubled = [h for h in wanted if seen.get(header_id(h), 0) > 1]
    if missing or doubled:
        said = []
        if missing:
            said.append("missing " + ", ".join(repr(h) for h in missing))
        if doubled:
            said.append("used twice " + ", ".join(repr(h) for h in doubled))
        raise Refusal(
            422,
            f"Orderbridge: row {row} of sheet {tracker.tab!r} does not match tracker "
            f"{tracker.name} ({'; '.join(said)}); nothing was synced.",
        )


def _payload() -> dict[str, Any]:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise Refusal(400, "Orderbridge: the request is not an xlwings workbook (a JSON object).")
    return payload


def sync_workbook(name: str) -> Response:
    """Refusals first (cheapest first), then the sync, then the actions."""
    from jobs.sync import sync_posted

    if not request.is_json:
        raise Refusal(415, "Orderbridge: send the workbook as JSON (application/json).")
    actor = client_actor()
    tracker = usable_tracker(name, actor)
    payload = _payload()
    try:
        book = remote_book(payload, backend_settings().xlwings_license_key)
    except VersionMismatch as error:
        raise Refusal(409, f"Orderbridge: {error}.") from None
    except PayloadRefused as error:
        raise Refusal(400, f"Orderbridge: {error}.") from None
    except BackendUnavailable as error:
        raise Refusal(503, f"Orderbridge: {error}.") from None
    check_headers(tracker, payload)
    tab = XlwingsBackend(book, tracker.tab)
    outcome = sync_posted(tracker.id, open_tracker_backend(tracker, tab), actor)
    if outcome is None:
        raise Refusal(
            409, f"Orderbridge: a sync of {tracker.name} is running; press Sync again in a moment."
        )
    if outcome.get("status") == "failed":
        raise Refusal(422, f"Orderbridge: {outcome.get('error')}")
    return Response(json.dumps(book.json()), mimetype="application/json")


class XlwingsView(BaseView):
    """The xlwings endpoint and the client kit's download (no menu: the tracker page links)."""

    route_base = "/xlwings"
    class_permission_name = security.TRACKER_WORK
    method_permission_name = {"client": "work"}
    default_view = "client"

    @expose("/sync/<path:name>", methods=["POST"])
    @bearer_only
    def sync(self, name: str) -> Response:
        """Sync tracker ``name`` from the posted workbook; the actions for the client."""
        try:
            return sync_workbook(name)
        except Refusal as refusal:
            return refused(refusal.status, refusal.message)
        except Exception:
            log.exception("xlwings sync of %s failed", name)
            return refused(500, "Orderbridge: the sync failed on the server; it has been logged.")

    @expose("/client/<path:name>")
    @has_access
    def client(self, name: str) -> Response:
        """The client code for tracker ``name`` (``?kind=vba|officescripts|officejs|…``)."""
        try:
            tracker = usable_tracker(name, current_actor("web"))
        except Refusal as refusal:
            abort(refusal.status, description=refusal.message)
        kind = request.args.get("kind", "vba")
        if kind not in xlwings_client.KINDS:
            abort(400, description=f"kind must be one of {', '.join(xlwings_client.KINDS)}")
        url = url_for("XlwingsView.sync", name=tracker.name, _external=True)
        filename, text = xlwings_client.client_code(kind, url, tracker.name, tracker.tab)
        return Response(
            text,
            mimetype="text/plain",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


def register_xlwings_views() -> None:
    """Add the endpoint (tokens only, no CSRF token: a client in Excel) and the kit download."""
    appbuilder.add_view_no_menu(XlwingsView())
