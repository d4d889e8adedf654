"""``orderbridge report weekly``: the weekly order-health workbook from the command line.

The same service as the page, the API and the Monday job (``weekly_report.make``): the
workbook is kept for download and audited, with the actor ``system:cli``.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

CLI_ACTOR = "system:cli"


@click.group("report", help="Reports: the weekly order-health workbook.")
def report() -> None:
    pass


@report.command("weekly")
@click.option("--week", help="The ISO week, e.g. 2026-W47 (default: the last complete week).")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the .xlsx file.",
)
@with_appcontext
def weekly(week: str | None, out: Path) -> None:
    """Make the order-health workbook of a week and write it to FILE."""
    from portal.services import service_levels, weekly_report
    from portal.services.base import Actor, ServiceError

    try:
        period = service_levels.parse_week(week) if week else None
        made = weekly_report.make(Actor.system(CLI_ACTOR), "cli", period)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    try:
        out.write_bytes(made.content)
    except OSError as error:
        raise click.ClickException(f"cannot write {out}: {error.strerror}") from None
    click.echo(f"{out}: order health {made.week}, {made.size:,} bytes")
