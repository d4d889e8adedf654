"""The demo's two trackers of open orders, both synced on an interval and live (``jobs.live``):

- ``demo-open-orders``: an Excel workbook in the instance folder (``trackers/open-orders.xlsx``);
- ``demo-google-orders``: a Google spreadsheet on the bundled Sheets emulator, which
  ``orderbridge demo`` starts as one of its processes (``portal.launcher``).

The emulator keeps its spreadsheets in memory, so each demo start gives the Google tracker a
new spreadsheet written from the current orders.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from portal.extensions import db
from portal.models import Tracker
from portal.services import trackers
from portal.services.base import Actor
from portal.sync.adapters import new_workbook_rows, tab_layout
from sheets.backends.gsheets import build_client
from sheets.backends.gsheets_init import init_google_tracker
from sheets.backends.xlsx_init import write_tracker

EXCEL = "demo-open-orders"
GOOGLE = "demo-google-orders"
TAB = "Open orders"
INTERVAL = 60  # seconds: the fallback when a live sync is missed
ACTOR = Actor.system("system:seed-demo")


def _tracker(name: str) -> Tracker | None:
    return db.session.execute(select(Tracker).where(Tracker.name == name)).scalar_one_or_none()


def _settings(name: str, backend: str, location: str) -> dict[str, object]:
    return {
        "name": name,
        "kind": "orders",
        "backend": backend,
        "location": location,
        "tab": TAB,
        "filter": "open",
        "interval_seconds": INTERVAL,
    }


def ensure_excel_tracker(instance: Path) -> str:
    """The Excel tracker and its workbook (written if missing); what was done."""
    path = instance / "trackers" / "open-orders.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    tracker = _tracker(EXCEL) or trackers.trackers.create(
        _settings(EXCEL, "xlsx", str(path)), ACTOR
    )
    if Path(tracker.location).exists():
        return f"{EXCEL} kept"
    spec = tracker.spec()
    rows = new_workbook_rows(spec, tracker.filter)
    write_tracker(Path(tracker.location), TAB, spec.headers, rows, **tab_layout(spec))
    return f"{EXCEL} ({len(rows)} rows)"


def ensure_google_tracker(credentials_file: str, api_url: str) -> str:
    """A new spreadsheet on the emulator for the Google tracker (created if missing); what
    was done."""
    gc = build_client(credentials_file, api_url)
    key = gc.create("Orderbridge demo: open orders").id
    tracker = _tracker(GOOGLE)
    if tracker is None:
        tracker = trackers.trackers.create(_settings(GOOGLE, "gsheets", key), ACTOR)
    else:  # the new sheet holds every open order: the old base agrees or drops out
        trackers.trackers.update(tracker, {"location": key}, ACTOR)
    spec = tracker.spec()
    rows = new_workbook_rows(spec, tracker.filter)
    types = {c.header: c.type for c in spec.columns}
    init_google_tracker(gc, key, TAB, spec.headers, rows, **tab_layout(spec), types=types)
    return f"{GOOGLE} ({len(rows)} rows)"
