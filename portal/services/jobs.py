"""Records of background job runs, shown on the admin's jobs page."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import update

import portal.security as security
from portal.models import JobRun, utcnow
from portal.services import audit
from portal.services.base import Actor, require, unit_of_work


def start_run(job_id: str, name: str, again: bool = False) -> JobRun:
    """Record that job ``name`` started (committed at once so the portal sees it).

    ``again``: the job runs once more; an earlier run of it still ``started`` was cut off (its
    worker died) and is marked ``interrupted``."""
    with unit_of_work() as sess:
        if again:
            sess.execute(
                update(JobRun)
                .where(JobRun.job_id == job_id, JobRun.status == "started")
                .values(status="interrupted", finished_at=utcnow(), error="its worker died")
            )
        run = JobRun(job_id=job_id, name=name, status="started", started_at=utcnow())
        sess.add(run)
    return run


def finish_run(run: JobRun, result: Any = None, error: str | None = None) -> JobRun:
    """Record the outcome of ``run``."""
    with unit_of_work():
        run.finished_at = utcnow()
        run.status = "failed" if error else "finished"
        run.result = None if result is None else json.dumps(result, default=str)
        run.error = error
    return run


def retry(actor: Actor, job_id: str, requeue: Callable[[str], str]) -> str:
    """An Admin's retry of failed job ``job_id``: ``requeue(job_id)`` puts it back on its
    queue (and names it); audited. Refused (403) before anything moves without the right."""
    require(actor, "can_write", security.JOBS, "retry jobs")
    with unit_of_work():
        queue = requeue(job_id)
        audit.record(actor, "job_run", None, "retry", detail={"job_id": job_id, "queue": queue})
    return queue
