"""Sync → "Attach workbook" in the portal: upload, mapping with a select per header, the dry
run as a table and a download (nothing written), then the tracker created and synced; bad
input refused with the reason and the input kept; the server path is for Admins only."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import func, select

from jobs.queue import get_queue
from portal.extensions import db
from portal.models import SalesOrder, SyncRun, Tracker
from tests.attach_helpers import db_state, members, seed_customers
from tests.conftest import login

DAY = date.today() - timedelta(days=5)


def _book(path: Path) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "Team orders"
    ws.append(["Order No", "Order Date", "Customer", "Region"])
    ws.append(["T-1", DAY, "ACME", "West"])
    ws.append(["T-2", DAY, "NOPE", "East"])
    ws.append(["T-3", "soon", "ACME", "East"])
    wb.save(path)
    return path.read_bytes()


def _upload(client, data: bytes, name: str = "team.xlsx", **fields: str):  # type: ignore[no-untyped-def]
    form = {"name": "team", "kind": "orders", **fields}
    if data is not None:
        form["workbook"] = (io.BytesIO(data), name)
    return client.post("/attach/", data=form, content_type="multipart/form-data")


def test_a_specialist_attaches_a_workbook(clean_db, tmp_path) -> None:
    seed_customers({"ACME": "Acme Ltd"})
    data = _book(tmp_path / "team.xlsx")
    client = login(clean_db, "specialist")
    assert client.get("/attach/").status_code == 200
    response = _upload(client, data)
    assert response.status_code == 302 and response.location.endswith("/attach/mapping")
    stored = list(Path(clean_db.instance_path, "attached").glob("*-team.xlsx"))
    assert len(stored) == 1  # kept under the instance folder
    page = client.get("/attach/mapping").get_data(as_text=True)
    assert '<option value="order_ref" selected>Order ID (the team&#39;s)</option>' in page
    assert '<option value="order_date" selected>Order date</option>' in page
    before_db, before_zip = db_state(), members(stored[0])

    form = {
        "sheet": "Team orders",
        "header_row": "1",
        "header": ["Order No", "Order Date", "Customer", "Region"],
        "field": ["order_ref", "order_date", "customer", ""],
        "may_create": "on",
        "step": "dry_run",
    }
    dry = client.post("/attach/mapping", data=form).get_data(as_text=True)
    assert "Dry run: what the first sync would do" in dry
    assert "would be added as order T-1" in dry
    assert "not created: no customer &#39;NOPE&#39; (creating customers is off)" in dry
    assert "not created: Order Date: &#39;soon&#39; is not a date" in dry
    download = client.get("/attach/dry-run.csv")
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["Row", "Key", "Outcome", "Reason / what happens"]
    assert rows[2][:3] == ["3", "T-2", "refused"]
    assert client.get("/attach/dry-run.xlsx").data[:2] == b"PK"
    assert db_state() == before_db and members(stored[0]) == before_zip  # nothing written

    attached = client.post("/attach/mapping", data={**form, "step": "attach"})
    tracker = db.session.query(Tracker).filter_by(name="team").one()
    assert attached.status_code == 302  # the sync runs as the background job, not in here
    assert attached.headers["Location"].endswith(f"/my-trackers/tracker/{tracker.id}")
    assert db.session.query(SalesOrder).filter_by(external_ref="T-1").count() == 0
    waiting = client.get(attached.headers["Location"]).get_data(as_text=True)
    assert "Tracker team attached; its first sync runs in the background." in waiting
    assert 'id="sync-pending"' in waiting and "has not synced yet" in waiting
    (job,) = get_queue("sync").jobs  # the one sync job queued, run as a worker would
    job.perform()
    done = client.get(attached.headers["Location"]).get_data(as_text=True)
    assert 'id="sync-pending"' not in done
    run = db.session.query(SyncRun).filter_by(tracker_id=tracker.id).one()
    rows = client.get(f"/my-trackers/run/{run.id}").get_data(as_text=True)
    assert "not created: no customer &#39;NOPE&#39; (creating customers is off)" in rows
    assert (run.created, run.errors) == (1, 2)
    assert (tracker.location, tracker.key_header, tracker.header_row) == (
        str(stored[0]),
        "Order No",
        1,
    )
    assert [c.header for c in tracker.column_list()] == ["Order Date", "Customer"]  # Region: alone
    order = db.session.query(SalesOrder).filter_by(external_ref="T-1").one()
    assert order.order_date == DAY


def test_bad_input_is_refused_with_the_reason_and_kept(clean_db, tmp_path) -> None:
    client = login(clean_db, "specialist")
    old = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512
    response = _upload(client, old, name="old.xls", url="")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Excel 97-2003 workbook (.xls)" in page
    assert 'value="team"' in page  # the name typed is kept
    server = _upload(client, None, path=str(tmp_path / "x.xlsx"))
    assert server.status_code == 422
    assert "only an Admin may attach a file on the server" in server.get_data(as_text=True)
    no_draft = client.get("/attach/mapping")
    assert no_draft.status_code == 302
    assert db.session.execute(select(func.count(Tracker.id))).scalar_one() == 0


def test_an_admin_may_attach_a_file_on_the_server(clean_db, tmp_path) -> None:
    seed_customers({"ACME": "Acme Ltd"})
    path = tmp_path / "server.xlsx"
    _book(path)
    client = login(clean_db, "admin")
    response = _upload(client, None, path=str(path))
    assert response.status_code == 302
    page = client.get("/attach/mapping").get_data(as_text=True)
    assert "Order ID (the team&#39;s)" in page and "3 rows below the headers" in page


def test_an_auditor_may_not_attach(clean_db) -> None:
    client = login(clean_db, "auditor")
    assert client.get("/attach/").status_code in (302, 403)
    assert db.session.execute(select(func.count(Tracker.id))).scalar_one() == 0
