"""Helpers of the sync tests: orders, a tracker on a real .xlsx file, editing it like a user."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, SalesOrder, SyncRun, Tracker
from portal.services import orders, trackers
from portal.services.base import Actor
from portal.sync.adapters import new_workbook_rows, workbook_choices
from sheets.backends.xlsx import XlsxBackend
from sheets.backends.xlsx_init import write_new_tracker
from sheets.engine import normalize_key
from tests.factories import SETUP, make_catalog

ADMIN = Actor.system("system:test-admin")
TAB = "Orders"
# A small orders tracker: portal-owned status and total; customer set on new rows only.
COLUMNS = [
    {"header": "Customer", "field": "customer", "type": "text", "owner": "both"},
    {"header": "Customer PO", "field": "customer_po", "type": "text", "owner": "both"},
    {"header": "Requested", "field": "requested_date", "type": "date", "owner": "both"},
    {"header": "Incoterm", "field": "incoterm", "type": "text", "owner": "both"},
    {"header": "Status", "field": "status", "type": "text", "owner": "portal"},
    {"header": "Total", "field": "total", "type": "decimal", "owner": "portal"},
    {"header": "Notes", "field": "notes", "type": "text", "owner": "both"},
]


def make_orders(count: int = 3) -> list[SalesOrder]:
    """A catalog and ``count`` draft orders with one line each."""
    cat = make_catalog()
    made = []
    for n in range(count):
        made.append(
            orders.orders.create_with_lines(
                {
                    "customer_id": cat.customer.id,
                    "customer_po": f"PO-{n + 1}",
                    "requested_date": date.today() + timedelta(days=30),
                    "notes": f"note {n + 1}",
                },
                [{"product_id": cat.products[0].id, "quantity": n + 1}],
                SETUP,
            )
        )
    return made


def make_tracker(
    path: Path, *, name: str = "orders-main", policy: str = "flag", may_create: bool = True
) -> Tracker:
    """An orders tracker on ``path`` and its workbook written from the current orders."""
    tracker = trackers.trackers.create(
        {
            "name": name,
            "kind": "orders",
            "location": str(path),
            "tab": TAB,
            "columns": json.dumps(COLUMNS),
            "conflict_policy": policy,
            "may_create": may_create,
        },
        ADMIN,
    )
    init_workbook(tracker)
    return tracker


def make_google_tracker(gc: Any, name: str = "orders-google") -> tuple[Tracker, str]:
    """An orders tracker on a new spreadsheet of the emulator (gspread client ``gc``), its tab
    written from the current orders; the tracker and the spreadsheet's key."""
    from sheets.backends.gsheets_init import init_google_tracker

    key = gc.create("Orders tracker").id
    tracker = trackers.trackers.create(
        {"name": name, "kind": "orders", "backend": "gsheets", "location": key, "tab": TAB,
         "columns": json.dumps(COLUMNS), "conflict_policy": "flag"},
        ADMIN,
    )  # fmt: skip
    spec = tracker.spec()
    init_google_tracker(
        gc,
        key,
        TAB,
        spec.headers,
        new_workbook_rows(spec, tracker.filter),
        key_header=spec.key_header,
        status_header=spec.status_header,
        status_choices=workbook_choices(spec),
    )
    return tracker, key


def init_workbook(tracker: Tracker) -> None:
    spec = tracker.spec()
    write_new_tracker(
        tracker.location,
        tracker.tab,
        spec.headers,
        new_workbook_rows(spec, tracker.filter),
        key_header=spec.key_header,
        status_header=spec.status_header,
        status_choices=workbook_choices(spec),
    )


def sheet(path: Path) -> dict[str, dict[str, Any]]:
    """key -> header -> raw value as calamine reads the tab (blank keys as '#<row>')."""
    rows = XlsxBackend(path, TAB).read().rows
    header = [str(h) for h in rows[0]]
    out = {}
    for i, row in enumerate(rows[1:], start=2):
        if not any(v not in (None, "") for v in row):
            continue
        key = normalize_key(row[0]) or f"#{i}"
        out[key] = dict(zip(header, row, strict=False))
    return out


def edit(path: Path, key: str | None, values: dict[str, Any], *, row: int | None = None) -> None:
    """Change cells like a user in Excel: by key (or a row number), by header."""
    wb = load_workbook(path)
    ws = wb[TAB]
    headers = {str(c.value): c.column for c in ws[1] if c.value is not None}
    if row is None:
        row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == key)
    for header, value in values.items():
        ws.cell(row, headers[header]).value = value
    wb.save(path)


def append_row(path: Path, values: dict[str, Any]) -> int:
    """Type a new row below the last one; its row number."""
    wb = load_workbook(path)
    ws = wb[TAB]
    headers = {str(c.value): c.column for c in ws[1] if c.value is not None}
    row = ws.max_row + 1
    for header, value in values.items():
        ws.cell(row, headers[header]).value = value
    wb.save(path)
    return row


def delete_row(path: Path, key: str) -> None:
    wb = load_workbook(path)
    ws = wb[TAB]
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == key)
    ws.delete_rows(row)
    wb.save(path)


def order(number: str) -> SalesOrder:
    db.session.expire_all()
    return db.session.query(SalesOrder).filter_by(number=number).one()


def last_run(tracker_id: int) -> SyncRun:
    db.session.expire_all()
    return db.session.query(SyncRun).filter_by(tracker_id=tracker_id).order_by(SyncRun.id).all()[-1]


def money(text: str) -> Decimal:
    return Decimal(text)


def sheet_events() -> list[tuple[str, str, str]]:
    """(entity, action, changes) of every audit event a tracker's sheet actor wrote, sorted."""
    events = db.session.execute(
        select(AuditEvent.entity, AuditEvent.action, AuditEvent.changes).where(
            AuditEvent.actor.like("sheet:%")
        )
    ).all()
    return sorted(tuple(e) for e in events)
