"""Running job functions inside the Flask app (built once per worker process).

This module does not build the app: the worker's entry point (``orderbridge worker``, or
:class:`jobs.worker.AppWorker` under a plain ``rq worker``) builds it and calls :func:`set_app`.
"""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context

F = TypeVar("F", bound=Callable[..., Any])

_app: Flask | None = None


def get_app() -> Flask:
    """The current app, or the one this process's entry point handed to :func:`set_app`."""
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    if _app is None:
        raise RuntimeError(
            "no app for this job: run workers with `orderbridge worker` or "
            "`rq worker -w jobs.worker.AppWorker`, which build the app and call set_app()"
        )
    return _app


def set_app(app: Flask) -> None:
    """Use ``app`` for jobs run in this process (set by the worker's entry point).

    The app lives as long as the process, so everything built so far is frozen out of the
    garbage collector's reach: jobs that create many records (a batch of orders, a sync)
    would otherwise make it walk the app's few hundred thousand start-up objects again and
    again (about 15% of a batch's time), and a forked work-horse shares those pages.
    """
    global _app
    _app = app
    gc.freeze()


def app_job(func: F) -> F:
    """Run ``func`` in an app context and release its database session afterwards."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from portal.extensions import db

        if has_app_context():
            return func(*args, **kwargs)
        with get_app().app_context():
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper  # type: ignore[return-value]


def _dispose_pool_after_fork() -> None:
    """A forked work horse must not share the parent's database connections."""
    if _app is not None:
        from portal.extensions import db

        with _app.app_context():
            db.engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_pool_after_fork)
