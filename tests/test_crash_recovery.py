"""Crashed work recovers: a worker killed with ``kill -9`` mid-sync or mid-export, and the
scheduler's sweep (:func:`jobs.recovery.sweep`) runs the job again on a fresh worker, within
two minutes of the kill, without anyone asking again."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from jobs import queue
from jobs.maintenance import verify_audit_chain
from jobs.recovery import sweep
from jobs.sync import enqueue_sync, is_running, rerun_key, sync_tracker
from portal.extensions import db
from portal.models import AuditEvent, JobRun, SalesOrder, SyncRun, SyncRunStatus
from portal.services import orders
from tests import sync_slow_worker as slow
from tests.conftest import api_headers
from tests.factories import SETUP
from tests.sync_helpers import append_row, edit, make_orders, make_tracker, order, sheet

LOCK_SECONDS = "5"  # the dead worker's tracker lock outlives it by at most this
HEARTBEAT_SECONDS = "1"  # its job counts as abandoned after 3 missed heartbeats
RECOVERY_LIMIT = 120.0  # seconds from the kill to the finished retry


@pytest.fixture
def env(test_env, monkeypatch) -> dict[str, str]:
    """Short lock and heartbeat for the workers and for the sweep in this process; no jobs
    left by other tests on the queues these workers take."""
    monkeypatch.setenv("ORDERBRIDGE_SYNC_LOCK_SECONDS", LOCK_SECONDS)
    monkeypatch.setenv("JOB_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS)
    for name in ("sync", "reports"):
        queue.get_queue(name).empty()
    return dict(os.environ)


def _sweep_until(requeued: Callable[[], bool], deadline: float) -> None:
    """Run the scheduler's sweep (as its loop would, every ~0.2 s) until ``requeued()``."""
    while not requeued():
        assert time.monotonic() < deadline, "the killed job was never run again"
        sweep()
        time.sleep(0.2)  # the poll interval of this bounded loop, not a wait for an outcome


def _job(job_id: str) -> Job:
    return Job.fetch(job_id, connection=queue.connection())


def _finish_on_fresh_worker(queue_name: str, env: dict[str, str], deadline: float) -> None:
    fresh = slow.start("none", queue_name, env)
    output, _ = fresh.communicate(timeout=max(1.0, deadline - time.monotonic()))
    assert fresh.returncode == 0, output


def _count(model) -> int:
    db.session.expire_all()
    found = db.session.query(model).count()
    db.session.rollback()
    return found


def test_a_sync_killed_mid_run_is_retried_and_completes(clean_db, env, tmp_path) -> None:
    numbers = [o.number for o in make_orders(2)]
    path = tmp_path / "orders.xlsx"
    tracker = make_tracker(path)
    sync_tracker(tracker.id)
    edit(path, numbers[0], {"Customer PO": "FROM-SHEET"})
    append_row(path, {"Customer": "C1", "Customer PO": "NEW-ROW"})
    orders.orders.update(order(numbers[1]), {"notes": "from the portal"}, SETUP)
    before = path.read_bytes()
    job = enqueue_sync(tracker.id)
    assert job is not None
    worker = slow.start("apply", "sync", env)  # records applied, held before the sheet write
    slow.wait_reached(worker)
    slow.kill(worker)
    killed = time.monotonic()
    deadline = killed + RECOVERY_LIMIT
    assert path.read_bytes() == before and _job(job.id).get_status() == "started"

    def requeued() -> bool:
        return _job(job.id).get_status() == "queued"

    _sweep_until(requeued, deadline)
    assert not is_running(tracker.id)  # it waited for the dead worker's lock to expire
    assert _job(job.id).meta["recovered"] == 1
    _finish_on_fresh_worker("sync", env, deadline)
    recovered_in = time.monotonic() - killed
    print(f"sync recovered {recovered_in:.1f} s after the kill")

    assert _job(job.id).get_status() == "finished" and recovered_in < RECOVERY_LIMIT
    after = sheet(path)
    assert after[numbers[0]]["Customer PO"] == "FROM-SHEET"
    assert after[numbers[1]]["Notes"] == "from the portal"
    new_keys = [k for k in after if k not in numbers]
    assert len(new_keys) == 1 and after[new_keys[0]]["Customer PO"] == "NEW-ROW"
    assert _count(SalesOrder) == 3  # the new row created one record, once
    db.session.expire_all()
    runs = db.session.query(SyncRun).filter_by(tracker_id=tracker.id).order_by(SyncRun.id).all()
    assert [r.status for r in runs[-2:]] == [
        SyncRunStatus.INTERRUPTED.value,
        SyncRunStatus.SUCCEEDED.value,
    ]
    assert runs[-1].applied == 0 and runs[-1].created == 0  # both were done before the kill
    db.session.rollback()
    assert sync_tracker(tracker.id)["written"] == 0  # sheet and portal agree


def test_an_export_killed_mid_file_is_retried_and_its_file_arrives(clean_db, env, tmp_path) -> None:
    app = clean_db
    make_orders(3)
    client = app.test_client()
    headers = api_headers(app, "auditor")
    queued = client.get("/api/v1/audit_event/export?format=csv&async=1", headers=headers)
    assert queued.status_code == 202, queued.json
    status_url, job_id = queued.json["status_url"], queued.json["job_id"]
    worker = slow.start("export", "reports", env)  # held with the CSV header written
    slow.wait_reached(worker)
    partial = Path(app.config["INSTANCE_DIR"]) / "exports" / f"{job_id}.csv.part"
    assert partial.exists()
    assert client.get(status_url, headers=headers).json["status"] == "started"
    slow.kill(worker)
    killed = time.monotonic()
    deadline = killed + RECOVERY_LIMIT

    def retrying() -> bool:
        return client.get(status_url, headers=headers).json["status"] == "retrying"

    _sweep_until(retrying, deadline)  # the user sees "retrying", never "failed"
    _finish_on_fresh_worker("reports", env, deadline)
    recovered_in = time.monotonic() - killed
    print(f"export recovered {recovered_in:.1f} s after the kill")

    done = client.get(status_url, headers=headers).json
    assert done["status"] == "finished" and done["progress"] == 100, done
    assert recovered_in < RECOVERY_LIMIT
    download = client.get(done["download_url"], headers=headers)
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.data.decode("utf-8-sig"))))
    assert len(rows) - 1 == done["rows"] == _count(AuditEvent)
    assert not partial.exists()
    db.session.expire_all()
    runs = db.session.query(JobRun).filter_by(job_id=job_id).order_by(JobRun.id).all()
    assert [r.status for r in runs] == ["interrupted", "finished"]
    db.session.rollback()


def _started_long_ago(job: Job, queue_name: str) -> None:
    """Make ``job`` look like one a dead worker started: started, heartbeat a minute old."""
    conn = queue.connection()
    job.set_status(JobStatus.STARTED)
    job.heartbeat(datetime.now(UTC) - timedelta(minutes=1), 0)
    registry = StartedJobRegistry(queue_name, connection=conn)
    conn.zadd(registry.key, {f"{job.id}:dead-execution": time.time() + 3600})
    queue.get_queue(queue_name).remove(job.id)  # a started job is off its queue


def test_a_dead_job_with_no_retries_left_fails_and_a_live_one_is_left_alone(env) -> None:
    dead = queue.get_queue("default").enqueue(verify_audit_chain)
    _started_long_ago(dead, "default")
    live = queue.get_queue("default").enqueue(verify_audit_chain)
    _started_long_ago(live, "default")
    live.heartbeat(datetime.now(UTC), 0)  # its worker is alive
    assert sweep() == []
    assert _job(dead.id).get_status() == "failed"
    assert "AbandonedJobError" in _job(dead.id).latest_result().exc_string
    assert _job(live.id).get_status() == "started"
    queue.connection().delete(StartedJobRegistry("default", connection=queue.connection()).key)


def test_a_rerun_asked_of_a_dead_sync_is_queued_once_its_lock_is_gone(env) -> None:
    conn = queue.connection()
    conn.set(rerun_key(987), 1)
    conn.set("orderbridge:sync:lock:987", "dead-worker", px=300)
    sweep()
    assert conn.exists(rerun_key(987)) and queue.get_queue("sync").count == 0  # still locked
    deadline = time.monotonic() + 10
    while is_running(987):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    sweep()
    assert not conn.exists(rerun_key(987))
    assert [j.args for j in queue.get_queue("sync").jobs] == [(987,)]
    queue.get_queue("sync").empty()
    conn.delete("orderbridge:sync:queued:987")
