"""Browser end-to-end fixtures: the real portal in a subprocess, driven by Debian's chromium.

The server gets a database of its own (a SQLite file, or a PostgreSQL schema of its own next
to the suite's), built by ``orderbridge db upgrade`` and ``orderbridge seed-demo`` exactly as a
person would, and is served by ``orderbridge run`` with CSRF on. Playwright never downloads a
browser: it launches ``/usr/bin/chromium``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job
from sqlalchemy import create_engine, make_url, text

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
E2E_PASSWORD = "e2e-Passw0rd-" + secrets.token_hex(4)
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 10_000
LOG_TAIL = 80


@dataclass
class PortalServer:
    base_url: str
    database_url: str
    log_path: Path
    process: subprocess.Popen
    env: dict[str, str] = field(default_factory=dict)  # the server's (for CLI commands, workers)

    def log_tail(self, lines: int = LOG_TAIL) -> str:
        """The last lines of the server's output, without the requests for static files."""
        text_ = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        kept = [line for line in text_.splitlines() if '"GET /static/' not in line]
        return "\n".join(kept[-lines:])


def _orderbridge() -> list[str]:
    """The ``orderbridge`` console script of the interpreter running the tests."""
    script = Path(sys.executable).parent / "orderbridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "portal.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(server: PortalServer, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"the portal server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{server.base_url}/login/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    pytest.fail(f"the portal server did not answer within {timeout:.0f}s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def e2e_database(
    test_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database for the server alone: a SQLite file, or a PostgreSQL schema of its own."""
    suite_url = test_env["DATABASE_URL"]
    if not suite_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'e2e.db'}"
        return
    base = make_url(suite_url).difference_update_query(["options"])
    base_url = base.render_as_string(hide_password=False)
    schema = f"ob_e2e_{secrets.token_hex(4)}"
    engine = create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(scope="session")
def portal_server(
    test_env: dict[str, str], e2e_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PortalServer]:
    """``orderbridge run`` on a free port over a migrated, demo-seeded database of its own."""
    workdir = tmp_path_factory.mktemp("e2e-server")
    env = {
        **os.environ,
        **test_env,
        "DATABASE_URL": e2e_database,
        "ORDERBRIDGE_INSTANCE_DIR": str(workdir / "instance"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("FLASK_DEBUG", None)
    cli = _orderbridge()
    for step in (["db", "upgrade"], ["seed-demo", "--password", E2E_PASSWORD, "--orders", "40"]):
        done = subprocess.run(
            [*cli, *step], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            pytest.fail(
                f"`orderbridge {' '.join(step)}` failed ({done.returncode}):\n"
                f"{done.stdout}\n{done.stderr}"
            )
    port = _free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*cli, "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = PortalServer(f"http://127.0.0.1:{port}", e2e_database, log_path, process, env)
    try:
        _wait_until_up(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the tail of the server's output to the report of a failed e2e test."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("portal_server")
    if report.failed and isinstance(server, PortalServer):
        report.sections.append(("portal server output (tail)", server.log_tail()))


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


def sign_in(page, username: str, password: str = E2E_PASSWORD) -> None:
    """Fill in and submit the real login form on the current (login) page."""
    page.get_by_label("Username:").fill(username)
    page.get_by_label("Password:").fill(password)
    page.get_by_role("button", name="Sign In").click()


def add_filter(page, column: str) -> None:
    """On the list page shown: open Search, then Add Filter → ``column``; the filter's row is
    there when this returns.

    Each step waits for the one before to finish: the search panel's opening is animated
    (Bootstrap's collapse), and a click on the filter menu while the panel still grows can
    land on nothing, leaving no filter row (seen once in CI).
    """
    from playwright.sync_api import expect

    panel = page.locator("#accordion1_href")
    if "in" not in (panel.get_attribute("class") or "").split():
        page.get_by_role("link", name="Search").click()
    expect(panel).to_have_class(re.compile(r"(^|\s)in(\s|$)"))
    rows = page.locator("#filter_form table.filters > tbody > tr")
    before = rows.count()
    page.get_by_role("button", name="Add Filter").click()
    item = page.locator(f"#filter_form .dropdown-menu a.filter[name={column}]")
    expect(item).to_be_visible()
    item.click()
    expect(rows).to_have_count(before + 1)


@pytest.fixture
def new_page(browser, portal_server: PortalServer) -> Iterator[Callable[[], object]]:
    """Open pages in fresh browser contexts (own cookies); all closed after the test."""
    contexts = []

    def open_page():
        context = browser.new_context(base_url=portal_server.base_url, viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page_as(new_page: Callable[[], object]) -> Callable[[str], object]:
    """``page_as("specialist")``: a page in a new context, signed in through the login form."""

    def login(username: str):
        page = new_page()
        page.goto("/login/")
        sign_in(page, username)
        page.wait_for_url(lambda url: "/login" not in url)
        return page

    return login


DRAFTS = 6  # fresh draft orders the flows share out


def _post_json(url: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="session")
def draft_orders(portal_server: PortalServer) -> list[tuple[int, str]]:
    """(id, number) of draft orders entered for the flows over the REST API as the specialist
    (customers with the most credit, the best-stocked product, requested well beyond any lead
    time), newest first: tests share them out. The demo's own drafts are history, often with
    requested dates already past."""
    engine = create_engine(portal_server.database_url)
    try:
        with engine.connect() as conn:
            customers = conn.execute(
                text(
                    "SELECT c.id, min(a.id) AS address_id FROM customer c"
                    " JOIN customer_address a ON a.customer_id = c.id"
                    " WHERE c.active AND NOT c.credit_hold"
                    " GROUP BY c.id, c.credit_limit ORDER BY c.credit_limit DESC, c.id LIMIT 3"
                )
            ).all()
            product = conn.execute(
                text(
                    "SELECT p.id, p.pack_size FROM product p"
                    " JOIN stock_level s ON s.product_id = p.id WHERE p.active"
                    " GROUP BY p.id, p.pack_size"
                    " ORDER BY sum(s.on_hand - s.allocated) DESC, p.id LIMIT 1"
                )
            ).one()
    finally:
        engine.dispose()
    base = portal_server.base_url
    token = _post_json(
        f"{base}/api/v1/security/login",
        {"username": "specialist", "password": E2E_PASSWORD, "provider": "db", "refresh": False},
    )["access_token"]
    requested = (date.today() + timedelta(days=120)).isoformat()
    made = []
    for index in range(DRAFTS):
        customer = customers[index % len(customers)]
        body = {
            "customer_id": customer.id,
            "customer_po": f"E2E-{secrets.token_hex(4).upper()}",
            "requested_date": requested,
            "ship_to_id": customer.address_id,
            "incoterm": "DAP",
            "lines": [{"product_id": product.id, "quantity": product.pack_size}],
        }
        created = _post_json(f"{base}/api/v1/sales_order/", body, token)
        made.append((created["id"], created["result"]["number"]))
    return made[::-1]


@pytest.fixture
def sync_worker(portal_server: PortalServer) -> Iterator[None]:
    """A worker on the sync queue beside the server, for the syncs the pages queue."""
    args = ["worker", "--queue", "sync", "--no-scheduler"]
    worker = subprocess.Popen(
        [*_orderbridge(), *args],
        env=portal_server.env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield
    worker.terminate()
    worker.wait(timeout=30)


def sync_done(server: PortalServer, page) -> None:
    """Wait for the sync the page's message names (RQ's result stream: no polling)."""
    said = page.locator(".alert", has_text="sync queued as job").inner_text()
    job_id = re.search(r"job (sync-\d+-[0-9a-f]+)", said).group(1)
    conn = Redis.from_url(server.env["REDIS_URL"])
    result = Job.fetch(job_id, connection=conn).latest_result(timeout=60)
    assert result is not None and result.type == result.Type.SUCCESSFUL, result
