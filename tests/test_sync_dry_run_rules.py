"""The dry run runs every business rule of a sheet edit, as the sync would, and writes nothing:
an edit the services refuse (a cancelled order, a date before the order date, a delivery in
the future, a dispute resolved without a root cause) shows as refused with the service's
reason, per row; records, audit trail and workbook stay as they were."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from jobs.sync import sync_tracker
from portal.extensions import db
from portal.models import AuditEvent, SalesOrder, Shipment, Tracker
from portal.services import changes
from portal.sync.attach import tracker_dry_run
from tests.factories import SETUP
from tests.sync_helpers import edit, make_orders, make_tracker, sheet
from tests.test_sync_bulk import _paste
from tests.test_sync_bulk_kinds import _disputes, _shipments


def _untouched(path: Path) -> tuple[bytes, int, list[Any]]:
    db.session.expire_all()
    events = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    orders = db.session.execute(
        select(SalesOrder.number, SalesOrder.notes, SalesOrder.version).order_by(SalesOrder.id)
    ).all()
    db.session.rollback()
    return path.read_bytes(), events, [tuple(o) for o in orders]


def _by_key(outcomes) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {o.key: (o.outcome, o.message) for o in outcomes if o.header is None}


def test_a_dry_run_refuses_what_the_services_would_refuse_and_writes_nothing(
    clean_db, tmp_path
) -> None:
    made = make_orders(3)
    path = tmp_path / "orders.xlsx"
    tracker = make_tracker(path)
    assert sync_tracker(tracker.id)["status"] == "succeeded"
    changes.cancel_order(made[0], SETUP, "customer_request")
    edit(path, made[0].number, {"Notes": "edited after it was cancelled"})
    edit(path, made[1].number, {"Requested": date(2000, 1, 1)})
    edit(path, made[2].number, {"Notes": "a good edit"})
    before = _untouched(path)

    rows = _by_key(tracker_dry_run(db.session.get(Tracker, tracker.id)))
    assert rows[made[0].number][0] == "refused"
    assert "use an amendment" in rows[made[0].number][1]
    assert rows[made[1].number] == (
        "refused",
        "not applied: Invalid input — requested_date: is before the order date",
    )
    assert rows[made[2].number][0] == "updated"
    assert _untouched(path) == before  # no record, audit event or cell written

    outcome = sync_tracker(tracker.id)  # the sync refuses the same rows, with the same reasons
    assert (outcome["applied"], outcome["errors"]) == (1, 2)
    status = {k: row["Sync status"] for k, row in sheet(path).items()}
    assert rows[made[1].number][1] in status[made[1].number]


def test_the_cli_dry_run_shows_a_shipment_delivered_in_the_future(clean_db, tmp_path) -> None:
    path = tmp_path / "shipments.xlsx"
    tracker_id, paste, refused = _shipments(path)
    _paste(path, paste)
    before = path.read_bytes()
    name = db.session.get(Tracker, tracker_id).name
    result = clean_db.test_cli_runner().invoke(args=["sheets", "sync", name, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["key"]: r for r in json.loads(result.output)["rows"] if r.get("header") is None}
    for key, reason in refused.items():
        assert rows[key]["outcome"] == "refused" and reason in rows[key]["message"]
    delivered = next(k for k, v in paste.items() if "Delivered" in v and k not in refused)
    assert rows[delivered]["outcome"] == "updated"
    assert path.read_bytes() == before
    db.session.expire_all()
    assert (
        db.session.execute(select(Shipment.status).where(Shipment.number == delivered)).scalar_one()
        == "shipped"
    )  # the rehearsed delivery was rolled back


def test_a_dispute_move_the_states_refuse_is_refused_in_the_dry_run(clean_db, tmp_path) -> None:
    path = tmp_path / "disputes.xlsx"
    tracker_id, paste, refused = _disputes(path)
    _paste(path, paste)
    rows = _by_key(tracker_dry_run(db.session.get(Tracker, tracker_id)))
    for key, reason in refused.items():
        assert rows[key][0] == "refused" and reason in rows[key][1], rows[key]
    assert sum(1 for outcome, _ in rows.values() if outcome == "updated") == len(paste) - 2
