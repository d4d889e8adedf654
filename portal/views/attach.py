"""Sync → "Attach workbook": a Specialist or Admin attaches the workbook a team already has.

Steps: the workbook (an uploaded .xlsx, a Google Sheets address, or — Admins only — a path on
the server) and a tracker name; the sheet, the header row and a field per header (suggested,
changed with a select); the dry run as a table (downloadable as CSV or XLSX); then the tracker
is created and its first sync queued as the normal background sync job, landing on the
tracker's page in My trackers, where the run and every row's outcome show when it finishes.
What each step does is in ``portal.sync.attach`` / ``attach_web``; the pages read forms and
render.
"""

from __future__ import annotations

from flask import Response, current_app, flash, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface

import portal.security as security
from portal.actors import current_actor
from portal.extensions import appbuilder
from portal.models import Tracker
from portal.sync import attach, attach_web
from portal.sync.attach_fields import ATTACH_KINDS, field_choices
from portal.views.base import has_access_audited
from portal.views.sync_work import queue_sync
from sheets.outcomes import count_outcomes

SESSION_KEY = "attach_draft"
KIND_LABELS = {
    "orders": "Orders (one row per order)",
    "order_lines": "Order lines (one row per line)",
}
SHOWN_ROWS = 500  # rows listed on the page; the download has them all


class AttachView(BaseView):
    """The "Attach workbook" steps (``can_write`` on AttachWorkbook)."""

    route_base = "/attach"
    default_view = "start"
    class_permission_name = security.ATTACH
    method_permission_name = {"start": "write", "mapping": "write", "download": "write"}
    menu_permission = "can_write"
    datamodel = SQLAInterface(Tracker)  # names the record of an audited refusal

    def _draft(self) -> attach_web.Draft | None:
        return attach_web.Draft.load(session.get(SESSION_KEY))

    @expose("/", methods=["GET", "POST"])
    @has_access_audited
    def start(self):
        if request.method == "GET":
            return self._start_page({})
        form = request.form
        try:
            name = attach_web.check_name(form.get("name", ""))
            kind = attach_web.check_kind(form.get("kind", ""))
            source = self._source()
        except attach.AttachError as error:
            flash(str(error), "danger")
            return self._start_page(form, 422)
        draft = attach_web.Draft(name, kind, source.backend, source.location)
        session[SESSION_KEY] = draft.dump()
        return redirect(url_for("AttachView.mapping"))

    def _source(self) -> attach.Source:
        upload = request.files.get("workbook")
        url = request.form.get("url", "").strip()
        path = request.form.get("path", "").strip()
        given = [bool(upload and upload.filename), bool(url), bool(path)]
        if sum(given) != 1:
            raise attach.AttachError(
                "give one workbook: upload an .xlsx file or paste a Google Sheets address"
            )
        if path:
            if not current_actor("web").is_admin:
                raise attach.AttachError("only an Admin may attach a file on the server")
            return attach.source_of(file=path)
        if url:
            return attach.source_of(url=url)
        stored = attach_web.store_upload(
            upload.filename or "", upload.read(), current_app.instance_path
        )
        return attach.source_of(file=str(stored))

    def _start_page(self, typed, status: int = 200):
        return self.render_template(
            "attach_start.html",
            typed=typed,
            kinds=[(k, KIND_LABELS.get(k, k)) for k in ATTACH_KINDS],
            is_admin=current_actor("web").is_admin,
        ), status

    @expose("/mapping", methods=["GET", "POST"])
    @has_access
    def mapping(self):
        draft = self._draft()
        if draft is None:
            flash("Start by choosing the workbook to attach.", "warning")
            return redirect(url_for("AttachView.start"))
        step = request.form.get("step", "") if request.method == "POST" else ""
        if step:
            self._read_choices(draft, step)
            session[SESSION_KEY] = draft.dump()
        try:
            proposal = attach_web.propose(draft)
        except attach.AttachError as error:
            flash(str(error), "danger")
            return self._map_page(draft, None, None, 422)
        outcomes = None
        try:
            if step in ("dry_run", "attach"):
                data = attach_web.tracker_data(draft, proposal)
                if step == "attach":
                    return self._attach(draft, proposal, data)
                outcomes = attach.dry_run(data, proposal)
        except attach.AttachError as error:
            flash(str(error), "danger")
            return self._map_page(draft, proposal, None, 422)
        return self._map_page(draft, proposal, outcomes)

    def _read_choices(self, draft: attach_web.Draft, step: str) -> None:
        form = request.form
        sheet = form.get("sheet") or None
        row = form.get("header_row", "").strip()
        moved = sheet != draft.sheet or (row.isdigit() and int(row) != draft.header_row)
        draft.sheet = sheet
        draft.header_row = int(row) if row.isdigit() and int(row) > 0 else None
        draft.may_create = form.get("may_create") == "on"
        draft.status_column = form.get("status_column") == "on"
        draft.append_records = form.get("append_records") == "on"
        if step == "reload" or moved:
            draft.mapping = None  # new headers: suggest again
            draft.line_number = None
            return
        if "line_number" in form:
            draft.line_number = form.get("line_number", "")
        headers = form.getlist("header")
        fields = form.getlist("field")
        draft.mapping = {h: (f or None) for h, f in zip(headers, fields, strict=False) if h}

    def _attach(self, draft: attach_web.Draft, proposal, data):
        tracker = attach.attach(data, current_actor("web"))
        if draft.status_column:
            attach.add_status_column(draft.source, proposal, attach.DEFAULT_STATUS)
        session.pop(SESSION_KEY, None)
        flash(f"Tracker {tracker.name} attached; its first sync runs in the background.", "info")
        queue_sync(tracker)  # the normal sync job; its run page lists every row's outcome
        return redirect(url_for("MyTrackersView.tracker", pk=tracker.id))

    def _map_page(self, draft, proposal, outcomes, status: int = 200):
        counts = {k: v for k, v in count_outcomes(outcomes or []).items() if v}
        mapping = draft.mapping
        if proposal is not None and mapping is None:
            mapping = attach.mapping_of(proposal)
        samples = {}
        if proposal is not None:
            first = proposal.rows[proposal.header_row : proposal.header_row + 3]
            for i, header in enumerate(proposal.headers):
                values = [str(r[i]) for r in first if i < len(r) and r[i] not in (None, "")]
                samples[header] = ", ".join(values)[:60]
        return self.render_template(
            "attach_map.html",
            draft=draft,
            proposal=proposal,
            mapping=mapping or {},
            samples=samples,
            choices=field_choices(draft.kind),
            sheets=_sheets(draft),
            outcomes=(outcomes or [])[:SHOWN_ROWS],
            total=len(outcomes or []),
            counts=counts,
            dry=outcomes is not None,
            line_number=(
                attach_web.line_number(draft, proposal)
                if proposal is not None and draft.kind == "order_lines"
                else None
            ),
        ), status

    @expose("/dry-run.<fmt>")
    @has_access
    def download(self, fmt: str):
        draft = self._draft()
        if draft is None or fmt not in ("csv", "xlsx"):
            flash("Nothing to download: start by choosing the workbook to attach.", "warning")
            return redirect(url_for("AttachView.start"))
        try:
            proposal = attach_web.propose(draft)
            outcomes = attach.dry_run(attach_web.tracker_data(draft, proposal), proposal)
        except attach.AttachError as error:
            flash(str(error), "danger")
            return redirect(url_for("AttachView.mapping"))
        mime = (
            "text/csv"
            if fmt == "csv"
            else ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        )
        name = f"dry-run-{draft.name}.{fmt}".replace(" ", "_")
        return Response(
            attach_web.export(outcomes, fmt),
            mimetype=mime,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


def _sheets(draft: attach_web.Draft) -> list[str]:
    try:
        return attach.sheet_names(draft.source)
    except (attach.AttachError, OSError, ValueError):
        return []


def register_attach_views() -> None:
    """Add Sync → Attach workbook."""
    appbuilder.add_view(AttachView, "Attach workbook", icon="fa-paperclip", category="Sync")
