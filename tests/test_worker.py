"""A plain ``rq worker`` runs Orderbridge jobs with ``-w jobs.worker.AppWorker``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jobs import queue
from jobs.maintenance import verify_audit_chain
from tests.conftest import REPO


def test_a_plain_rq_worker_with_the_app_worker_class_runs_jobs(clean_db) -> None:
    job = queue.enqueue(verify_audit_chain)
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "rq"),
            "worker",
            "--burst",
            "--worker-class",
            "jobs.worker.AppWorker",
            "--url",
            queue.redis_url(),
            "default",
        ],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    job.refresh()
    assert job.get_status() == "finished", done.stderr
    assert job.return_value()["ok"] is True
