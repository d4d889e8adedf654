"""Sync → My trackers: who sees which tracker, Sync now, download and upload of the workbook,
the run history with every row's outcome, and the Add Tracker form."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from jobs.queue import get_queue
from jobs.sync import sync_tracker
from portal.extensions import appbuilder, db
from portal.models import Tracker
from portal.services import orders, sync_runs, tracker_work, trackers
from tests.conftest import actor, login
from tests.factories import SETUP
from tests.sync_helpers import (
    ADMIN,
    append_row,
    delete_row,
    edit,
    last_run,
    make_orders,
    make_tracker,
    order,
    sheet,
)


def _user_id(name: str) -> int:
    return appbuilder.sm.find_user(username=name).id


@pytest.fixture
def owned(clean_db, tmp_path):
    """Three trackers: the specialist's own, one shared with them, one of someone else."""
    numbers = [o.number for o in make_orders(3)]
    made = {}
    for name in ("mine", "shared", "theirs"):
        tracker = make_tracker(tmp_path / f"{name}.xlsx", name=name)
        owner = "specialist" if name == "mine" else "supervisor"
        trackers.trackers.update(tracker, {"owner_id": _user_id(owner)}, ADMIN)
        sync_tracker(tracker.id)
        made[name] = tracker
    tracker_work.share(made["shared"], _user_id("specialist"), actor("supervisor"))
    yield clean_db, made, numbers
    get_queue("sync").empty()  # no worker here: drop the syncs the pages queued


def test_specialist_sees_own_and_shared_trackers_and_gets_403_on_others(owned) -> None:
    app, made, _ = owned
    client = login(app, "specialist")
    page = client.get("/my-trackers/").get_data(as_text=True)
    assert "mine" in page and "shared" in page and "theirs" not in page
    theirs = made["theirs"].id
    for path in (f"/my-trackers/tracker/{theirs}", f"/my-trackers/download/{theirs}"):
        assert client.get(path).status_code == 403, path
    assert client.post(f"/my-trackers/sync/{theirs}").status_code == 403
    assert client.get(f"/my-trackers/tracker/{made['shared'].id}").status_code == 200
    assert client.get("/my-trackers/tracker/999999").status_code == 404
    admin = login(app, "admin").get("/my-trackers/").get_data(as_text=True)
    assert all(name in admin for name in ("mine", "shared", "theirs"))
    auditor = login(app, "auditor")
    assert auditor.get("/my-trackers/").status_code in (302, 403)
    assert "My trackers" not in auditor.get("/").get_data(as_text=True)
    assert "My trackers" in client.get("/").get_data(as_text=True)


def test_upload_of_an_edited_copy_syncs_with_the_conflict_rules(owned, tmp_path) -> None:
    app, made, numbers = owned
    tracker = made["mine"]
    client = login(app, "specialist")
    download = client.get(f"/my-trackers/download/{tracker.id}")
    assert download.status_code == 200 and download.data == Path(tracker.location).read_bytes()
    copy = tmp_path / "copy.xlsx"
    copy.write_bytes(download.data)
    edit(copy, numbers[0], {"Notes": "sheet text"})  # the specialist's edit in their copy
    edit(copy, numbers[1], {"Customer PO": "PO-FROM-COPY"})
    orders.orders.update(order(numbers[0]), {"notes": "portal text"}, SETUP)  # meanwhile
    done = client.post(
        f"/my-trackers/upload/{tracker.id}",
        data={"file": (io.BytesIO(copy.read_bytes()), "copy.xlsx")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "your copy is in place" in done.get_data(as_text=True)
    sync_tracker(tracker.id)  # the queued sync, run here
    assert order(numbers[1]).customer_po == "PO-FROM-COPY"
    assert order(numbers[0]).notes == "portal text"
    run = last_run(tracker.id)
    conflict = sync_runs.run_rows(run.id, "conflict")[0]
    assert (conflict.key, conflict.sheet_value, conflict.portal_value) == (
        numbers[0],
        "sheet text",
        "portal text",
    )
    page = client.get(f"/my-trackers/run/{run.id}?outcome=conflict").get_data(as_text=True)
    assert "sheet text" in page and "portal text" in page and "PO-FROM-COPY" not in page
    assert "PO-FROM-COPY" not in client.get(f"/my-trackers/run/{run.id}?outcome=refused").text


def test_upload_after_a_sync_wrote_to_the_workbook_carries_only_the_users_edits(
    owned, tmp_path
) -> None:
    app, made, numbers = owned
    tracker = made["mine"]
    client = login(app, "specialist")

    def upload(content: bytes):
        return client.post(
            f"/my-trackers/upload/{tracker.id}",
            data={"file": (io.BytesIO(content), "copy.xlsx")},
            content_type="multipart/form-data",
            follow_redirects=True,
        ).text

    copy = tmp_path / "copy.xlsx"
    copy.write_bytes(client.get(f"/my-trackers/download/{tracker.id}").data)
    assert "not an .xlsx package" in upload(b"a,b\n1,2\n")
    orders.orders.update(order(numbers[2]), {"notes": "portal change"}, SETUP)
    sync_tracker(tracker.id)  # writes the change into the server's file after the download
    edit(copy, numbers[0], {"Customer PO": "PO-MERGED"})
    append_row(copy, {"Customer": "C1", "Customer PO": "PO-NEW-IN-COPY"})
    delete_row(copy, numbers[1])
    said = upload(copy.read_bytes())
    assert "1 rows edited, 1 added" in said and f"rows you deleted were kept: {numbers[1]}" in said
    now = sheet(tracker.location)
    assert now[numbers[2]]["Notes"] == "portal change"  # the stale copy did not undo it
    assert now[numbers[0]]["Customer PO"] == "PO-MERGED" and numbers[1] in now
    assert sync_tracker(tracker.id)["created"] == 1
    assert order(numbers[0]).customer_po == "PO-MERGED"
    assert order(numbers[2]).notes == "portal change"

    kept = (
        Path(app.instance_path)
        / "tracker-downloads"
        / f"{tracker.id}-{_user_id('specialist')}.xlsx"
    )
    copy.write_bytes(client.get(f"/my-trackers/download/{tracker.id}").data)
    kept.unlink()  # the kept copy is gone: the edits cannot be told apart any more
    orders.orders.update(order(numbers[2]), {"notes": "again"}, SETUP)
    sync_tracker(tracker.id)
    before = Path(tracker.location).read_bytes()
    assert "download it again" in upload(copy.read_bytes())
    assert Path(tracker.location).read_bytes() == before


def test_add_tracker_form_submits_with_its_defaults(clean_db, tmp_path) -> None:
    client = login(clean_db, "admin")
    form = client.get("/trackerview/add").get_data(as_text=True)
    assert 'name="may_create"' in form and "checked" not in form.split('name="may_create"')[1][:40]
    answer = client.post(
        "/trackerview/add",
        data={
            "name": "stock-main",
            "kind": "stock_levels",
            "backend": "xlsx",
            "location": str(tmp_path / "stock.xlsx"),
            "tab": "Stock",
            "key_header": "",
            "key_field": "",
            "columns": "",
            "status_header": "Sync status",
            "conflict_policy": "flag",
            "deleted_row_policy": "ignore",
            "interval_seconds": "0",
            "filter": "",
            "enabled": "y",
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)[-2000:]
    made = db.session.query(Tracker).filter_by(name="stock-main").one()
    assert made.may_create is False and made.key_header == "SKU @ warehouse"
    assert made.enabled is True and made.deleted_row_policy == "ignore"


def test_upload_has_its_own_body_limit(owned, monkeypatch) -> None:
    app, made, _ = owned
    client = login(app, "specialist")
    url = f"/my-trackers/upload/{made['mine'].id}"
    big = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)  # over the general limit: still let in
    answer = client.post(
        url,
        data={"file": (io.BytesIO(big), "copy.xlsx")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert answer.status_code == 200 and "download the workbook first" in answer.text
    monkeypatch.setitem(app.config, "TRACKER_UPLOAD_MAX_BYTES", 1000)
    refused = client.post(
        url,
        data={"file": (io.BytesIO(b"x" * 2000), "copy.xlsx")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 413 and "TRACKER_UPLOAD_MAX_BYTES" in refused.text


def test_owner_shares_a_tracker_and_only_the_owner_may(owned) -> None:
    app, made, _ = owned
    client = login(app, "specialist")
    mine, shared = made["mine"].id, made["shared"].id
    assert 'id="share-tracker"' in client.get(f"/my-trackers/tracker/{mine}").text
    assert 'id="share-tracker"' not in client.get(f"/my-trackers/tracker/{shared}").text
    unknown = client.post(
        f"/my-trackers/share/{mine}", data={"username": "nobody"}, follow_redirects=True
    )
    assert "no user named &#39;nobody&#39;" in unknown.text
    done = client.post(
        f"/my-trackers/share/{mine}", data={"username": "specialist2"}, follow_redirects=True
    )
    assert "mine is shared." in done.text
    assert "mine" in login(app, "specialist2").get("/my-trackers/").text
    refused = client.post(
        f"/my-trackers/share/{shared}", data={"username": "specialist2"}, follow_redirects=True
    )
    assert "only the tracker&#39;s owner or an Admin shares it" in refused.text
    assert "shared" not in login(app, "specialist2").get("/my-trackers/").text
