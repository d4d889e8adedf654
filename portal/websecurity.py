"""Browser-facing protections: CSRF on cookie-authenticated API calls, security headers.

* **CSRF on the API.** FAB exempts its REST blueprints from Flask-WTF's CSRFProtect, since
  token clients need none; but ``allow_browser_login`` also accepts the session cookie, so a
  foreign page could make a signed-in browser POST ``/api/v1/credit_memo/1/approve``. Here
  every unsafe request to ``/api`` that would be authenticated by the session cookie (no
  ``Authorization`` header, a signed-in session) must carry the session's CSRF token in
  ``X-CSRFToken``, else 400. Bearer-token requests are unaffected: a foreign page cannot add
  an ``Authorization`` header without a CORS preflight, which the portal never grants. The
  portal's pages put the token in ``<meta name="csrf-token">`` for their scripts.
* **Headers on every response**: a Content-Security-Policy whose scripts need this request's
  nonce (FAB 5.3's templates put ``csp_nonce()`` on each of their scripts), frame-ancestors
  'none' and X-Frame-Options DENY, nosniff, a Referrer-Policy, and HSTS in production.
"""

from __future__ import annotations

import logging
import secrets

from flask import Flask, current_app, g, has_request_context, jsonify, request, session
from flask_wtf.csrf import ValidationError, validate_csrf
from werkzeug.middleware.proxy_fix import ProxyFix

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_HEADERS = ("X-CSRFToken", "X-CSRF-Token")
# Sign-in endpoints authenticate with credentials or a refresh token, never the cookie.
CSRF_EXEMPT_ENDPOINTS = frozenset({"SecurityApi.login", "SecurityApi.refresh"})


def csp_nonce() -> str:
    """This request's script nonce (FAB's templates call ``csp_nonce()`` when defined)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            # FAB's and our templates use style attributes; styles cannot run code.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _cookie_authenticated() -> bool:
    return "Authorization" not in request.headers and session.get("_user_id") is not None


def check_api_csrf():
    """``before_request``: refuse cookie-authenticated API writes without the CSRF token."""
    if (
        request.method in SAFE_METHODS
        or not request.path.startswith("/api/")
        or request.endpoint in CSRF_EXEMPT_ENDPOINTS
        or not current_app.config.get("WTF_CSRF_ENABLED", True)
        or not _cookie_authenticated()
    ):
        return None
    token = next((request.headers[h] for h in CSRF_HEADERS if request.headers.get(h)), None)
    try:
        validate_csrf(token)
    except ValidationError as error:
        return (
            jsonify(
                message=f"CSRF check failed: {error}. Requests signed in with the session "
                "cookie must send the page's CSRF token in the X-CSRFToken header; API "
                "clients should use a bearer token."
            ),
            400,
        )
    return None


def set_security_headers(response):
    """``after_request``: the security headers of every response."""
    headers = response.headers
    headers["Content-Security-Policy"] = content_security_policy(csp_nonce())
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if current_app.config.get("ORDERBRIDGE_MODE") == "production":
        seconds = current_app.config.get("HSTS_SECONDS", 31536000)
        headers["Strict-Transport-Security"] = f"max-age={seconds}; includeSubDomains"
    return response


class NoNextIsNoBadRedirect(logging.Filter):
    """Drop FAB's "Invalid redirect detected" when the sign-in had no ``next`` page at all.

    FAB's login form posts back to its own URL, and ``/login/`` opened without ``?next=``
    (the navbar's sign-in link, a bookmark) makes FAB check an empty redirect target, warn,
    and go to the index page, as it should. A ``next`` that fails the check is still logged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Invalid redirect detected"):
            return True
        return not has_request_context() or bool(request.args.get("next"))


def init_app(app: Flask) -> None:
    """Register the hooks (any time before the first request)."""
    redirects = logging.getLogger("flask_appbuilder.utils.base")
    if not any(isinstance(f, NoNextIsNoBadRedirect) for f in redirects.filters):
        redirects.addFilter(NoNextIsNoBadRedirect())
    if app.config.get("PROXY_FIX_X_FOR"):
        hops = app.config["PROXY_FIX_X_FOR"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.before_request(check_api_csrf)
    app.after_request(set_security_headers)
    # A Jinja global, not a context processor: FAB imports baselib without context.
    app.jinja_env.globals["csp_nonce"] = csp_nonce
