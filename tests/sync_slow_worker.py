"""Run ``orderbridge worker`` with a job step held open, so tests can overlap or kill jobs.

``python -m tests.sync_slow_worker <step> worker ...``: in the first sync the worker runs, after
``read`` (the sheet was read) or ``apply`` (the records were applied, before the sheet write)
it prints :data:`STEP_REACHED` and waits for a line on its stdin before it goes on; ``export``
holds the first export the same way once its CSV header is written (mid-export, the partial
file open); ``none`` holds nothing. Everything else is the real worker and the real job.

The tests' side: :func:`start` a worker, :func:`wait_reached` for the step, :func:`kill` it and
its work horse with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import jobs.sync as sync_job
import portal.services.exports as exports_service
from portal.cli import main

STEP_REACHED = "sync-slow-worker: step reached"
REPO = Path(__file__).resolve().parents[1]


def _hold() -> None:
    print(STEP_REACHED, flush=True)
    sys.stdin.readline()  # the test's go-ahead (or EOF when it lets go)


def _held(original):
    held = []

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        if not held:  # only the first sync this process runs
            held.append(True)
            _hold()
        return result

    return wrapper


def _held_after_first_chunk(original):
    held = []

    def wrapper(*args, **kwargs):
        chunks = original(*args, **kwargs)
        yield next(chunks)  # the header: the caller writes it before asking for more
        if not held:
            held.append(True)
            _hold()
        yield from chunks

    return wrapper


def start(step: str, queue: str, env: Mapping[str, str]) -> subprocess.Popen:
    """A burst worker on ``queue`` whose first job stops after ``step`` until it gets a line."""
    args = [sys.executable, "-m", "tests.sync_slow_worker", step]
    args += ["worker", "--burst", "--no-scheduler", "--queue", queue]
    return subprocess.Popen(
        args,
        cwd=REPO,
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_reached(worker: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``worker`` holds its job at the step (it says so on stdout)."""
    reached = threading.Event()

    def read() -> None:
        for line in worker.stdout:  # type: ignore[union-attr]
            if line.startswith(STEP_REACHED):
                reached.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert reached.wait(timeout), "the worker never reached the step"


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def kill(worker: subprocess.Popen) -> None:
    """``kill -9`` the worker and its work horse (RQ runs it in a session of its own)."""
    horses = children(worker.pid)
    assert horses, "the work horse is not running"
    for pid in [worker.pid, *horses]:
        os.kill(pid, signal.SIGKILL)
    worker.wait(timeout=10)


if __name__ == "__main__":
    step = sys.argv[1]
    if step == "export":
        exports_service.csv_chunks = _held_after_first_chunk(exports_service.csv_chunks)
    elif step != "none":
        name = {"read": "_read", "apply": "_apply"}[step]
        setattr(sync_job, name, _held(getattr(sync_job, name)))
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    main()
