"""The Google trackers' signed edit webhook and its Apps Script (portal.sync.hooks)."""

from __future__ import annotations

import json
import re
import time

import pytest
from flask import Flask

from jobs import queue
from portal.sync import hooks
from tests.conftest import login
from tests.sync_helpers import ADMIN, COLUMNS

SOON = "orderbridge:sync:soon:{}"


@pytest.fixture
def tracker(clean_db: Flask):
    from portal.services import trackers

    sync = queue.get_queue("sync")
    for job_id in sync.scheduled_job_registry.get_job_ids():
        sync.scheduled_job_registry.remove(job_id, delete_job=True)
    made = trackers.trackers.create(
        {"name": "team-orders", "kind": "orders", "backend": "gsheets", "location": "sheet-key",
         "tab": "Orders", "columns": json.dumps(COLUMNS)},
        ADMIN,
    )  # fmt: skip
    queue.connection().delete(SOON.format(made.id))
    return made


def _call(app: Flask, name: str, body: bytes, signature: str | None):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[hooks.SIGNATURE_HEADER] = signature
    return app.test_client().post(f"/sheets/hook/{name}", data=body, headers=headers)


def _body(name: str, ts: float | None = None) -> bytes:
    return json.dumps({"tracker": name, "ts": ts or time.time(), "range": "C4"}).encode()


def _scheduled(tracker_id: int) -> list[tuple]:
    sync = queue.get_queue("sync")
    jobs = [sync.fetch_job(i) for i in sync.scheduled_job_registry.get_job_ids()]
    return [job.args for job in jobs if job is not None and job.func_name == "jobs.live.live_sync"]


def test_a_signed_call_schedules_one_debounced_sync(app: Flask, tracker) -> None:
    body = _body(tracker.name)
    signature = hooks.sign(hooks.hook_secret(tracker), body)
    first = _call(app, tracker.name, body, signature)
    assert first.status_code == 202, first.get_json()
    assert first.get_json() == {"status": "sync scheduled"}
    again = _call(app, tracker.name, body, signature)  # a second edit joins the same sync
    assert again.status_code == 202
    assert again.get_json() == {"status": "joined the sync already scheduled"}
    assert _scheduled(tracker.id) == [(tracker.id, "gsheets")]


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("unsigned", 401, "X-Orderbridge-Signature header is missing"),
        ("wrong secret", 403, "does not match"),
        ("other tracker", 403, "names tracker 'other'"),
        ("old", 403, "more than 300 s away"),
        ("not json", 400, "must be JSON"),
        ("unknown", 404, "no tracker named 'nobody'"),
    ],
)
def test_bad_calls_are_refused_and_schedule_nothing(
    app: Flask, tracker, case: str, status: int, message: str
) -> None:
    secret = hooks.hook_secret(tracker)
    name, body, signature = tracker.name, _body(tracker.name), None
    if case == "wrong secret":
        signature = hooks.sign("not-the-secret", body)
    elif case == "other tracker":
        body = _body("other")
    elif case == "old":
        body = _body(tracker.name, time.time() - 3600)
    elif case == "not json":
        body = b"edited"
    elif case == "unknown":
        name = "nobody"
    if case not in ("unsigned", "wrong secret"):
        signature = hooks.sign(secret, body)
    response = _call(app, name, body, signature)
    assert response.status_code == status
    assert message in response.get_json()["message"]
    assert _scheduled(tracker.id) == []


def test_the_apps_script_signs_for_this_tracker_and_only_admins_get_it(app: Flask, tracker) -> None:
    page = login(app, "admin").get(f"/trackerview/show/{tracker.id}")
    assert b"download the Apps Script" in page.data
    script = login(app, "admin").get(f"/sheets/hook/{tracker.name}/script")
    assert script.status_code == 200
    text = script.get_data(as_text=True)
    assert f'var ORDERBRIDGE_URL = "http://localhost/sheets/hook/{tracker.name}";' in text
    assert f'var ORDERBRIDGE_SECRET = "{hooks.hook_secret(tracker)}";' in text
    assert 'var ORDERBRIDGE_TAB = "Orders";' in text
    assert re.search(r'headers: \{"X-Orderbridge-Signature": "sha256=" \+ hex\}', text)
    for user in ("specialist", "supervisor", "auditor"):
        denied = login(app, user).get(f"/sheets/hook/{tracker.name}/script")
        assert denied.status_code in (302, 403)
        assert hooks.hook_secret(tracker) not in denied.get_data(as_text=True)
