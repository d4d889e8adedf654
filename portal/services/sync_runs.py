"""Sync run history: every row's outcome in each run (``sheets.outcomes``).

The sync job calls :func:`record_rows` inside its final transaction, so a run's counts and
its rows are stored together. Unchanged rows are only counted (``SyncRun.unchanged``); every
other row gets a :class:`SyncRunRow`, values as display text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select

from portal.extensions import db
from portal.models import SyncRun, SyncRunRow
from portal.services.base import unit_of_work
from sheets.outcomes import UNCHANGED, RowOutcome
from sheets.values import display

MESSAGE_LIMIT = 2000


def _shown(value: Any, outcome: RowOutcome) -> str | None:
    """A conflict's value as text (text as typed, blank as None); None for other outcomes."""
    if outcome.header is None or value is None:
        return None
    return value if isinstance(value, str) else display(value)


def record_rows(run_id: int, outcomes: Iterable[RowOutcome]) -> int:
    """Store the run's row outcomes (all but unchanged, which are counted); rows stored."""
    unchanged = 0
    rows: list[dict[str, Any]] = []
    for o in outcomes:
        if o.outcome == UNCHANGED:
            unchanged += 1
            continue
        rows.append(
            {
                "run_id": run_id,
                "row": o.row,
                "key": o.key,
                "outcome": o.outcome,
                "message": o.message[:MESSAGE_LIMIT],
                "header": o.header,
                "sheet_value": _shown(o.sheet_value, o),
                "portal_value": _shown(o.portal_value, o),
            }
        )
    with unit_of_work() as sess:
        run = sess.get(SyncRun, run_id)
        if run is not None:
            run.unchanged = unchanged
        for i in range(0, len(rows), 1000):
            sess.execute(insert(SyncRunRow), rows[i : i + 1000])
    return len(rows)


def run_rows(run_id: int, outcome: str | None = None) -> list[SyncRunRow]:
    """The stored rows of a run in sheet order, optionally only one outcome."""
    query = select(SyncRunRow).where(SyncRunRow.run_id == run_id)
    if outcome:
        query = query.where(SyncRunRow.outcome == outcome)
    return list(db.session.execute(query.order_by(SyncRunRow.row, SyncRunRow.id)).scalars())


__all__ = ["record_rows", "run_rows"]
