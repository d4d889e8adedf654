"""The Content-Security-Policy holds in a real browser: pages render with no violation.

The policy allows only scripts carrying the request's nonce (portal/websecurity.py); a
page whose script lacks it would lose its behaviour and log a violation. Each page here is
loaded in chromium with a listener for ``securitypolicyviolation`` events and the console.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _watch(page) -> list[str]:
    console: list[str] = []
    page.add_init_script(LISTEN)
    page.on(
        "console",
        lambda message: (
            console.append(message.text)
            if "Content Security Policy" in message.text or message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: console.append(f"page error: {error}"))
    return console


def _violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations || []")


def test_login_page_and_orders_list_render_with_no_csp_violation(new_page) -> None:
    page = new_page()
    console = _watch(page)
    response = page.goto("/login/")
    assert response is not None and response.status == 200
    assert "'nonce-" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    expect(page.get_by_role("button", name="Sign In")).to_be_visible()
    assert _violations(page) == [], _violations(page)

    sign_in(page, "specialist")
    page.wait_for_url(lambda url: "/login" not in url)
    for path in ("/salesorderview/list/", "/", "/swagger/v1"):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        assert _violations(page) == [], f"{path}: {_violations(page)}"
    # The orders list's scripts ran (FAB's jQuery is there, loaded under the nonce).
    page.goto("/salesorderview/list/")
    assert page.evaluate("typeof window.jQuery") == "function"
    expect(page.locator("table.table-bordered.table-hover > tbody > tr").first).to_be_visible()
    assert not [line for line in console if "Content Security Policy" in line], console
