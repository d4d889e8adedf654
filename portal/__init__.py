"""Orderbridge portal: ``create_app()`` builds the Flask-AppBuilder application."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request

import config

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """Enforce foreign keys and wait on locks instead of failing, on SQLite only."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: durable against crashes of the process; a power cut may lose the
        # last commits but never corrupts the file (SQLite's documented recommendation).
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app: settings, database, CSRF (before AppBuilder), views, APIs, job handlers.

    The ``orderbridge`` command group (``portal.cli``) builds its app with this function; the
    app itself knows nothing of the CLI.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from portal.extensions import appbuilder, csrf, db, migrate

    # Registered here rather than at import, so `import portal` (every `orderbridge` command,
    # even `--help`) does not load SQLAlchemy.
    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)
    settings = config.build_settings(overrides)
    Path(settings["INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=settings["INSTANCE_DIR"])
    app.config.update(settings)

    db.init_app(app)
    csrf.init_app(app)
    migrate.init_app(app, db, directory=str(Path(config.BASE_DIR) / "migrations"))

    with app.app_context():
        from portal.api import register_apis
        from portal.services import invoices
        from portal.views import DashboardView, register_views

        invoices.register_guards(db.session)

        appbuilder.indexview = DashboardView
        appbuilder.base_template = "orderbridge_base.html"
        appbuilder.init_app(app, db.session)
        register_views()
        register_apis()

    from jobs.handlers import register as register_job_handlers
    from portal import auth, inputguard, requestlimits, websecurity
    from portal.sync import register_kinds

    auth.init_app(app)  # password policy, login lockout, revocable sessions and tokens
    requestlimits.init_app(app)  # body size, bulk actions, write rates (after sign-in limits)
    websecurity.init_app(app)  # CSRF on cookie-authenticated API calls, security headers
    inputguard.init_app(app)  # malformed input is a 4xx naming the field, before anything else
    register_kinds()
    register_job_handlers()
    _register_error_handlers(app)
    return app


def _register_error_handlers(app: Flask) -> None:
    """JSON errors for API clients; service errors raised from views become their status.

    Nothing of an unexpected exception's text reaches the client (it is logged): Redis down is
    a 503 "try again", anything else on ``/api`` a JSON 500.
    """
    from redis.exceptions import RedisError
    from werkzeug.exceptions import HTTPException, ServiceUnavailable

    from jobs.queue import QUEUE_UNAVAILABLE
    from portal.services.base import ServiceError

    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        return jsonify(error.to_dict()), error.status

    @app.errorhandler(FileNotFoundError)
    def missing_file(error: FileNotFoundError):
        return jsonify(message="File not found"), 404

    @app.errorhandler(RedisError)
    def queue_unavailable(error: RedisError):
        log.warning("job queue unavailable on %s: %s", request.path, error)
        if request.path.startswith("/api/"):
            return jsonify(message=QUEUE_UNAVAILABLE), 503
        return ServiceUnavailable(QUEUE_UNAVAILABLE)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return error
        if not request.path.startswith("/api/"):
            raise error  # Flask's own handling: logged, its 500 page
        log.exception("unexpected error on %s", request.path)
        return jsonify(message="Internal error; it has been logged"), 500

    @app.errorhandler(404)
    def not_found(error: Exception):
        if request.path.startswith("/api/"):
            return jsonify(message="Not found"), 404
        return error
