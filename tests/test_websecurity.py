"""CSRF on cookie-authenticated API calls, and the security headers of every response."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from tests.conftest import api_headers, login

META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
ACTION = "/api/v1/sales_order/999999/confirm"  # a cookie-authenticated write, empty body


def _csrf_on(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """CSRF checks on, as in production (the suite's app runs with them off)."""
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)


def _page_token(client) -> str:
    page = client.get("/")
    match = META_TOKEN.search(page.get_data(as_text=True))
    assert match, "the portal's pages carry the CSRF token in <meta name=csrf-token>"
    return match.group(1)


def test_cookie_authenticated_api_write_needs_the_csrf_token(app: Flask, monkeypatch) -> None:
    client = login(app, "supervisor")
    _csrf_on(app, monkeypatch)
    foreign = {"Origin": "https://evil.example", "Referer": "https://evil.example/x"}
    response = client.post(ACTION, headers=foreign)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "X-CSRFToken" in response.json["message"]
    wrong = client.post(ACTION, headers={"X-CSRFToken": "not-the-token"})
    assert wrong.status_code == 400
    for path in ("/api/v1/credit_memo/999999/approve", "/api/v1/invoice/generate"):
        assert client.post(path).status_code == 400, path
    # With the page's token the request reaches the endpoint (which finds no such order).
    token = _page_token(client)
    assert client.post(ACTION, headers={"X-CSRFToken": token}).status_code == 404
    # Reads need no token.
    assert client.get("/api/v1/sales_order/").status_code == 200


def test_bearer_token_requests_need_no_csrf_token(app: Flask, monkeypatch) -> None:
    headers = api_headers(app, "supervisor")
    client = login(app, "supervisor")
    _csrf_on(app, monkeypatch)
    assert app.test_client().post(ACTION, headers=headers).status_code == 404
    # Even from a browser that also holds a session cookie.
    assert client.post(ACTION, headers=headers).status_code == 404


def test_anonymous_api_write_is_401_not_a_csrf_error(app: Flask, monkeypatch) -> None:
    _csrf_on(app, monkeypatch)
    assert app.test_client().post(ACTION).status_code == 401


NONCE = re.compile(r"script-src 'self' 'nonce-([^']+)'")
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def _assert_headers(response, nonce_in_page: bool = True) -> None:
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "object-src 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in headers  # test mode is not production
    if nonce_in_page:
        nonce = NONCE.search(csp).group(1)
        tags = SCRIPT_TAG.findall(response.get_data(as_text=True))
        assert tags, "the page has scripts"
        for attributes in tags:
            assert f'nonce="{nonce}"' in attributes, f"<script{attributes}> lacks the nonce"


@pytest.mark.parametrize("path", ["/login/"])
def test_anonymous_pages_have_the_security_headers(app: Flask, path: str) -> None:
    _assert_headers(app.test_client().get(path))


@pytest.mark.parametrize(
    "path",
    ["/", "/salesorderview/list/", "/swagger/v1", "/users/userinfo/", "/resetmypassword/form"],
)
def test_signed_in_pages_have_nonced_scripts_only(app: Flask, path: str) -> None:
    client = login(app, "admin")
    response = client.get(path)
    assert response.status_code == 200, path
    _assert_headers(response)


def test_api_and_errors_have_the_headers_too(app: Flask) -> None:
    client = app.test_client()
    _assert_headers(client.get("/api/v1/sales_order/"), nonce_in_page=False)
    _assert_headers(client.get("/no-such-page"), nonce_in_page=False)


def test_each_response_gets_a_new_nonce(app: Flask) -> None:
    client = app.test_client()
    first, second = (
        NONCE.search(client.get("/login/").headers["Content-Security-Policy"]).group(1)
        for _ in range(2)
    )
    assert first != second and len(first) >= 16


def test_hsts_in_production_only(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "ORDERBRIDGE_MODE", "production")
    hsts = app.test_client().get("/login/").headers["Strict-Transport-Security"]
    assert hsts.startswith("max-age=31536000")


def test_swagger_ui_sends_the_csrf_token(app: Flask) -> None:
    page = login(app, "admin").get("/swagger/v1").get_data(as_text=True)
    assert "X-CSRFToken" in page and 'name="csrf-token"' in page
