"""Bearer authentication with personal API tokens: ``Authorization: Bearer obt_…``.

A request to a path under :data:`BEARER_PATH_PREFIXES` (the REST API, the xlwings client's
endpoint) that carries an ``obt_`` bearer token is signed in as the token's user for that
request only: flask-login's ``current_user``, FAB's ``g.user`` and ``current_actor`` are that
user, no session cookie is read or written, and FAB's normal permission checks apply (403
when the user lacks the permission). An unknown, revoked or expired token, or one of a
deactivated user, is a 401 JSON ``{"message": …}`` saying which. Bearer requests need no
CSRF token (``websecurity.check_api_csrf`` skips requests with an ``Authorization`` header:
a foreign page cannot send one); cookie-authenticated requests keep their CSRF check.

FAB's own hook is used too: with ``FAB_API_KEY_ENABLED`` and ``FAB_API_KEY_PREFIXES =
["obt_"]``, FAB's ``@protect`` hands the token to ``OrderbridgeSecurityManager.
validate_api_key``, which answers with :func:`user_from_bearer` (already resolved by then).

A view outside these prefixes that wants token clients calls :func:`user_from_bearer`
itself. A page view (not a FAB ``BaseApi``, whose blueprints skip Flask-WTF's CSRF check)
that only token clients call, such as the xlwings endpoint, wraps itself in
:func:`bearer_only`: no CSRF token is asked, and a request without a bearer token is a 401,
so a cookie can never reach it unchecked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Flask, Request, g, jsonify, request
from werkzeug.exceptions import Unauthorized

from portal.extensions import csrf
from portal.services import api_tokens

BEARER_PATH_PREFIXES = ("/api/", "/xlwings/")


class TokenRefused(Unauthorized):
    """401 with a JSON ``message`` and ``WWW-Authenticate: Bearer``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def get_response(self, environ: Any = None, scope: Any = None) -> Any:
        response = jsonify(message=self.message)
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response


def bearer_token(req: Request | None = None) -> str | None:
    """The ``obt_`` token of the request's ``Authorization: Bearer`` header, if any.

    Other bearer tokens (FAB's JWTs) are not ours: None.
    """
    scheme, _, value = (req or request).headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value.startswith(api_tokens.PREFIX):
        return None
    return value


def user_from_bearer(req: Request | None = None) -> Any:
    """The user of the request's API token, signed in for this request; None without one.

    Raises :class:`TokenRefused` (a 401 JSON response) for a token that does not
    authenticate. The result is kept for the request, so calling it again costs nothing.
    """
    if "api_token_user" in g:
        return g.api_token_user
    token = bearer_token(req)
    if token is None:
        return None
    try:
        record = api_tokens.verify(token)
    except api_tokens.TokenInvalid as error:
        raise TokenRefused(error.message) from None
    user = record.user
    g._login_user = user  # flask-login's current_user for this request; no session written
    g.user = user  # FAB's view of the signed-in user (its before_request ran already)
    g._api_key_user = True  # FAB's has_access and sm.current_user prefer g.user then
    g.api_token_user = user
    return user


NO_TOKEN = (
    "Send a personal API token as 'Authorization: Bearer obt_…' "
    "(make one under Account → API tokens)."
)


def bearer_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view for token clients only: CSRF-exempt, and 401 unless a bearer token signs in.

    Put it outside FAB's ``has_access``/``protect`` (which then check the user's permission
    as for any request): ``@expose(...) @bearer_only @has_access def sync(...)``.
    """

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if user_from_bearer() is None:
            raise TokenRefused(NO_TOKEN)
        return view(*args, **kwargs)

    return csrf.exempt(guarded)


def _authenticate_bearer() -> None:
    """``before_request``: sign in bearer-token requests to the API and xlwings paths."""
    if request.path.startswith(BEARER_PATH_PREFIXES) and bearer_token() is not None:
        user_from_bearer()


def init_app(app: Flask) -> None:
    """Register the hook; call after ``appbuilder.init_app`` (whose hook sets ``g.user``)."""
    app.before_request(_authenticate_bearer)
