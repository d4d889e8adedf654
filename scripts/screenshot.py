"""Screenshot of the sales orders list as the supervisor, for the README.

    python scripts/screenshot.py http://127.0.0.1:5000 docs/screenshot.png

Needs a running portal with demo data (``orderbridge demo``) and Debian's chromium at
/usr/bin/chromium (Playwright never downloads a browser here). The supervisor's password is
``--password``, else ``$DEMO_PASSWORD``, else ``demo`` (the default of ``orderbridge demo``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ORDERS_LIST = "/salesorderview/list/"


def take_screenshot(
    base_url: str,
    output: Path,
    username: str = "supervisor",
    password: str = "demo",
    width: int = 1280,
    height: int = 800,
) -> Path:
    """Sign in through the login form, open the sales orders list and save a PNG."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(
                base_url=base_url.rstrip("/"), viewport={"width": width, "height": height}
            )
            page = context.new_page()
            page.goto("/login/")
            page.get_by_label("Username:").fill(username)
            page.get_by_label("Password:").fill(password)
            page.get_by_role("button", name="Sign In").click()
            page.wait_for_url(lambda url: "/login" not in url)
            response = page.goto(ORDERS_LIST)
            if response is None or response.status != 200:
                raise SystemExit(f"{ORDERS_LIST} answered {response and response.status}")
            page.locator("table.table-bordered.table-hover > tbody > tr").first.wait_for()
            page.evaluate("document.fonts.ready")
            page.screenshot(path=str(output))
        finally:
            browser.close()
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url", help="the running portal, e.g. http://127.0.0.1:5000")
    parser.add_argument("output", type=Path, help="PNG file to write, e.g. docs/screenshot.png")
    parser.add_argument("--username", default="supervisor")
    parser.add_argument("--password", default=os.environ.get("DEMO_PASSWORD") or "demo")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args(argv)
    path = take_screenshot(
        args.base_url, args.output, args.username, args.password, args.width, args.height
    )
    print(f"wrote {path} ({args.width}x{args.height}, {args.username} on {ORDERS_LIST})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
