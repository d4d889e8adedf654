"""Live sync: a portal change reaches an Excel and a Google tracker within seconds, with a real
RQ worker (and its RQ scheduler) running, and a burst of changes gives one sync per tracker.

The Google tracker lives in the emulator (real gspread over HTTP, from the worker process).
Everything waits by polling the file / the sheet / Redis against a deadline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import requests
from flask import current_app
from rq import Worker

from jobs import queue
from jobs.live import FileWatcher, covering_trackers, live_sync, sync_soon
from jobs.sync import sync_tracker
from portal.extensions import db
from portal.models import SyncRun, utcnow
from portal.services import orders
from sheets.emulator import Config
from sheets.emulator.testing import gspread_client, start_emulator, write_service_account_file
from tests.conftest import REPO
from tests.factories import SETUP
from tests.sync_helpers import (
    edit,
    make_google_tracker,
    make_orders,
    make_tracker,
    order,
    sheet,
)

LIMIT = 10.0  # seconds from a portal change to the cell, the promise


def _until(done: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``done()`` until it returns something truthy, failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = done()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # the poll interval of a bounded wait, not a wait for an outcome


@pytest.fixture
def emulator(tmp_path) -> Iterator[tuple[str, str]]:
    url, _, stop = start_emulator(config=Config(quota_reads=100_000, quota_writes=100_000))
    yield url, write_service_account_file(str(tmp_path / "sa.json"), url)
    stop()


@pytest.fixture
def live(clean_db, test_env, emulator, monkeypatch) -> Iterator[dict[str, str]]:
    """Live sync on in this process; the worker's environment (Google backend on the
    emulator); an empty sync queue."""
    url, account = emulator
    settings = {
        "SHEETS_LIVE_SYNC": "1",
        "GOOGLE_SERVICE_ACCOUNT_FILE": account,
        "SHEETS_API_URL": url,
        # a burst on a loaded machine may take seconds, with pauses: neither the quiet time
        # nor the cap may split it here (a change still reaches the cells well within 10 s)
        "SHEETS_LIVE_QUIET_SECONDS": "2",
        "SHEETS_LIVE_MAX_WAIT_SECONDS": "30",
    }
    for name, value in settings.items():
        monkeypatch.setitem(current_app.config, name, value)
    _forget_sync_jobs()
    yield {**os.environ, **test_env, **settings}
    _forget_sync_jobs()


def _forget_sync_jobs() -> None:
    """No sync jobs queued or scheduled, no debounce keys (before and after each test)."""
    sync = queue.get_queue("sync")
    sync.empty()
    for job_id in sync.scheduled_job_registry.get_job_ids():
        sync.scheduled_job_registry.remove(job_id, delete_job=True)
    conn = queue.connection()
    for key in conn.keys("orderbridge:sync:soon:*"):
        conn.delete(key)


@pytest.fixture
def worker(live) -> Iterator[subprocess.Popen]:
    """``orderbridge worker --queue sync`` with RQ's scheduler, ready for jobs."""
    before = {w.name for w in Worker.all(connection=queue.connection())}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from portal.cli import main; main()", "worker", "--queue", "sync"],
        cwd=REPO,
        env=live,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _until(
        lambda: {w.name for w in Worker.all(connection=queue.connection())} - before,
        "the worker to start",
        timeout=60,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _google_notes(url: str, key: str) -> dict[str, Any]:
    tabs = requests.get(f"{url}/_admin/spreadsheets/{key}", timeout=10).json()["sheets"]
    values = next(t for t in tabs if t["title"] == "Orders")["values"]
    notes = values[0].index("Notes")
    return {row[0]: row[notes] if len(row) > notes else None for row in values[1:] if row}


def _runs_since(tracker_id: int, since: datetime) -> list[SyncRun]:
    db.session.expire_all()
    runs = (
        db.session.query(SyncRun)
        .filter(SyncRun.tracker_id == tracker_id, SyncRun.started_at >= since)
        .all()
    )
    db.session.rollback()
    return runs


def _quiet() -> bool:
    """No live sync pending, queued, scheduled or running."""
    sync = queue.get_queue("sync")
    conn = queue.connection()
    return not (
        conn.keys("orderbridge:sync:soon:*")
        or conn.keys("orderbridge:sync:lock:*")
        or sync.count
        or sync.scheduled_job_registry.count
        or sync.started_job_registry.count
    )


def test_a_portal_change_reaches_excel_and_google_trackers_within_seconds(
    live, worker, emulator, tmp_path
) -> None:
    url = emulator[0]
    numbers = [o.number for o in make_orders(10)]
    path = tmp_path / "orders.xlsx"
    excel = make_tracker(path)
    google, key = make_google_tracker(gspread_client(url))
    assert sync_tracker(excel.id)["status"] == "succeeded"  # the base of each
    assert sync_tracker(google.id)["status"] == "succeeded"

    changed = time.monotonic()
    orders.orders.update(order(numbers[0]), {"notes": "call before delivery"}, SETUP)
    _until(lambda: sheet(path)[numbers[0]]["Notes"] == "call before delivery", "the Excel cell")
    excel_seconds = time.monotonic() - changed
    _until(lambda: _google_notes(url, key)[numbers[0]] == "call before delivery", "the Google cell")
    google_seconds = time.monotonic() - changed
    print(f"portal change to cell: Excel {excel_seconds:.1f} s, Google {google_seconds:.1f} s")
    assert excel_seconds < LIMIT and google_seconds < LIMIT
    _until(_quiet, "the live syncs to finish")

    since, burst = utcnow(), time.monotonic()
    for n in range(100):  # a burst: 100 changes, each committed on its own
        number = numbers[n % len(numbers)]
        orders.orders.update(order(number), {"notes": f"burst {n}"}, SETUP)
    print(f"100 changes in {time.monotonic() - burst:.1f} s")
    last = {numbers[n % len(numbers)]: f"burst {n}" for n in range(100)}
    _until(lambda: all(sheet(path)[k]["Notes"] == v for k, v in last.items()), "the burst in Excel")
    _until(
        lambda: all(_google_notes(url, key)[k] == v for k, v in last.items()), "the burst in Google"
    )
    _until(_quiet, "the live syncs to finish")
    assert len(_runs_since(excel.id, since)) == 1
    assert len(_runs_since(google.id, since)) == 1


def test_the_file_watcher_asks_for_a_sync_when_a_person_saves_the_workbook(live, tmp_path) -> None:
    numbers = [o.number for o in make_orders(2)]
    path = tmp_path / "orders.xlsx"
    excel = make_tracker(path)
    sync_tracker(excel.id)  # the base
    watcher = FileWatcher()
    watcher.refresh()
    assert watcher.poll() == []
    edit(path, numbers[0], {"Notes": "typed in Excel"})
    assert watcher.poll() == [excel.id]  # the save asks for a sync
    assert queue.connection().exists(f"orderbridge:sync:soon:{excel.id}")
    assert watcher.poll() == []  # once per save
    orders.orders.update(order(numbers[1]), {"notes": "changed in the portal"}, SETUP)
    outcome = sync_tracker(excel.id)
    assert outcome["applied"] == 1 and outcome["written"] >= 1
    assert watcher.poll() == []  # the sync's own write is not a person's save
    assert order(numbers[0]).notes == "typed in Excel"


def test_a_change_syncs_the_trackers_holding_its_kind_but_not_its_own_sheets(live, tmp_path):
    make_orders(1)
    mine = make_tracker(tmp_path / "mine.xlsx", name="orders-mine")
    other = make_tracker(tmp_path / "other.xlsx", name="orders-other")
    assert {t for t, _ in covering_trackers([("sales_order", "system:test-setup")])} == {
        mine.id,
        other.id,
    }
    # the sync of orders-mine wrote it: only the other tracker of orders syncs
    assert covering_trackers([("sales_order", "sheet:orders-mine")]) == [(other.id, "xlsx")]
    assert covering_trackers([("dispute", "system:test-setup")]) == []  # not an orders kind


def test_a_live_sync_waits_for_quiet_and_for_a_google_trackers_minimum_interval(live) -> None:
    conn = queue.connection()
    tracker_id = 424242
    for kind in ("soon", "changed", "live"):
        conn.delete(f"orderbridge:sync:{kind}:{tracker_id}")
    assert sync_soon(tracker_id, "gsheets") is True
    assert sync_soon(tracker_id, "gsheets") is False  # joins the one scheduled
    assert live_sync(tracker_id, "gsheets")["status"] == "postponed"  # changes not quiet yet
    conn.set(f"orderbridge:sync:changed:{tracker_id}", time.time() - 60)  # quiet since
    assert live_sync(tracker_id, "gsheets")["status"] == "requested"
    assert not conn.exists(f"orderbridge:sync:soon:{tracker_id}")
    sync_soon(tracker_id, "gsheets")
    conn.set(f"orderbridge:sync:changed:{tracker_id}", time.time() - 60)
    waited = live_sync(tracker_id, "gsheets")  # the last live sync was just now: quota budget
    assert waited["status"] == "postponed" and 4 < waited["seconds"] <= 5
    assert live_sync(tracker_id, "xlsx")["status"] == "requested"  # no minimum for files
