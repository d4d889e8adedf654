"""An RQ worker class that builds the app first: ``rq worker -w jobs.worker.AppWorker``.

``orderbridge worker`` is the usual entry point; this class serves a plain ``rq worker`` (or
any RQ tooling that takes a worker class) with the same per-process app.
"""

from __future__ import annotations

from typing import Any

from rq import Worker

from jobs.context import set_app
from portal import create_app


class AppWorker(Worker):
    """RQ's worker with the Orderbridge app built once, before any work horse forks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        set_app(create_app())
        super().__init__(*args, **kwargs)
