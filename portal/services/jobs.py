"""Records of background job runs, shown on the admin's jobs page."""

from __future__ import annotations

import json
from typing import Any

from portal.models import JobRun, utcnow
from portal.services.base import unit_of_work


def start_run(job_id: str, name: str) -> JobRun:
    """Record that job ``name`` started (committed at once so the portal sees it)."""
    with unit_of_work() as sess:
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
