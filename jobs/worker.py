"""An RQ worker class that builds the app first: ``rq worker -w jobs.worker.AppWorker``.

``orderbridge worker`` is the usual entry point; this class serves a plain ``rq worker`` (or
any RQ tooling that takes a worker class) with the same per-process app.
"""

from __future__ import annotations

from typing import Any

from rq import Worker
from rq.defaults import DEFAULT_JOB_MONITORING_INTERVAL

from jobs.context import set_app
from jobs.queue import heartbeat_seconds
from portal import create_app


class AppWorker(Worker):
    """RQ's worker with the Orderbridge app built once, before any work horse forks, and the
    job heartbeat every ``JOB_HEARTBEAT_SECONDS`` that the scheduler's sweep watches."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        set_app(create_app())
        # `rq worker` passes RQ's default when --job-monitoring-interval is not given
        if kwargs.get("job_monitoring_interval", DEFAULT_JOB_MONITORING_INTERVAL) == (
            DEFAULT_JOB_MONITORING_INTERVAL
        ):
            kwargs["job_monitoring_interval"] = heartbeat_seconds()
        super().__init__(*args, **kwargs)
