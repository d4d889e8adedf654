"""``orderbridge sheets``: define trackers, write their workbooks, sync them, run the scheduler."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from portal.models import BACKENDS, SyncRun, Tracker, columns_json
from sheets.trackers import CONFLICT_POLICIES, RECORD_KINDS

CLI_ACTOR = "system:cli"


@click.group("sheets", help="Spreadsheet trackers and their two-way sync.")
def sheets() -> None:
    """The ``sheets`` command group."""


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _tracker(name: str) -> Tracker:
    from portal.services import trackers
    from portal.services.base import NotFound

    try:
        return trackers.by_name(name)
    except NotFound as error:
        _fail(error.message)
        raise  # unreachable: _fail exits


@sheets.command("add")
@click.argument("name")
@click.option("--kind", type=click.Choice(RECORD_KINDS), required=True)
@click.option("--backend", type=click.Choice(BACKENDS), default="xlsx", show_default=True)
@click.option("--location", required=True, help="The .xlsx path, or the spreadsheet key.")
@click.option("--tab", required=True, help="The worksheet (tab) name.")
@click.option("--key-header", help="Header of the key column (default: the kind's).")
@click.option("--key-field", help="The kind's key field (default: the kind's).")
@click.option("--columns", "columns", help='JSON list of {"header","field","type","owner"}.')
@click.option("--preset", is_flag=True, help="Use the kind's preset columns (the default).")
@click.option("--status-header", default="Sync status", show_default=True)
@click.option("--policy", type=click.Choice(CONFLICT_POLICIES), default="flag", show_default=True)
@click.option("--interval", "interval_seconds", type=int, default=0, show_default=True)
@click.option("--may-create/--no-create", default=False, show_default=True)
@click.option("--filter", "filter_", help="e.g. open (orders, order lines), active (stock).")
@click.option("--disabled", is_flag=True, help="Create it disabled (not scheduled).")
@with_appcontext
def add(name: str, kind: str, **options: object) -> None:
    """Define a tracker NAME binding a tab to a kind of record."""
    from portal.services import trackers
    from portal.services.base import Actor, ServiceError
    from portal.sync.kinds import KINDS

    if options.pop("preset") and options.get("columns"):
        _fail("give --columns or --preset, not both")
    if options.get("columns") is None and kind in KINDS:
        options["columns"] = columns_json(KINDS[kind].preset)
    data = {
        "name": name,
        "kind": kind,
        "backend": options["backend"],
        "location": options["location"],
        "tab": options["tab"],
        "key_header": options["key_header"],
        "key_field": options["key_field"],
        "columns": options["columns"],
        "status_header": options["status_header"],
        "conflict_policy": options["policy"],
        "interval_seconds": options["interval_seconds"],
        "may_create": options["may_create"],
        "filter": options["filter_"],
        "enabled": not options["disabled"],
    }
    try:
        tracker = trackers.trackers.create(data, Actor.system(CLI_ACTOR))
    except ServiceError as error:
        _fail(error.message)
    click.echo(f"tracker {tracker.name} added (id {tracker.id})")


@sheets.command("list")
@with_appcontext
def list_trackers() -> None:
    """List the trackers."""
    from portal.extensions import db

    for t in db.session.query(Tracker).order_by(Tracker.name):
        schedule = f"every {t.interval_seconds}s" if t.interval_seconds else "manual"
        state = "" if t.enabled else " (disabled)"
        click.echo(f"{t.name}\t{t.kind}\t{t.backend}\t{t.location} [{t.tab}]\t{schedule}{state}")


@sheets.command("show")
@click.argument("name")
@with_appcontext
def show(name: str) -> None:
    """Show a tracker's definition and its last runs."""
    from portal.extensions import db
    from portal.services import trackers

    t = _tracker(name)
    for field in (f for f in trackers.trackers.creatable if f != "columns"):
        click.echo(f"{field}: {getattr(t, field)}")
    click.echo("columns:")
    for c in t.column_list():
        click.echo(f"  {c.header} -> {c.field} ({c.type}, owner {c.owner})")
    runs = (
        db.session.query(SyncRun)
        .filter_by(tracker_id=t.id)
        .order_by(SyncRun.id.desc())
        .limit(5)
        .all()
    )
    for r in runs:
        click.echo(
            f"run {r.id} {r.started_at:%Y-%m-%d %H:%M:%S} {r.status}: read {r.rows_read}, "
            f"applied {r.applied}, created {r.created}, written {r.written}, "
            f"conflicts {r.conflicts}, errors {r.errors}" + (f" — {r.error}" if r.error else "")
        )


@sheets.command("init")
@click.argument("name")
@click.option(
    "--force",
    is_flag=True,
    help="Rewrite the tracker's tab if the workbook has it (its other sheets are kept).",
)
@with_appcontext
def init(name: str, force: bool) -> None:
    """Write the tracker's tab from the current records: a new .xlsx workbook, or a tab added
    to (with --force: refreshed in) an existing one, whose other sheets stay as they are."""
    from portal.sync.adapters import new_workbook_rows, workbook_choices
    from sheets.backends.xlsx_files import check_workbook_file, suffix_problem
    from sheets.backends.xlsx_init import TabExists, write_tracker
    from sheets.grid import SheetChangedError

    t = _tracker(name)
    if t.backend != "xlsx":
        _fail(f"{name} is a {t.backend} tracker; init writes .xlsx workbooks")
    path = Path(t.location).expanduser()
    spec = t.spec()
    try:
        if (problem := suffix_problem(path)) is not None:
            raise ValueError(problem)
        if path.exists():
            check_workbook_file(path)
        rows = new_workbook_rows(spec, t.filter)
        outcome = write_tracker(
            path,
            t.tab,
            spec.headers,
            rows,
            key_header=spec.key_header,
            status_header=spec.status_header,
            status_choices=workbook_choices(spec),
            replace=force,
        )
    except TabExists:
        _fail(
            f"{path} already has a tab {t.tab!r}; use --force to rewrite that tab "
            "(the workbook's other sheets are kept)"
        )
    except (ValueError, KeyError, SheetChangedError, OSError) as error:
        _fail(str(error).strip("'\""))
    done = {"created": "wrote", "added": "added the tab to", "replaced": "refreshed the tab in"}
    click.echo(f"{done[outcome]} {path} [{t.tab}] with {len(rows)} rows")


@sheets.command("sync")
@click.argument("name")
@click.option("--queue", "queued", is_flag=True, help="Enqueue on the sync queue instead.")
@with_appcontext
def sync(name: str, queued: bool) -> None:
    """Sync a tracker now (inline), or queue the sync job."""
    from jobs.sync import request_sync, sync_tracker

    t = _tracker(name)
    if queued:
        click.echo(request_sync(t.id))
        return
    outcome = sync_tracker(t.id)
    click.echo(json.dumps(outcome, default=str))
    if outcome.get("status") == "failed":
        _fail(str(outcome.get("error")))


@sheets.command("schedule")
@click.option("--loop", is_flag=True, help="Keep ticking (the scheduler process).")
@click.option("--every", default=15.0, show_default=True, help="Seconds between ticks.")
@with_appcontext
def schedule(loop: bool, every: float) -> None:
    """Enqueue every enabled tracker whose interval has elapsed."""
    from jobs.schedule import run_forever, stop_on_signals, tick

    if loop:
        run_forever(every, stop_on_signals())
        return
    enqueued = tick()
    click.echo(f"enqueued {len(enqueued)} tracker sync(s)")
