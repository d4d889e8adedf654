"""``orderbridge sheets``: define trackers, write their workbooks, sync them, run the scheduler."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from portal.models import BACKENDS, SyncRun, Tracker, columns_json
from portal.sync.cli_attach import attach_command
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


def _user_id(username: str) -> int:
    from portal.extensions import appbuilder

    user = appbuilder.sm.find_user(username=username)
    if user is None:
        _fail(f"no user named {username!r}")
    return user.id


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
@click.option(
    "--owner", help="Username of the tracker's owner (it is in their Sync → My trackers)."
)
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
        "owner_id": _user_id(str(options["owner"])) if options["owner"] else None,
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
    from portal.services import trackers
    from portal.sync.adapters import new_workbook_rows, tab_layout, workbook_base
    from sheets.backends.xlsx_files import check_workbook_file, suffix_problem
    from sheets.backends.xlsx_init import TabExists, write_tracker
    from sheets.grid import SheetChangedError

    t = _tracker(name)
    if t.backend == "gsheets":
        _init_google(t, force)
        return
    if t.backend != "xlsx":
        _fail(f"{name} is a {t.backend} tracker; init writes .xlsx workbooks and Google tabs")
    path = Path(t.location).expanduser()
    spec = t.spec()
    try:
        if (problem := suffix_problem(path)) is not None:
            raise ValueError(problem)
        if path.exists():
            check_workbook_file(path)
        rows = new_workbook_rows(spec, t.filter)
        outcome = write_tracker(path, t.tab, spec.headers, rows, **tab_layout(spec), replace=force)
    except TabExists:
        _fail(
            f"{path} already has a tab {t.tab!r}; use --force to rewrite that tab "
            "(the workbook's other sheets are kept)"
        )
    except (ValueError, KeyError, SheetChangedError, OSError) as error:
        _fail(str(error).strip("'\""))
    # the tab now holds exactly these values: they are the base of the first sync, so an
    # edit made before it is an edit, not a "changed on both sides" conflict
    trackers.seed_base(t.id, spec, workbook_base(spec, rows))
    done = {"created": "wrote", "added": "added the tab to", "replaced": "refreshed the tab in"}
    click.echo(f"{done[outcome]} {path} [{t.tab}] with {len(rows)} rows")


def _init_google(t: Tracker, force: bool) -> None:
    """``sheets init`` of a Google tracker: add its tab (formats, dropdowns, rows) in three
    requests whatever the number of rows."""
    from portal.services import trackers
    from portal.sync.adapters import new_workbook_rows, tab_layout, workbook_base
    from portal.sync.backends import open_tracker_backend
    from sheets.backends import BackendUnavailable
    from sheets.backends.gsheets import GSheetsBackend, SheetsError
    from sheets.backends.gsheets_init import init_google_tracker

    if force:
        _fail(
            f"{t.name}: --force is for .xlsx workbooks; to rewrite a Google tab, delete or "
            "rename it in the spreadsheet and run init again"
        )
    spec = t.spec()
    rows = new_workbook_rows(spec, t.filter)
    try:
        backend = open_tracker_backend(t)
        assert isinstance(backend, GSheetsBackend)  # the gsheets backend of a gsheets tracker
        types = {c.header: c.type for c in spec.columns}
        init_google_tracker(
            backend, t.location, t.tab, spec.headers, rows, **tab_layout(spec), types=types
        )
    except (ValueError, SheetsError, BackendUnavailable, OSError) as error:
        _fail(str(error))
    trackers.seed_base(t.id, spec, workbook_base(spec, rows))  # as for .xlsx, see init
    click.echo(f"added the tab [{t.tab}] to Google spreadsheet {t.location} with {len(rows)} rows")


@sheets.command("sync")
@click.argument("name")
@click.option("--queue", "queued", is_flag=True, help="Enqueue on the sync queue instead.")
@click.option("--dry-run", is_flag=True, help="Say what a sync would do with every row.")
@click.option("--json", "as_json", is_flag=True, help="Counts and every row's outcome as JSON.")
@with_appcontext
def sync(name: str, queued: bool, dry_run: bool, as_json: bool) -> None:
    """Sync a tracker now (inline), or queue the sync job; --dry-run writes nothing."""
    from jobs.sync import request_sync, sync_tracker
    from portal.sync.attach import AttachError, tracker_dry_run
    from portal.sync.cli_attach import report

    t = _tracker(name)
    if queued:
        click.echo(request_sync(t.id))
        return
    if dry_run:
        try:
            report(tracker_dry_run(t), as_json, {"tracker": name, "dry_run": True})
        except (AttachError, ValueError, KeyError, OSError) as error:
            _fail(str(error).strip("'\""))
        return
    rows: list = []
    outcome = sync_tracker(t.id, rows)
    if as_json:
        report(rows, True, {"tracker": name, "dry_run": False, **outcome})
    else:
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


sheets.add_command(attach_command)
