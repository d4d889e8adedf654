"""Large exports as RQ jobs on the ``reports`` queue, with progress and a download link.

The request (API or the Exports page) checks permissions, records the export's audit event
and enqueues :func:`run_export`; the job writes the file under ``<instance>/exports/`` and
reports progress in the job's ``meta`` (``done``, ``rows``, ``progress`` in percent). Only the
user who asked (or an Admin) may see the job or download its file. With workers on several
machines the instance folder must be shared storage.

An export whose worker died, or that raised, runs again from scratch (:data:`RETRY`; a dead
worker's job is put back by the scheduler's sweep, :mod:`jobs.recovery`), overwriting its
temporary file; meanwhile its status reads ``retrying``, and the file arrives without the user
asking again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app
from rq import Retry, get_current_job
from rq.job import Job

from jobs import queue
from jobs.context import app_job
from portal.services import exports, jobs
from portal.services.base import Actor, NotFound

RESULT_TTL = 24 * 3600
JOB_TIMEOUT = 3600
RETRY = Retry(max=2, interval=[5, 30])  # a crash or an error: the export starts over


def export_dir() -> Path:
    path = Path(current_app.config["INSTANCE_DIR"]) / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def enqueue_export(
    kind: exports.ExportKind, fmt: str, filters: exports.Filters, actor: Actor, rows: int
) -> Job:
    """Queue an export for ``actor`` (already authorised) and audit the request."""
    job = queue.enqueue(
        run_export,
        queue="reports",
        kind_name=kind.name,
        fmt=fmt,
        filters=filters.as_dict(),
        options={
            "meta": {
                "user_id": actor.user_id,
                "actor": actor.name,
                "kind": kind.name,
                "format": fmt,
                "rows": rows,
                "done": 0,
                "progress": 0,
            },
            "result_ttl": RESULT_TTL,
            "job_timeout": JOB_TIMEOUT,
            "retry": RETRY,
        },
    )
    exports.record_export(actor, kind, fmt, filters, rows, mode="job", job_id=job.id)
    return job


@app_job
def run_export(kind_name: str, fmt: str, filters: dict[str, str | None]) -> dict[str, Any]:
    """Write one export file, updating the job's progress every 1,000 rows."""
    current = get_current_job()
    job_id = current.id if current else "inline"
    attempt = 1
    if current is not None:  # count the attempt first: a retry's status reads "retrying"
        attempt = current.meta["attempts"] = current.meta.get("attempts", 0) + 1
        current.save_meta()
    run = jobs.start_run(job_id, f"export:{kind_name}", again=attempt > 1)
    kind, fmt, parsed = exports.parse_request(
        kind_name, fmt, filters.get("from"), filters.get("to"), filters.get("status")
    )
    total = exports.count(kind, parsed)

    def progress(done: int) -> None:
        if current is not None:
            current.meta.update(
                done=done, rows=total, progress=100 if not total else min(100, done * 100 // total)
            )
            current.save_meta()

    progress(0)  # a retry starts over

    target = export_dir() / f"{job_id}.{fmt}"
    partial = target.with_suffix(f".{fmt}.part")
    try:
        if fmt == "csv":
            with open(partial, "wb") as out:
                for chunk in exports.csv_chunks(kind, exports.rows(kind, parsed), progress):
                    out.write(chunk)
        else:
            exports.write_xlsx(kind, exports.rows(kind, parsed), partial, progress)
        partial.replace(target)
    except Exception as error:
        partial.unlink(missing_ok=True)
        jobs.finish_run(run, None, f"{type(error).__name__}: {error}")
        raise
    outcome = {
        "file": target.name,
        "download_name": exports.file_name(kind, fmt, parsed),
        "rows": total,
    }
    jobs.finish_run(run, outcome)
    return outcome


def job_for(job_id: str, actor: Actor) -> Job:
    """The export job ``job_id`` if ``actor`` asked for it (or is Admin); else 404."""
    return queue.owned_job(job_id, actor, "export")


def status(job: Job) -> dict[str, Any]:
    """Status, progress and (once finished) the file name of an export job."""
    meta = job.get_meta()
    state = job.get_status()
    state = getattr(state, "value", state)
    if state in ("queued", "scheduled") and (meta.get("attempts") or meta.get("recovered")):
        state = "retrying"  # it ran before (its worker died, or it failed) and will run again
    body: dict[str, Any] = {
        "job_id": job.id,
        "status": state,
        "kind": meta.get("kind"),
        "format": meta.get("format"),
        "rows": meta.get("rows"),
        "done": meta.get("done", 0),
        "progress": meta.get("progress", 0),
    }
    if state == "finished":
        body["progress"] = 100
        body["download_name"] = job.return_value()["download_name"]
    return body


def result_file(job: Job) -> tuple[Path, str]:
    """The finished job's file and its download name; 404 until it exists."""
    result = job.return_value() if job.get_status() == "finished" else None
    if not result:
        raise NotFound(f"export job {job.id} has no file yet")
    path = export_dir() / result["file"]
    if not path.exists():
        raise NotFound(f"the file of export job {job.id} is gone")
    return path, result["download_name"]
