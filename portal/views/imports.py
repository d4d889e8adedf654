"""The Import page (Specialists and Admins): upload a team's file, choose the sheet and
header row, confirm the suggested mapping, read the dry run, then import it as a background
job whose progress bar survives a reload, and download the result workbook.

The same service as ``orderbridge import orders`` (``portal.services.imports``); the job is
``jobs.imports.run_import``. A refused input (no file, a file that cannot be read, a mapping
missing a needed field) is shown again with the reason and what was chosen.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from flask import abort, flash, jsonify, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from werkzeug.utils import secure_filename

import portal.security as security
from jobs import imports as import_jobs
from portal.actors import current_actor
from portal.extensions import appbuilder
from portal.services import imports
from portal.services.base import NotFound, ServiceError
from portal.services.imports_fields import (
    CANCEL_PREFIX,
    DEFAULT_STATUS,
    FIELDS,
    PRESETS,
    MappingProblem,
    check_mapping,
    header_row,
    preset_mapping,
    returned_orders,
    suggest,
)
from portal.views.base import has_access_audited
from sheets.readers import SUPPORTED_SUFFIXES, ReadError, first_rows, peek, read_table, sheet_names

DRY_RUN_SHOWN = 200  # refused rows listed on the page (all are in the result workbook)


class ImportView(BaseView):
    """Import → "Import orders": upload, mapping and dry run, progress, result."""

    route_base = "/import"
    default_view = "upload"
    class_permission_name = security.IMPORTS
    method_permission_name = {
        "upload": "write",
        "mapping": "write",
        "progress": "write",
        "status": "write",
        "result": "write",
    }
    menu_permission = "can_write"

    @expose("/", methods=["GET", "POST"])
    @has_access_audited
    def upload(self):
        if request.method == "GET":
            return self.render_template("import_upload.html", presets=sorted(PRESETS))
        sent = request.files.get("file")
        name = secure_filename(sent.filename or "") if sent else ""
        if not name or Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
            flash(f"Choose a file: {' '.join(SUPPORTED_SUFFIXES)}", "danger")
            return self.render_template("import_upload.html", presets=sorted(PRESETS)), 400
        upload_id = secrets.token_urlsafe(16)
        folder = import_jobs.upload_dir(upload_id)
        folder.mkdir(parents=True)
        sent.save(folder / name)
        actor = current_actor("web")
        settings = {"user_id": actor.user_id, "file": name, "preset": request.form.get("preset")}
        _save(upload_id, settings)
        return redirect(url_for("ImportView.mapping", upload_id=upload_id))

    @expose("/<upload_id>/", methods=["GET", "POST"])
    @has_access_audited
    def mapping(self, upload_id: str):
        settings = _settings(upload_id)
        path = import_jobs.upload_dir(upload_id) / settings["file"]
        form = request.form if request.method == "POST" else request.args
        try:
            sheets = sheet_names(path)
            sheet = form.get("sheet") if form.get("sheet") in sheets else sheets[0]
            row = _int(form.get("header_row")) or header_row("orders", first_rows(path, sheet))
            table = read_table(path, sheet, row)
        except ReadError as problem:
            flash(str(problem), "danger")
            return redirect(url_for("ImportView.upload"))
        chosen = _chosen(form, table, settings, request.method == "POST")
        page = {"sheets": sheets, "sheet": sheet, "header_row": row, "table": table}
        page |= {"chosen": chosen, "fields": FIELDS["orders"], "upload_id": upload_id}
        page |= {"file": settings["file"], "dry_run": None}
        if request.method == "GET":
            return self.render_template("import_mapping.html", **page)
        try:
            check_mapping("orders", chosen, table.headers)
            settings |= {"sheet": sheet, "header_row": row, "mapping": chosen}
            _save(upload_id, settings)
            if form.get("action") == "import":
                job = import_jobs.enqueue_import(upload_id, current_actor("web"))
                return redirect(url_for("ImportView.progress", job_id=job.id))
            preset = settings.get("preset") or ""
            options = imports.ImportOptions(
                chosen,
                dry_run=True,
                cancel_prefix=CANCEL_PREFIX.get(preset),
                default_status=DEFAULT_STATUS.get(preset),
                returned_orders=returned_orders(preset, path),
            )
            page["dry_run"] = imports.import_orders(path, table, current_actor("web"), options)
        except (MappingProblem, ServiceError) as problem:
            flash(getattr(problem, "message", str(problem)), "danger")
            return self.render_template("import_mapping.html", **page), 422
        counts = counted(page["dry_run"].counts)
        return self.render_template(
            "import_mapping.html", shown=DRY_RUN_SHOWN, counts=counts, **page
        )

    @expose("/job/<job_id>")
    @has_access
    def progress(self, job_id: str):
        return self.render_template("import_progress.html", status=_status(job_id))

    @expose("/job/<job_id>/status")
    @has_access
    def status(self, job_id: str):
        return jsonify(_status(job_id))

    @expose("/job/<job_id>/result.xlsx")
    @has_access
    def result(self, job_id: str):
        job = _job(job_id)
        try:
            path = import_jobs.result_file(job)
        except NotFound:
            abort(404)
        name = f"{Path(job.get_meta().get('file', 'import')).stem}-result.xlsx"
        return send_file(path, as_attachment=True, download_name=name)


COUNT_LABELS = (
    ("rows", "row read", "rows read"),
    ("orders_created", "order created", "orders created"),
    ("orders_updated", "order updated", "orders updated"),
    ("orders_unchanged", "order unchanged", "orders unchanged"),
    ("orders_refused", "order refused", "orders refused"),
    ("rows_refused", "row refused", "rows refused"),
    ("customers_created", "customer created", "customers created"),
    ("products_created", "product created", "products created"),
)


def counted(counts: dict[str, int]) -> list[tuple[str, str]]:
    """An import's counts in reading order, each as (number, label): "1 order created"."""
    return [
        (f"{counts[name]:,}", one if counts[name] == 1 else many)
        for name, one, many in COUNT_LABELS
        if name in counts
    ]


def _status(job_id: str) -> dict[str, Any]:
    body = import_jobs.status(_job(job_id))
    body["counts_shown"] = [
        f"{number} {label}" for number, label in counted(body.get("counts", {}))
    ]
    return body


def _settings(upload_id: str) -> dict[str, Any]:
    try:
        return import_jobs.upload_settings(upload_id, current_actor("web"))
    except NotFound:
        abort(404)


def _job(job_id: str) -> Any:
    try:
        return import_jobs.job_for(job_id, current_actor("web"))
    except NotFound:
        abort(404)


def _save(upload_id: str, settings: dict[str, Any]) -> None:
    target = import_jobs.upload_dir(upload_id) / import_jobs.SETTINGS
    target.write_text(json.dumps(settings), encoding="utf-8")


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and 0 < int(text) < 1_000_000 else None


def _chosen(form: Any, table: Any, settings: dict[str, Any], posted: bool) -> dict[str, str]:
    """The mapping on the page: as posted, else the preset's, else the suggester's."""
    if posted:
        chosen = {}
        for index, header in enumerate(table.headers):
            field = form.get(f"map_{index}")
            if header and field:
                chosen[header] = field
        return chosen
    if settings.get("preset") in PRESETS:
        return preset_mapping(settings["preset"], table.headers)
    return {
        choice.header: choice.field
        for choice in suggest("orders", table.headers, peek(table))
        if choice.field
    }


def register_import_views() -> None:
    """Add Orders → Import orders."""
    appbuilder.add_view(ImportView, "Import orders", icon="fa-upload", category="Orders")
