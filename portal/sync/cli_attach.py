"""``orderbridge sheets attach`` and the report of a sync or dry run (``--json``).

Scripts depend on these names (issue 12, "The CLI contract"):
``sheets attach NAME --kind KIND --file PATH|--url URL [--sheet S] [--header-row N]
[--key HEADER] [--mapping auto|FILE] [--may-create] [--dry-run] [--json]`` and
``sheets sync NAME [--dry-run] [--json]``. ``--json`` prints one JSON document on stdout: the
counts and every row's outcome ``{row, key, outcome, message}``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click
from flask.cli import with_appcontext

from portal.sync.attach_fields import ATTACH_KINDS
from sheets.outcomes import RowOutcome, count_outcomes

CLI_ACTOR = "system:cli"


def _fail(message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"status": "failed", "error": message}))
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def row_dict(o: RowOutcome) -> dict[str, Any]:
    """One row's outcome as JSON (conflicts add the header and both values)."""
    out: dict[str, Any] = {"row": o.row, "key": o.key, "outcome": o.outcome, "message": o.message}
    if o.header is not None:
        out.update(header=o.header, sheet_value=o.sheet_value, portal_value=o.portal_value)
    return out


def report(
    outcomes: Sequence[RowOutcome], as_json: bool, extra: dict[str, Any], limit: int = 20
) -> None:
    """Print the counts and the rows (``as_json``: every row; text: those with news)."""
    counts = {k: v for k, v in count_outcomes(outcomes).items() if v}
    if as_json:
        doc = {**extra, "counts": counts, "rows": [row_dict(o) for o in outcomes]}
        click.echo(json.dumps(doc, default=str))
        return
    click.echo(", ".join(f"{n} {k}" for k, n in counts.items()) or "no rows")
    shown = [o for o in outcomes if o.outcome != "unchanged"][:limit]
    for o in shown:
        click.echo(f"  row {o.row} [{o.key or '-'}] {o.outcome}: {o.message}")


def _mapping(proposal: Any, mapping: str) -> dict[str, str | None]:
    from portal.sync import attach

    if mapping == "auto":
        return attach.mapping_of(proposal)
    return attach.mapping_file(mapping, proposal.headers)


def _print_mapping(proposal: Any, kind: str, chosen: dict[str, str | None]) -> None:
    from portal.sync.attach_fields import label_of

    where = f" (table {proposal.table})" if proposal.table else ""
    click.echo(f"sheet {proposal.sheet!r}{where}, headers on row {proposal.header_row}")
    reasons = {s.header: s.reason for s in proposal.suggestions}
    for header in proposal.headers:
        if header:
            field = chosen.get(header)
            click.echo(f"  {header} -> {label_of(kind, field)}  ({reasons.get(header, '')})")


@click.command("attach")
@click.argument("name")
@click.option("--kind", type=click.Choice(ATTACH_KINDS), required=True)
@click.option("--file", "file_", help="The .xlsx workbook (it stays where it is).")
@click.option("--url", help="A Google Sheets address.")
@click.option("--sheet", help="The sheet (default: the first table's, else the first sheet).")
@click.option("--header-row", type=click.IntRange(min=1), help="Row of the headers.")
@click.option("--key", help="Header of the column holding the team's own key.")
@click.option("--mapping", default="auto", show_default=True, help="auto, or a JSON file.")
@click.option("--may-create", is_flag=True, help="Rows naming no record create one.")
@click.option("--status-column", help="Add a sync status column with this header.")
@click.option(
    "--append-records", is_flag=True, help="Add portal records missing from the sheet to it."
)
@click.option(
    "--line-number",
    metavar="HEADER|position",
    help="Lines without a line id: key each on its order id and this column's line number, "
    "or 'position' (the row's place among its order's rows).",
)
@click.option("--dry-run", is_flag=True, help="Say what the first sync would do; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@with_appcontext
def attach_command(name: str, kind: str, **opts: Any) -> None:
    """Attach the workbook a team already has as tracker NAME, map its columns, first sync."""
    from jobs.sync import sync_tracker
    from portal.services.base import Actor
    from portal.sync import attach

    as_json = bool(opts["as_json"])
    try:
        source = attach.source_of(opts["file_"], opts["url"])
        proposal = attach.propose(source, kind, opts["sheet"], opts["header_row"])
        chosen = _mapping(proposal, opts["mapping"])
        data = attach.tracker_data(
            name,
            kind,
            source,
            proposal,
            chosen,
            key=opts["key"],
            may_create=opts["may_create"],
            status_header=opts["status_column"],
            append_records=opts["append_records"],
            line_number=opts["line_number"],
        )
        if not as_json:
            _print_mapping(proposal, kind, chosen)
        extra = {
            "tracker": name,
            "sheet": proposal.sheet,
            "header_row": proposal.header_row,
            "table": proposal.table,
            "mapping": [
                {
                    "header": s.header,
                    "field": chosen.get(s.header),
                    "suggested": s.field,
                    "confidence": s.confidence,
                    "reason": s.reason,
                }
                for s in proposal.suggestions
                if s.header
            ],
        }
        if opts["dry_run"]:
            report(attach.dry_run(data, proposal), as_json, {**extra, "dry_run": True})
            return
        tracker = attach.attach(data, Actor.system(CLI_ACTOR))
        if opts["status_column"]:
            attach.add_status_column(source, proposal, opts["status_column"])
    except (attach.AttachError, OSError) as error:
        _fail(str(error), as_json)
        return
    rows: list[RowOutcome] = []
    outcome = sync_tracker(tracker.id, rows)
    extra.update(dry_run=False, status=outcome.get("status"), error=outcome.get("error"))
    report(rows, as_json, extra)
    if outcome.get("status") == "failed":
        sys.exit(1)
