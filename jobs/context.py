"""Running job functions inside the Flask app (built once per worker process)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context

F = TypeVar("F", bound=Callable[..., Any])

_app: Flask | None = None


def get_app() -> Flask:
    """The current app, or this process's single app built by ``create_app()``."""
    global _app
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    if _app is None:
        from portal import create_app

        _app = create_app()
    return _app


def set_app(app: Flask) -> None:
    """Use ``app`` for jobs run in this process (the worker command sets its own)."""
    global _app
    _app = app


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
