"""Orderbridge portal: ``create_app()`` builds the Flask-AppBuilder application."""

from __future__ import annotations

import logging
import sys
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


def create_app(overrides: dict | None = None, *, web: bool = True) -> Flask:
    """Build the app: settings, database, CSRF (before AppBuilder), views, APIs, job handlers.

    The ``orderbridge`` command group (``portal.cli``) builds its app with this function; the
    app itself knows nothing of the CLI. ``web=False`` is for a process that serves no page
    (a worker, the scheduler, most commands): the same settings, database, services, record
    kinds and job handlers, without the views, the REST API and FAB's security pages.
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
        from portal.services import invoices, service_level_marks

        invoices.register_guards(db.session)
        service_level_marks.register(db.session)
        appbuilder.base_template = "orderbridge_base.html"
        if web:
            _init_web(app)
        else:
            app.config["FAB_ADD_SECURITY_VIEWS"] = False
            appbuilder.init_app(app, db.session)

    from jobs.handlers import register as register_job_handlers
    from portal import auth, inputguard, requestlimits, tokenauth, websecurity
    from portal.sync import register_kinds

    auth.init_app(app)  # password policy, login lockout, revocable sessions and tokens
    tokenauth.init_app(app)  # personal API tokens: `Authorization: Bearer obt_…`
    requestlimits.init_app(app)  # body size, bulk actions, write rates (after sign-in limits)
    websecurity.init_app(app)  # CSRF on cookie-authenticated API calls, security headers
    inputguard.init_app(app)  # malformed input is a 4xx naming the field, before anything else
    register_kinds()
    register_job_handlers()
    _register_error_handlers(app)
    return app


def _init_web(app: Flask) -> None:
    """AppBuilder with the portal's pages and REST API."""
    from portal.api import register_apis
    from portal.extensions import appbuilder, db
    from portal.views import DashboardView, register_views

    appbuilder.indexview = DashboardView
    appbuilder.init_app(app, db.session)
    register_views()
    register_apis()


def _is_redis_error(error: Exception) -> bool:
    """Whether ``error`` is a Redis error; told without importing redis (a slow import that
    a command without jobs need not pay): none can be raised before redis is imported."""
    exceptions = sys.modules.get("redis.exceptions")
    return exceptions is not None and isinstance(error, exceptions.RedisError)


def _register_error_handlers(app: Flask) -> None:
    """JSON errors for API clients; service errors raised from views become their status.

    Nothing of an unexpected exception's text reaches the client (it is logged): Redis down is
    a 503 "try again", anything else on ``/api`` a JSON 500.
    """
    from werkzeug.exceptions import HTTPException, ServiceUnavailable

    from portal.services.base import ServiceError

    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        return jsonify(error.to_dict()), error.status

    @app.errorhandler(FileNotFoundError)
    def missing_file(error: FileNotFoundError):
        return jsonify(message="File not found"), 404

    def queue_unavailable(error: Exception):
        from jobs.queue import QUEUE_UNAVAILABLE

        log.warning("job queue unavailable on %s: %s", request.path, error)
        if request.path.startswith("/api/"):
            return jsonify(message=QUEUE_UNAVAILABLE), 503
        return ServiceUnavailable(QUEUE_UNAVAILABLE)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return error
        if _is_redis_error(error):
            return queue_unavailable(error)
        if not request.path.startswith("/api/"):
            raise error  # Flask's own handling: logged, its 500 page
        log.exception("unexpected error on %s", request.path)
        return jsonify(message="Internal error; it has been logged"), 500

    @app.errorhandler(403)
    def forbidden(error: Exception):
        """A signed-in user's refused page or form: the portal's layout, their roles, the way
        home. API and xlwings clients keep their own answers."""
        from flask import render_template
        from flask_login import current_user

        from portal.extensions import appbuilder

        if request.path.startswith(("/api/", "/xlwings/")) or not current_user.is_authenticated:
            return error
        roles = sorted(role.name for role in current_user.roles)
        page = render_template(
            "forbidden.html",
            base_template=appbuilder.base_template,
            appbuilder=appbuilder,
            roles=roles,
        )
        return page, 403

    @app.errorhandler(404)
    def not_found(error: Exception):
        if request.path.startswith("/api/"):
            return jsonify(message="Not found"), 404
        return error
