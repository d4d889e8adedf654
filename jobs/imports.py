"""An order import from the Import page, as an RQ job on the ``reports`` queue.

The page stores the uploaded file under ``<instance>/imports/<upload id>/`` with the choices
the user confirmed (sheet, header row, mapping) and enqueues :func:`run_import`; the job
imports through ``portal.services.imports`` as that user, reports progress in the job's
``meta`` (``done``, ``rows``, ``progress`` in percent) so the page's bar survives a reload,
and writes the result workbook beside the file. Only the user who asked (or an Admin) may see
the job. With workers on several machines the instance folder must be shared storage.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from flask import current_app
from rq import get_current_job
from rq.job import Job

from jobs import queue
from jobs.context import app_job
from portal.services import imports, jobs
from portal.services.base import Actor, NotFound

RESULT_TTL = 24 * 3600
JOB_TIMEOUT = 3600
UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
SETTINGS = "settings.json"


def upload_dir(upload_id: str) -> Path:
    """The folder of one upload (404 for an id that is not one)."""
    if not UPLOAD_ID.fullmatch(upload_id):
        raise NotFound(f"upload {upload_id!r} does not exist")
    return Path(current_app.config["INSTANCE_DIR"]) / "imports" / upload_id


def upload_settings(upload_id: str, actor: Actor) -> dict[str, Any]:
    """The upload's stored settings if ``actor`` made it (or is Admin); else 404."""
    path = upload_dir(upload_id) / SETTINGS
    if not path.exists():
        raise NotFound(f"upload {upload_id} does not exist")
    settings = json.loads(path.read_text(encoding="utf-8"))
    if settings.get("user_id") != actor.user_id and not actor.is_admin:
        raise NotFound(f"upload {upload_id} does not exist")
    return settings


def enqueue_import(upload_id: str, actor: Actor) -> Job:
    """Queue the import of an upload (its settings confirmed) for ``actor``."""
    settings = upload_settings(upload_id, actor)
    return queue.enqueue(
        run_import,
        queue="reports",
        upload_id=upload_id,
        options={
            "meta": {
                "user_id": actor.user_id,
                "kind": "import",
                "file": settings["file"],
                "upload_id": upload_id,
                "done": 0,
                "rows": None,
                "progress": 0,
            },
            "result_ttl": RESULT_TTL,
            "job_timeout": JOB_TIMEOUT,
        },
    )


@app_job
def run_import(upload_id: str) -> dict[str, Any]:
    """Import the upload's orders as the user who asked; write the result workbook."""
    from portal.actors import actor_for_user
    from portal.extensions import appbuilder
    from portal.services.imports_fields import CANCEL_PREFIX, DEFAULT_STATUS, returned_orders
    from sheets.readers import read_table
    from sheets.result_book import write_result

    current = get_current_job()
    job_id = current.id if current else "inline"
    folder = upload_dir(upload_id)
    settings = json.loads((folder / SETTINGS).read_text(encoding="utf-8"))
    actor = actor_for_user(appbuilder.sm.get_user_by_id(settings["user_id"]), "web")
    run = jobs.start_run(job_id, "import:orders")
    path = folder / settings["file"]
    last = [0.0]

    def progress(done: int, total: int | None) -> None:
        if current is None or (time.monotonic() - last[0] < 0.3 and done != total):
            return
        last[0] = time.monotonic()
        percent = min(99, done * 100 // total) if total else 0
        current.meta.update(done=done, rows=total, progress=percent)
        current.save_meta()

    def table() -> Any:
        return read_table(path, settings.get("sheet"), settings.get("header_row"))

    preset = settings.get("preset") or ""
    options = imports.ImportOptions(
        settings["mapping"],
        cancel_prefix=CANCEL_PREFIX.get(preset),
        default_status=DEFAULT_STATUS.get(preset),
        returned_orders=returned_orders(preset, path),
    )
    try:
        result = imports.import_orders(path, table(), actor, options, progress)
        opened = table()
        outcomes = {row.number: (row.outcome, row.reason) for row in result.rows}
        write_result(folder / "result.xlsx", opened.headers, opened.rows, outcomes, opened.sheet)
    except Exception as error:
        jobs.finish_run(run, None, f"{type(error).__name__}: {error}")
        raise
    outcome = {"import_id": result.run_id, "counts": result.counts, "upload_id": upload_id}
    jobs.finish_run(run, outcome)
    return outcome


def job_for(job_id: str, actor: Actor) -> Job:
    """The import job ``job_id`` if ``actor`` asked for it (or is Admin); else 404."""
    return queue.owned_job(job_id, actor, "import", kind="import")


def status(job: Job) -> dict[str, Any]:
    """State, progress and (once finished) the counts of an import job."""
    meta = job.get_meta()
    state = job.get_status()
    state = getattr(state, "value", state)
    body: dict[str, Any] = {
        "job_id": job.id,
        "status": state,
        "file": meta.get("file"),
        "rows": meta.get("rows"),
        "done": meta.get("done", 0),
        "progress": meta.get("progress", 0),
    }
    if state == "finished":
        body["progress"] = 100
        body.update(job.return_value() or {})
    return body


def result_file(job: Job) -> Path:
    """The finished job's result workbook; 404 until it exists."""
    result = job.return_value() if job.get_status() == "finished" else None
    if not result:
        raise NotFound(f"import job {job.id} has no result yet")
    path = upload_dir(result["upload_id"]) / "result.xlsx"
    if not path.exists():
        raise NotFound(f"the result of import job {job.id} is gone")
    return path
