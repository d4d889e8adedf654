"""Queue plumbing with a real Redis and a real RQ worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from jobs import queue
from jobs.maintenance import verify_audit_chain
from portal.extensions import db
from portal.models import JobRun
from tests.conftest import REPO
from tests.factories import make_catalog


def _run_worker_burst(*queues: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "portal.cli", "worker", "--burst", "--no-scheduler"]
    for name in queues:
        args += ["--queue", name]
    return subprocess.run(
        args, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=120
    )


def test_enqueued_job_runs_in_a_worker_process_with_the_app(clean_db) -> None:
    make_catalog()
    job = queue.enqueue(verify_audit_chain)
    done = _run_worker_burst("default")
    assert done.returncode == 0, done.stderr
    job.refresh()
    assert job.get_status() == "finished", done.stderr
    assert job.return_value()["ok"] is True
    db.session.expire_all()
    run = db.session.query(JobRun).filter_by(job_id=job.id).one()
    assert run.status == "finished" and run.finished_at is not None


def test_cli_enqueue_puts_the_job_on_the_queue(clean_db) -> None:
    before = queue.get_queue("default").count
    done = subprocess.run(
        [sys.executable, "-m", "portal.cli", "enqueue", "verify-audit"],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert queue.get_queue("default").count == before + 1
    assert _run_worker_burst("default").returncode == 0
    assert queue.get_queue("default").count == 0


def test_unknown_queue_is_refused(ctx) -> None:
    with pytest.raises(ValueError, match="unknown queue"):
        queue.get_queue("nope")


def test_embedded_server_is_started_once_and_shared(tmp_path: Path) -> None:
    """With no REDIS_URL, the first process starts Valkey; later callers find it."""
    urls: list[str] = []
    lock = threading.Lock()

    def start() -> None:
        url = queue.start_embedded_server(tmp_path)
        with lock:
            urls.append(url)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(set(urls)) == 1
        assert Redis.from_url(urls[0]).ping()
        assert (tmp_path / "valkey" / "url").read_text().strip() == urls[0]
    finally:
        queue.stop_embedded_server()
    with pytest.raises(RedisConnectionError):
        Redis.from_url(urls[0], socket_connect_timeout=1).ping()


def test_enqueue_passes_positional_and_keyword_arguments(ctx) -> None:
    from jobs.fulfillment import fill_backorders

    job = queue.enqueue(fill_backorders, 42, options={"job_timeout": 30})
    try:
        assert job.args == (42,) and job.kwargs == {} and job.timeout == 30
    finally:
        job.delete()


def test_periodic_jobs_are_enqueued_once_per_interval(ctx) -> None:
    from jobs.schedule import PERIODIC, run_periodic

    conn = queue.connection()
    for name in PERIODIC:
        conn.delete(f"orderbridge:periodic:{name}")
    before = {name: queue.get_queue(q).count for name, (_, q, _) in PERIODIC.items()}
    assert sorted(run_periodic()) == sorted(PERIODIC)
    assert run_periodic() == []  # a second scheduler (or tick) finds every slot taken
    for name, (interval, _, _) in PERIODIC.items():
        assert 0 < conn.ttl(f"orderbridge:periodic:{name}") <= interval
    assert queue.get_queue("notify").count >= before["send_notifications"] + 1
    for name in PERIODIC:
        conn.delete(f"orderbridge:periodic:{name}")
    for queue_name in {q for _, q, _ in PERIODIC.values()}:
        queue.get_queue(queue_name).empty()
