"""Bounded requests: body size, bulk actions and write rates (docs/security.md, "Limits").

* **Body size.** ``MAX_CONTENT_LENGTH`` is Flask's own limit; a request that declares a larger
  body is refused here before anything reads it, and one that turns out larger while being
  read (chunked) is refused by Werkzeug. Either way the answer is 413 naming the limit: JSON
  on ``/api``, a short page for the browser. A form that uploads a file has a setting of its
  own (``UPLOAD_ENDPOINTS``: a tracker's workbook, ``TRACKER_UPLOAD_MAX_BYTES``).
* **Bulk actions.** A list page's bulk action (``…/action_post`` with ``rowid`` values) may
  name at most ``MAX_BULK_ITEMS`` records (422), checked before FAB loads any of them; the
  services check their own bulk calls too (``portal.services.limits``).
* **Write rates.** Every POST, PUT, PATCH and DELETE — REST calls and HTML forms — counts
  against ``WRITE_RATE_LIMIT`` per signed-in user and ``WRITE_IP_RATE_LIMIT`` per client
  address, in moving windows kept in the ``limits`` storage the sign-in limits use (Redis when
  ``REDIS_URL`` is set, memory otherwise). Over a limit the answer is 429 with
  ``Retry-After``. Reads are not limited; sign-in has its own limits (``portal.auth``).
  An empty setting turns that limit off.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Any

from flask import Flask, current_app, g, jsonify, request
from flask_appbuilder.security.sqla.models import User
from flask_jwt_extended import get_jwt_identity, verify_jwt_in_request
from flask_login import current_user
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from markupsafe import escape
from werkzeug.exceptions import RequestEntityTooLarge

from portal.auth import LOGIN_ENDPOINTS
from portal.services import limits as service_limits

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sign-in has its own failure limits; a refresh only renews a token.
UNLIMITED_ENDPOINTS = frozenset({*LOGIN_ENDPOINTS, "SecurityApi.refresh", "static"})
# Forms that upload a file: endpoint -> the setting of their body limit (instead of
# MAX_CONTENT_LENGTH). A tracker's edited workbook (Sync → My trackers).
# A workbook posted from Excel by the xlwings client (portal/views/xlwings.py).
UPLOAD_ENDPOINTS = {
    "MyTrackersView.upload": "TRACKER_UPLOAD_MAX_BYTES",
    "XlwingsView.sync": "XLWINGS_MAX_BYTES",
}
# The xlwings clients show a refusal's body as it is: plain text there.
PLAIN_TEXT_PREFIXES = ("/xlwings/sync/",)

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{message}</p><p><a href="javascript:history.back()">Back</a></p>
</body></html>"""


def describe_size(size: int) -> str:
    """``2097152`` → ``2 MiB``; sizes that are not whole MiB or KiB in bytes."""
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def _refuse(status: int, title: str, message: str, **headers: str):
    if request.path.startswith("/api/"):
        response = jsonify(message=message)
    elif request.path.startswith(PLAIN_TEXT_PREFIXES):
        response = current_app.response_class(message, mimetype="text/plain")
    else:
        response = current_app.response_class(
            PAGE.format(title=escape(title), message=escape(message)), mimetype="text/html"
        )
    response.status_code = status
    response.headers.update(headers)
    return response


def too_large(setting: str = "MAX_CONTENT_LENGTH", limit: int | None = None):
    limit = limit if limit is not None else current_app.config.get("MAX_CONTENT_LENGTH")
    size = describe_size(limit) if limit else "the limit"
    return _refuse(
        413,
        "Request too large",
        f"The request body is larger than {size} ({setting}); send less at once.",
    )


@functools.cache
def _parsed(limit: str) -> RateLimitItem:
    return parse(limit)


class WriteLimiter:
    """Moving-window counts of writes per user and per client address."""

    def __init__(self, storage_uri: str) -> None:
        self.storage = storage_from_string(storage_uri)
        self.strategy = MovingWindowRateLimiter(self.storage)

    def refusal(self, checks: list[tuple[str, str, str]]) -> tuple[str, int] | None:
        """The first ``(limit, kind, key)`` that is spent, as (message, retry after), or None.

        Each write counts once against every limit; a spent limit refuses it uncounted.
        """
        for limit, kind, key in checks:
            item = _parsed(limit)
            if not self.strategy.hit(item, f"write-{kind}", key):
                reset = self.strategy.get_window_stats(item, f"write-{kind}", key).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                per = "user" if kind == "user" else "client address"
                return (
                    f"Too many changes: at most {limit} per {per}; try again in {retry} seconds.",
                    retry,
                )
        return None

    def reset(self) -> None:
        self.storage.reset()


def _user_id() -> str | None:
    """The id of the user making the request: API token, JWT, else the session."""
    token_user = g.get("api_token_user")  # portal.tokenauth signed the request in already
    if token_user is not None:
        return str(token_user.id)
    if request.headers.get("Authorization", "").startswith("Bearer "):
        try:
            verify_jwt_in_request(optional=True)
            identity = get_jwt_identity()
        except Exception:  # a bad token: FAB refuses it later; count the address only
            return None
        return None if identity is None else str(identity)
    user = current_user
    if user is not None and getattr(user, "is_authenticated", False) and isinstance(user, User):
        return str(user.id)
    return None


def write_limiter() -> WriteLimiter:
    return current_app.extensions["orderbridge_write_limiter"]


def _check_write_rate():
    config = current_app.config
    checks = []
    if config.get("WRITE_IP_RATE_LIMIT"):
        checks.append((config["WRITE_IP_RATE_LIMIT"], "ip", request.remote_addr or "unknown"))
    user_id = _user_id() if config.get("WRITE_RATE_LIMIT") else None
    if user_id is not None:
        checks.insert(0, (config["WRITE_RATE_LIMIT"], "user", user_id))
    if not checks:
        return None
    try:
        refused = write_limiter().refusal(checks)
    except Exception:  # the limits store is down: serve the write rather than fail it
        log.exception("write rate limit store unavailable; not limiting")
        return None
    if refused is None:
        return None
    message, retry = refused
    return _refuse(429, "Too many changes", message, **{"Retry-After": str(retry)})


def _check_bulk_action():
    count = len(request.form.getlist("rowid"))
    limit = service_limits.max_bulk_items()
    if count > limit:
        return _refuse(
            422,
            "Too many records selected",
            f"rowid: at most {limit} records at once ({count} selected; MAX_BULK_ITEMS).",
        )
    return None


def init_app(app: Flask) -> None:
    """Register the hooks (after ``auth.init_app``, whose sign-in limits run first)."""
    app.extensions["orderbridge_write_limiter"] = WriteLimiter(
        app.config["WRITE_LIMIT_STORAGE_URI"]
    )

    @app.url_value_preprocessor  # runs before every before_request hook (some read forms)
    def _upload_limit(endpoint: str | None, values: Any) -> None:
        """An upload form's own body limit, set before anything reads the form."""
        setting = UPLOAD_ENDPOINTS.get(endpoint or "")
        if setting is not None:
            request.max_content_length = app.config.get(setting)

    @app.before_request
    def _bounded_request():
        limit = app.config.get("MAX_CONTENT_LENGTH")
        upload_setting = UPLOAD_ENDPOINTS.get(request.endpoint or "")
        if upload_setting is not None:  # a form that uploads a file has a limit of its own
            limit = app.config.get(upload_setting)
        if limit and (request.content_length or 0) > limit:
            return too_large(upload_setting or "MAX_CONTENT_LENGTH", limit)
        if request.method not in WRITE_METHODS or request.endpoint in UNLIMITED_ENDPOINTS:
            return None
        refused = _check_write_rate()
        if refused is not None:
            return refused
        if (request.endpoint or "").endswith(".action_post"):
            return _check_bulk_action()
        return None

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(error: Any):
        setting = UPLOAD_ENDPOINTS.get(request.endpoint or "")
        if setting is not None:
            return too_large(setting, app.config.get(setting))
        return too_large()
