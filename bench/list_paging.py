"""The list pages before and after counts without a scan, keyset paging and the permission
cache (issue 18), side by side over HTTP, interleaved.

    .venv/bin/python bench/list_paging.py --database-url postgresql://…/ob200k \\
        --before <git revision> [--orders 200000] [--runs 30] [--warmups 3]

The database is filled by ``bench/load.py --orders 200000`` (and migrated by this checkout).
The code of ``--before`` (a commit without this work, e.g. main before it landed) is exported
with ``git archive`` into a temporary directory; both it and this checkout serve the same
database under ``gunicorn -w 2`` on free ports, each signed in as the Specialist (browser
session and JWT). Each case is warmed up on both sides, then timed ``--runs`` times on each,
alternating which side goes first (``bench/read_paths.py``'s loop); p50/p95 per side and the
ratio before / after are printed with the load average before and after the run.

The deep pages are what each side offers a user walking the list: "before" asks for the page
by number (``OFFSET``), "after" follows the ``next`` cursor of the page before it (found once,
outside the timing).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from read_paths import (  # bench/ is a folder of scripts, not a package
    OB_PASSWORD,
    REPO,
    Case,
    Side,
    free_port,
    interleaved,
    log,
    next_link,
    psql,
    sign_in,
    start,
)

VIEW = "SalesOrderView"
BY_DATE = f"salesorderview/list/?_oc_{VIEW}=order_date&_od_{VIEW}=desc"
REST_BY_DATE = "api/v1/sales_order/?q=(order_column:order_date,order_direction:desc,page_size:25"
HTML_PAGE, REST_PAGE = 1000, 1000  # 50 and 25 a page: offsets 50,000 and 25,000


def export(revision: str, into: Path) -> Path:
    """The code of ``revision`` in ``into`` (``git archive``), with its own instance folder."""
    archive = subprocess.run(
        ["git", "archive", revision], cwd=REPO, check=True, capture_output=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def serve(name: str, code: Path, database_url: str, instance: Path) -> Side:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ORDERBRIDGE_MODE": "demo",  # a SECRET_KEY of its own, cookies over plain HTTP
        "ORDERBRIDGE_INSTANCE_DIR": str(instance),
        "GUNICORN_CMD_ARGS": "",
        "PYTHONPATH": str(code),  # this code, not the checkout the virtualenv installed
    }
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/6")
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    command = [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "portal:create_app()"]
    return start(name, command, code, env, port)


def deep(side: Side, session: str, by_number: str, cursor_of: str, paged: bool) -> str:
    """The deep page's path: by number, or by the cursor of the page before it."""
    if not paged:
        return by_number
    before = side.get(getattr(side, session), cursor_of)
    if session == "web":
        found = next_link(before)
    else:
        token = before.json().get("next")
        found = f"{REST_BY_DATE})&cursor={quote(token)}" if token else None
    if found is None:
        raise SystemExit(f"{side.name}: no next cursor on {cursor_of}")
    return found


def cases(before: Side, after: Side) -> list[Case]:
    html = [f"{BY_DATE}&page_{VIEW}={page}" for page in (HTML_PAGE, HTML_PAGE - 1)]
    rest = [f"{REST_BY_DATE},page:{page})" for page in (REST_PAGE, REST_PAGE - 1)]
    plain = [
        ("orders list, first page (HTML)", "web", "salesorderview/list/"),
        ("orders list, status filter (HTML)", "web", "salesorderview/list/?_flt_0_status=closed"),
        ("REST list, page 0", "api", "api/v1/sales_order/?q=(page:0,page_size:25)"),
    ]
    made = [Case(name, (how, path), (how, path), goal=1.0) for name, how, path in plain]
    made.append(
        Case(
            f"orders list by date, page {HTML_PAGE} (HTML)",
            ("web", deep(before, "web", html[0], html[1], False)),
            ("web", deep(after, "web", html[0], html[1], True)),
            goal=1.0,
        )
    )
    made.append(
        Case(
            f"REST by date, page {REST_PAGE}",
            ("api", deep(before, "api", rest[0], rest[1], False)),
            ("api", deep(after, "api", rest[0], rest[1], True)),
            goal=1.0,
        )
    )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="filled by bench/load.py")
    parser.add_argument("--before", required=True, help="the git revision to compare with")
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmups", type=int, default=3)
    args = parser.parse_args()
    held = int(psql(args.database_url, "-c", "SELECT count(*) FROM sales_order"))
    if held != args.orders:
        raise SystemExit(f"the database holds {held:,} orders, not {args.orders:,}")
    with tempfile.TemporaryDirectory(prefix="list-paging-") as scratch:
        old = export(args.before, Path(scratch) / "code")
        sides = (
            serve("before", old, args.database_url, Path(scratch) / "before"),
            serve("after", REPO, args.database_url, Path(scratch) / "after"),
        )
        try:
            run(args, sides)
        finally:
            for side in sides:
                side.server.terminate()
                side.server.wait(timeout=60)


def run(args: argparse.Namespace, sides: tuple[Side, Side]) -> None:
    for side in sides:
        sign_in(side, "specialist", OB_PASSWORD)
    load = os.getloadavg()
    log(
        f"{args.orders:,} orders; before = {args.before}; {os.cpu_count()} CPUs; "
        f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    log(f"{'case':40s} {'before p50/p95':>20s} {'after p50/p95':>22s}  before/after p95")
    for case in cases(*sides):
        row = interleaved(case, sides, args.warmups, args.runs)
        log(
            f"{row['case']:40s} {row['baseline']['p50']:8.1f} / {row['baseline']['p95']:7.1f} ms"
            f" {row['orderbridge']['p50']:9.1f} / {row['orderbridge']['p95']:7.1f} ms"
            f"  {row['ratio_p95']:6.2f}x; {row['rows']}"
        )
    load = os.getloadavg()
    log(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
