"""Read paths side by side with a default Flask-AppBuilder app, interleaved, over HTTP.

    .venv/bin/python bench/read_paths.py --database-url postgresql://…/ob1m \\
        --fab-database-url postgresql://…/fab1m [--orders 1000000] [--runs 50] [--warmups 5]
        [--clients 20] [--seconds 30] [--json out.json] [--only "REST show" ...]

The baseline is the default-FAB app of ``../shared/baselines/fab_default`` (its own virtualenv,
made once under ``~/.cache/orderbridge/fab-baseline-venv``, and its own database, loaded with
its SQL files to ``--orders`` orders when it holds another number). Orderbridge's database is
filled by ``bench/load.py`` beforehand (same shape: 2,000 customers, 5 lines per order on
average). Both run under ``gunicorn -w 2`` on free ports (Orderbridge with its own
``gunicorn.conf.py``: gthread workers), each signed in once as a browser (session cookie) and
once as a REST client (JWT).

Each case is requested 5 times on each side to warm up, then 50 times interleaved A/B (the
side that goes first alternates), and the p50/p95 of each side printed with the ratio
baseline / Orderbridge. Then 20 clients request the orders list's first page for 30 s
against each side in turn (baseline first) and the requests per second and p95 are printed.
The goals of issue 18 follow: every case 5x faster than the baseline at p95 (the deep REST
page 20x) and 5x its throughput. ``--only TEXT`` runs the cases whose name holds TEXT, and
``--clients 0`` leaves out the concurrent part (to iterate on a few cases).

Orderbridge's deep pages use what it offers: a page's ``next`` cursor when its lists have
one (found by asking for the page just before by number once, outside the timing), else the
page number (an ``OFFSET``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urljoin

import requests

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO.parent / "shared" / "baselines" / "fab_default"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "orderbridge"
FAB_VENV = CACHE / "fab-baseline-venv"
FAB_PACKAGES = ["flask-appbuilder==5.3.0", "marshmallow<4", "psycopg2-binary", "gunicorn"]
OB_PASSWORD = "orderbridge-bench"  # bench/load.py's users
FAB_USER, FAB_PASSWORD = "admin", "admin"
DEEP_OFFSET = 100_000
REST_PAGE = 1000
FAB_PAGE, OB_PAGE, REST_SIZE = 25, 50, 25  # FAB's list page size, Orderbridge's, REST's


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def psql_url(url: str) -> str:
    """A libpq URL (``psql``) from a SQLAlchemy one."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)


def psycopg2_url(url: str) -> str:
    """The baseline's SQLAlchemy URL (it installs psycopg2)."""
    return "postgresql+psycopg2://" + psql_url(url).split("://", 1)[1]


def psql(url: str, *args: str) -> str:
    done = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", psql_url(url), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


# --- the baseline: its virtualenv, its database --------------------------------------------


def ensure_fab_venv() -> Path:
    python = FAB_VENV / "bin" / "python"
    if not (FAB_VENV / "bin" / "gunicorn").exists():
        log(f"baseline virtualenv: {FAB_VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(FAB_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *FAB_PACKAGES], check=True)
    return python


def ensure_fab_database(url: str, orders: int) -> Path:
    """The baseline app folder (a copy in the cache) and its database with ``orders`` orders."""
    app_dir = CACHE / "fab_default"
    shutil.copytree(BASELINE, app_dir, dirs_exist_ok=True)
    env = {**os.environ, "DATABASE_URL": psycopg2_url(url)}
    exists = psql(url, "-c", "SELECT to_regclass('sales_order') IS NOT NULL") == "t"
    held = int(psql(url, "-c", "SELECT count(*) FROM sales_order")) if exists else 0
    if held == orders:
        return app_dir
    log(f"baseline database holds {held} orders: loading {orders:,} with its SQL files")
    began = time.perf_counter()
    psql(url, "-c", "DROP SCHEMA public CASCADE", "-c", "CREATE SCHEMA public")
    python = FAB_VENV / "bin" / "python"
    subprocess.run([str(python), "-c", "import app"], cwd=app_dir / "app", env=env, check=True)
    subprocess.run(
        [
            str(FAB_VENV / "bin" / "flask"),
            "fab",
            "create-admin",
            "--username",
            FAB_USER,
            "--firstname",
            "a",
            "--lastname",
            "a",
            "--email",
            "a@example.com",
            "--password",
            FAB_PASSWORD,
        ],
        cwd=app_dir / "app",
        env={**env, "FLASK_APP": "app"},
        check=True,
        capture_output=True,
    )
    psql(url, "-f", str(app_dir / "load_base.sql"))
    psql(url, "-v", "lo=1", "-v", f"hi={orders}", "-f", str(app_dir / "load_orders.sql"))
    log(f"baseline loaded in {time.perf_counter() - began:.0f} s")
    return app_dir


# --- servers and clients ---------------------------------------------------------------------


@dataclass
class Side:
    """One app under test: its server, its base URL, a browser and a REST session."""

    name: str
    base: str
    server: subprocess.Popen
    web: requests.Session = field(default_factory=requests.Session)
    api: requests.Session = field(default_factory=requests.Session)

    def get(self, session: requests.Session, path: str) -> requests.Response:
        response = session.get(urljoin(self.base, path), timeout=120)
        if response.status_code != 200:
            raise SystemExit(
                f"{self.name} {path}: HTTP {response.status_code} {response.text[:300]}"
            )
        return response


def start(name: str, command: list[str], cwd: Path, env: dict[str, str], port: int) -> Side:
    server = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"{name}: gunicorn exited with {server.returncode}")
        try:
            requests.get(base + "login/", timeout=5)
            return Side(name, base, server)
        except requests.RequestException:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"{name}: gunicorn did not answer within 120 s")


def sign_in(side: Side, username: str, password: str) -> None:
    """A browser session (login form with its CSRF token) and a REST bearer token."""
    page = side.web.get(side.base + "login/", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    answer = side.web.post(
        side.base + "login/",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code != 302:
        raise SystemExit(f"{side.name}: browser sign-in failed ({answer.status_code})")
    answer = side.api.post(
        side.base + "api/v1/security/login",
        json={"username": username, "password": password, "provider": "db", "refresh": False},
        timeout=30,
    )
    side.api.headers["Authorization"] = "Bearer " + answer.json()["access_token"]


# --- the cases ------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    baseline: tuple[str, str]  # (session: "web" | "api", path)
    orderbridge: tuple[str, str]
    goal: float = 5.0
    check: Callable[[requests.Response], str] | None = None


def rows_in(response: requests.Response) -> str:
    if response.headers.get("Content-Type", "").startswith("application/json"):
        body = response.json()
        result = body.get("result")
        return f"{len(result) if isinstance(result, list) else 1} rows"
    numbers = set(re.findall(r"SO-\d{6,}", response.text))
    return f"{len(numbers)} orders"


def next_link(page: requests.Response) -> str | None:
    """The Next link of an Orderbridge list page when it carries a cursor."""
    found = re.search(r'<a[^>]*href="([^"]*cursor[^"]*)"[^>]*rel="next"', page.text) or re.search(
        r'rel="next"[^>]*href="([^"]*cursor[^"]*)"', page.text
    )
    return found.group(1).replace("&amp;", "&").lstrip("/") if found else None


def deep_paths(ob: Side) -> tuple[str, str, str]:
    """Orderbridge's deep HTML page and deep REST page: the ``next`` cursor of the page before
    when it offers one (asked for by number once, outside the timing), else page numbers."""
    view, before = "SalesOrderView", DEEP_OFFSET // OB_PAGE - 1
    html = f"salesorderview/list/?page_{view}={before + 1}"
    html_how = "page number (OFFSET)"
    if cursor := next_link(ob.get(ob.web, f"salesorderview/list/?page_{view}={before}")):
        html, html_how = cursor, "keyset cursor"
    sort = (
        f"api/v1/sales_order/?q=(order_column:order_date,order_direction:desc,page_size:{REST_SIZE}"
    )
    rest = f"{sort},page:{REST_PAGE})"
    rest_how = "page number (OFFSET)"
    token = ob.get(ob.api, f"{sort},page:{REST_PAGE - 1})").json().get("next")
    if token:
        rest, rest_how = f"{sort})&cursor={quote(token)}", "keyset cursor"
    return html, rest, f"deep HTML page by {html_how}, deep REST page by {rest_how}"


def cases(ob: Side, show_id: int) -> tuple[list[Case], str]:
    deep_html, deep_rest, how = deep_paths(ob)
    view = "SalesOrderModelView"
    return [
        Case(
            "orders list, first page (HTML)",
            ("web", "salesordermodelview/list/"),
            ("web", "salesorderview/list/"),
        ),
        Case(
            "orders list, offset 100,000 (HTML)",
            ("web", f"salesordermodelview/list/?page_{view}={DEEP_OFFSET // FAB_PAGE}"),
            ("web", deep_html),
        ),
        Case(
            "orders list, status + customer filter",
            ("web", "salesordermodelview/list/?_flt_3_status=SHIPPED&_flt_0_customer=7"),
            ("web", "salesorderview/list/?_flt_0_status=shipped&_flt_0_customer=7"),
        ),
        Case(
            "REST list, page 0",
            ("api", f"api/v1/salesorder/?q=(page:0,page_size:{REST_SIZE})"),
            ("api", f"api/v1/sales_order/?q=(page:0,page_size:{REST_SIZE})"),
        ),
        Case(
            "REST sorted by date, page 1000",
            (
                "api",
                "api/v1/salesorder/?q=(order_column:order_date,order_direction:desc,"
                f"page:{REST_PAGE},page_size:{REST_SIZE})",
            ),
            ("api", deep_rest),
            goal=20.0,
        ),
        Case(
            "REST show one order",
            ("api", f"api/v1/salesorder/{show_id}"),
            ("api", f"api/v1/sales_order/{show_id}"),
        ),
    ], how


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(share * len(ordered)) - 1)]


def interleaved(case: Case, sides: tuple[Side, Side], warmups: int, runs: int) -> dict:
    """Warm both up, then time ``runs`` requests on each, alternating which goes first."""
    targets = [
        (side, getattr(side, how), path)
        for side, (how, path) in zip(sides, (case.baseline, case.orderbridge), strict=True)
    ]
    notes = []
    for side, session, path in targets:
        for _ in range(warmups):
            response = side.get(session, path)
        notes.append(f"{side.name}: {rows_in(response)}")
    timings: list[list[float]] = [[], []]
    for run in range(runs):
        order = (0, 1) if run % 2 == 0 else (1, 0)
        for index in order:
            side, session, path = targets[index]
            began = time.perf_counter()
            side.get(session, path)
            timings[index].append((time.perf_counter() - began) * 1000)
    base, ob = ({"p50": statistics.median(t), "p95": percentile(t, 0.95)} for t in timings)
    return {
        "case": case.name,
        "baseline": base,
        "orderbridge": ob,
        "ratio_p95": base["p95"] / ob["p95"],
        "ratio_p50": base["p50"] / ob["p50"],
        "goal": case.goal,
        "rows": "; ".join(notes),
        "paths": [case.baseline[1], case.orderbridge[1]],
    }


def concurrent(
    side: Side, path: str, login: Callable[[Side], None], clients: int, seconds: float
) -> dict:
    """``clients`` signed-in browsers request ``path`` for ``seconds``: req/s and p95."""
    sessions = []
    for _ in range(clients):
        own = Side(side.name, side.base, side.server)
        login(own)
        sessions.append(own)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client(own: Side) -> None:
        ready.wait()
        while not stop.is_set():
            began = time.perf_counter()
            response = own.web.get(own.base + path, timeout=120)
            took = (time.perf_counter() - began) * 1000
            with lock:
                if response.status_code == 200:
                    latencies.append(took)
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=client, args=(own,)) for own in sessions]
    for thread in threads:
        thread.start()
    ready.wait()
    began = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 0.95),
        "errors": errors[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="Orderbridge's (bench/load.py)")
    parser.add_argument("--fab-database-url", required=True, help="the baseline's own database")
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmups", type=int, default=5)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--show-id", type=int, default=123457)
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only the cases whose name contains TEXT (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    ensure_fab_venv()
    app_dir = ensure_fab_database(args.fab_database_url, args.orders)
    held = int(psql(args.database_url, "-c", "SELECT count(*) FROM sales_order"))
    if held != args.orders:
        raise SystemExit(
            f"Orderbridge's database holds {held:,} orders, not {args.orders:,}: "
            "fill it with bench/load.py --orders N --force"
        )
    fab_env = {**os.environ, "DATABASE_URL": psycopg2_url(args.fab_database_url)}
    ob_env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "ORDERBRIDGE_MODE": "demo",  # a SECRET_KEY of its own, cookies over plain HTTP
        "GUNICORN_CMD_ARGS": "",
    }
    ob_env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/6")
    fab_port, ob_port = free_port(), free_port()
    fab = start(
        "baseline",
        [str(FAB_VENV / "bin" / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{fab_port}", "app:app"],
        app_dir / "app",
        fab_env,
        fab_port,
    )
    ob = start(
        "orderbridge",
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{ob_port}",
            "portal:create_app()",
        ],
        REPO,
        ob_env,
        ob_port,
    )
    try:
        run(args, fab, ob)
    finally:
        for side in (fab, ob):
            side.server.terminate()
            side.server.wait(timeout=60)


def run(args: argparse.Namespace, fab: Side, ob: Side) -> None:
    def fab_login(side: Side) -> None:
        sign_in(side, FAB_USER, FAB_PASSWORD)

    def ob_login(side: Side) -> None:
        sign_in(side, "admin", OB_PASSWORD)

    fab_login(fab)
    ob_login(ob)
    load = os.getloadavg()
    log(
        f"{args.orders:,} orders; {os.cpu_count()} CPUs; load average before "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    todo, how = cases(ob, args.show_id)
    if args.only:
        todo = [case for case in todo if any(text in case.name for text in args.only)]
    log(f"Orderbridge: {how}")
    log(f"{'case':40s} {'baseline p50/p95':>20s} {'Orderbridge p50/p95':>22s}  ratio p95 (goal)")
    results = []
    for case in todo:
        row = interleaved(case, (fab, ob), args.warmups, args.runs)
        results.append(row)
        met = "met" if row["ratio_p95"] >= row["goal"] else "NOT met"
        log(
            f"{row['case']:40s} {row['baseline']['p50']:8.1f} / {row['baseline']['p95']:7.1f} ms"
            f" {row['orderbridge']['p50']:9.1f} / {row['orderbridge']['p95']:7.1f} ms"
            f"  {row['ratio_p95']:6.2f}x ({row['goal']:.0f}x {met}); {row['rows']}"
        )
    if args.clients < 1:  # no concurrent part
        return finish(args, results, {})
    crowd = {}
    for side, path, login in (
        (fab, "salesordermodelview/list/", fab_login),
        (ob, "salesorderview/list/", ob_login),
    ):
        crowd[side.name] = concurrent(side, path, login, args.clients, args.seconds)
        got = crowd[side.name]
        log(
            f"{args.clients} clients x {args.seconds:.0f} s, list first page, {side.name}: "
            f"{got['rps']:.2f} req/s, p50 {got['p50']:.0f} ms, p95 {got['p95']:.0f} ms, "
            f"{got['requests']} requests, {got['errors']} errors"
        )
    ratio = crowd["orderbridge"]["rps"] / crowd["baseline"]["rps"]
    log(
        f"throughput ratio Orderbridge / baseline: {ratio:.2f}x (goal 5x "
        f"{'met' if ratio >= 5 else 'NOT met'})"
    )
    finish(args, results, crowd)


def finish(args: argparse.Namespace, results: list[dict], crowd: dict) -> None:
    load = os.getloadavg()
    log(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"cases": results, "concurrent": crowd}, indent=1))


if __name__ == "__main__":
    main()
