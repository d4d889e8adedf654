"""``orderbridge xlwings client``: the code that adds a Sync button to a tracker's workbook."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.sync.xlwings_client import KINDS, client_code

SYNC_PATH = "/xlwings/sync/"  # portal/views/xlwings.py's endpoint


def sync_url(base: str, tracker: str) -> str:
    """The endpoint of ``tracker`` under the portal's address ``base``."""
    return base.rstrip("/") + SYNC_PATH + quote(tracker, safe="")


@click.group("xlwings", help="Sync from inside Excel: the xlwings client kit (docs/xlwings.md).")
def xlwings_group() -> None:
    """The ``xlwings`` command group."""


@xlwings_group.command("client")
@click.option("--tracker", "name", required=True, help="The tracker's name.")
@click.option("--kind", type=click.Choice(KINDS), default="vba", show_default=True)
@click.option("--url", help="The portal's address as Excel reaches it (default: PORTAL_URL).")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the code (default: its file name, in the current directory).",
)
@with_appcontext
def client(name: str, kind: str, url: str | None, output: Path | None) -> None:
    """Write the xlwings client code for tracker NAME, configured with the portal's URL."""
    from portal.services import trackers
    from portal.services.base import NotFound

    try:
        tracker = trackers.by_name(name)
    except NotFound as error:
        raise click.ClickException(error.message) from None
    if tracker.backend != "xlwings":
        raise click.ClickException(
            f"tracker {tracker.name} has the {tracker.backend} backend; the client is for "
            "xlwings trackers"
        )
    base = url or current_app.config.get("PORTAL_URL") or ""
    if not base.startswith(("https://", "http://")):
        raise click.ClickException(
            "give the portal's address as Excel reaches it: --url https://... (or set PORTAL_URL)"
        )
    filename, text = client_code(kind, sync_url(base, tracker.name), tracker.name, tracker.tab)
    target = output or Path(filename)
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target} ({kind} client of tracker {tracker.name}); see docs/xlwings.md")
