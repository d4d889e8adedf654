"""``orderbridge import orders|customers|products|stock FILE`` and ``orderbridge import undo``.

The same services as the Import page (``portal.services.imports``): the actor is
``system:cli`` or ``--user NAME``. ``--json`` prints one JSON document (counts and every
row's outcome) on stdout; on a terminal a progress bar with rows/s and the time left goes
to stderr. Problems with the file, the mapping or the input are one ``Error:`` line.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

CLI_ACTOR = "system:cli"


@click.group("import", help="Import a team's files: order history, customers, products, stock.")
def import_group() -> None:
    pass


class ProgressBar:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.2 and done != total):
            return
        self.last = now
        rate = done / max(now - self.started, 1e-6)
        if total:
            width = 30
            filled = int(width * done / total)
            left = (total - done) / rate if rate else 0
            text = (
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} rows "
                f"{rate:,.0f} rows/s, {left:,.0f} s left "
            )
        else:
            text = f"\r{self.label}: read {done} rows, {rate:,.0f} rows/s "
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _actor(username: str | None) -> Any:
    from portal.actors import actor_for_user
    from portal.extensions import appbuilder
    from portal.services.base import Actor

    if not username:
        return Actor.system(CLI_ACTOR)
    user = appbuilder.sm.find_user(username=username)
    if user is None:
        raise click.ClickException(f"no user {username}")
    return actor_for_user(user, "cli")


def _opener(kind: str, path: Path, sheet: str | None, row: int | None, preset: str | None):
    """A function opening the table to import (again for the result workbook); without
    ``--header-row`` the header row is the one that looks most like headers."""
    from portal.services.imports_fields import NORTHWIND_SHEETS, header_row
    from sheets.readers import first_rows, join_sheets, read_table

    if preset == "northwind" and sheet is None and path.suffix.lower() != ".csv":
        return lambda: join_sheets(path, *NORTHWIND_SHEETS, key="OrderID")
    if row is None:
        row = header_row(kind, first_rows(path, sheet))
    return lambda: read_table(path, sheet, row)


def _mapping(kind: str, table: Any, mapping_file: Path | None, preset: str | None):
    """The mapping from ``--mapping``, ``--preset``, or else the suggester's (shown on
    stderr, so a script's JSON on stdout stays one document)."""
    from portal.services.imports_fields import load_mapping_file, preset_mapping, suggest
    from sheets.readers import peek

    if mapping_file is not None:
        return load_mapping_file(mapping_file)
    if preset is not None:
        return preset_mapping(preset, table.headers)
    mapping = {}
    for choice in suggest(kind, table.headers, peek(table)):
        if choice.field:
            mapping[choice.header] = choice.field
            click.echo(f"mapping {choice.header!r} -> {choice.field} ({choice.reason})", err=True)
    return mapping


def _run(kind: str, options: dict[str, Any], work: Callable[..., Any]) -> None:
    """Open, map, import and report; every expected problem is one line."""
    from portal.services.base import ServiceError
    from portal.services.imports_fields import MappingProblem
    from sheets.readers import ReadError

    path = Path(options["file"])
    bar = ProgressBar(f"import {kind}")
    try:
        opener = _opener(kind, path, options["sheet"], options["header_row"], options["preset"])
        table = opener()
        mapping = _mapping(kind, table, options["mapping_file"], options["preset"])
        result = work(path, table, mapping, _actor(options["username"]), bar)
    except (ReadError, MappingProblem) as problem:
        raise click.ClickException(str(problem)) from None
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    finally:
        bar.close()
    if options["result_file"]:
        _write_result(Path(options["result_file"]), opener, result)
    if options["as_json"]:
        click.echo(json.dumps({**result.to_json(), "mapping": mapping}, default=str))
        return
    _report(kind, result)


def _write_result(target: Path, opener: Callable[[], Any], result: Any) -> None:
    from sheets.result_book import write_result

    table = opener()
    outcomes = {row.number: (row.outcome, row.reason) for row in result.rows}
    write_result(target, table.headers, table.rows, outcomes, table.sheet)


def _report(kind: str, result: Any) -> None:
    what = "dry run" if result.dry_run else f"import {result.run_id}"
    counts = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in result.counts.items())
    click.echo(f"{what} of {kind} from {result.file_name}: {counts}")
    for row in result.rows:
        if row.outcome == "refused":
            click.echo(f"  row {row.number}: refused — {row.reason}")


def _common(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.argument("file", type=click.Path(dir_okay=False)),
            click.option("--sheet", help="The sheet to read (default: the first)."),
            click.option(
                "--header-row", type=click.IntRange(min=1), help="The header's row (1-based)."
            ),
            click.option(
                "--mapping",
                "mapping_file",
                type=click.Path(dir_okay=False, path_type=Path),
                help='A JSON file {"header": "field", ...}.',
            ),
            click.option(
                "--preset",
                type=click.Choice(["superstore", "northwind", "invoice-lines"]),
                help="A known layout.",
            ),
            click.option("--dry-run", is_flag=True, help="Decide every row; write nothing."),
            click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout."),
            click.option(
                "--result",
                "result_file",
                type=click.Path(dir_okay=False),
                help="Write each input row with its outcome and reason to this .xlsx.",
            ),
            click.option("--user", "username", help=f"Import as this user (default: {CLI_ACTOR})."),
        )
    ):
        command = option(command)
    return command


@import_group.command("orders")
@_common
@click.option("--no-new-customers", is_flag=True, help="Refuse rows of unknown customers.")
@click.option("--no-new-products", is_flag=True, help="Refuse rows of unknown products.")
@with_appcontext
def import_orders(no_new_customers: bool, no_new_products: bool, **options: Any) -> None:
    """Import order history: one row per order line (or per order), grouped into orders."""
    from portal.services import imports
    from portal.services.imports_fields import CANCEL_PREFIX, DEFAULT_STATUS, returned_orders

    def work(path: Path, table: Any, mapping: dict[str, str], actor: Any, bar: Any) -> Any:
        settings = imports.ImportOptions(
            mapping,
            dry_run=options["dry_run"],
            new_customers=not no_new_customers,
            new_products=not no_new_products,
            cancel_prefix=CANCEL_PREFIX.get(options["preset"] or ""),
            default_status=DEFAULT_STATUS.get(options["preset"] or ""),
            returned_orders=returned_orders(options["preset"], path),
        )
        return imports.import_orders(path, table, actor, settings, bar)

    _run("orders", options, work)


def _master_command(kind: str, help_text: str) -> None:
    @import_group.command(kind, help=help_text)
    @_common
    @with_appcontext
    def command(**options: Any) -> None:
        from portal.services import imports_master

        def work(path: Path, table: Any, mapping: dict[str, str], actor: Any, bar: Any) -> Any:
            return imports_master.import_master(
                kind, path, table, mapping, actor, dry_run=options["dry_run"], progress=bar
            )

        _run(kind, options, work)


_master_command("customers", "Import customers (matched by code): create new, update changed.")
_master_command("products", "Import products (matched by SKU): create new, update changed.")
_master_command("stock", "Import stock on hand per product and warehouse (an adjustment).")


@import_group.command("undo")
@click.argument("import_id", type=int)
@click.option("--user", "username", help=f"Undo as this user (default: {CLI_ACTOR}).")
@with_appcontext
def undo(import_id: int, username: str | None) -> None:
    """Take back an order import as a whole, while none of its orders moved on."""
    from portal.services import imports
    from portal.services.base import ServiceError

    try:
        counts = imports.undo(import_id, _actor(username))
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(
        f"import {import_id} undone: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())
    )
