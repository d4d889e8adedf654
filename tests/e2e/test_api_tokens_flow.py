"""A Specialist makes a personal API token in a real browser, copies it, uses it with
``requests`` against the live server (no cookie, no CSRF token), and revokes it: the next
call is a 401 that says the token was revoked.

With ``ORDERBRIDGE_SCREENSHOTS=docs/img`` the page is saved as ``api-tokens.png``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

SHOTS = os.environ.get("ORDERBRIDGE_SCREENSHOTS")


def _snap(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def _call(base: str, method: str, path: str, token: str) -> requests.Response:
    return requests.request(
        method, f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_create_copy_use_and_revoke_a_token(page_as, portal_server) -> None:
    base = portal_server.base_url
    page = page_as("specialist")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.locator(".navbar-nav > li > a.dropdown-toggle", has_text="Account").click()
    page.locator(".navbar-nav .dropdown-menu a", has_text=re.compile(r"^\s*API tokens\s*$")).click()
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()

    page.get_by_label("Name").fill("Excel on my laptop")
    page.get_by_label("Expires in").fill("30")
    page.get_by_role("button", name="Create token").click()
    shown = page.locator("#new-token-value")
    expect(shown).to_have_value(re.compile(r"^obt_[A-Za-z0-9_-]{40,}$"))
    token = shown.input_value()
    expect(page.locator("#new-token")).to_contain_text("shown only this once")

    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-state")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == token
    _snap(page, "api-tokens")

    # The token works on the REST API from a plain HTTP client: no cookie, no CSRF token.
    listed = _call(base, "GET", "/api/v1/sales_order/", token)
    assert listed.status_code == 200, listed.text
    write = _call(base, "POST", "/api/v1/sales_order/999999/confirm", token)
    assert write.status_code == 404, write.text  # signed in and past CSRF; no such order
    # Writes the Specialist may not make are refused as for their session.
    assert _call(base, "GET", "/api/v1/audit_event/", token).status_code == 403

    # Shown once: the page now lists it by its last four characters, used.
    page.goto("/api-tokens/")
    row = page.locator("#api-tokens tr", has_text="Excel on my laptop")
    expect(row).to_contain_text(f"obt_…{token[-4:]}")
    expect(row).to_contain_text("Active")
    expect(row).not_to_contain_text("never")
    assert token not in page.content()

    row.get_by_role("link", name="Revoke").click()
    expect(page.get_by_role("heading", name=re.compile("Revoke API token"))).to_be_visible()
    page.get_by_role("button", name="Revoke token").click()
    expect(page.locator(".alert")).to_contain_text("revoked; it no longer works")
    expect(page.locator("#api-tokens tr", has_text="Excel on my laptop")).to_contain_text("Revoked")

    refused = _call(base, "GET", "/api/v1/sales_order/", token)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["message"]
