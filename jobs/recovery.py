"""Crashed work recovers: the scheduler's sweep for jobs whose worker died (docs/sync-jobs.md).

A worker killed mid-job (``kill -9``, the OOM killer, a lost machine) leaves its job *started*
in its queue's started registry, and nobody runs it again: RQ only notices when some worker's
maintenance (every 10 minutes) finds the registry entry expired, then fails the job or
schedules a retry. :func:`sweep`, run by the scheduler on every tick, does it within seconds:

- a started job is **abandoned** when its heartbeat (renewed by its worker every
  ``JOB_HEARTBEAT_SECONDS``) is :data:`jobs.queue.ABANDONED_AFTER_BEATS` heartbeats old, or
  when RQ's own deadline for it (its started-registry score) has passed;
- a sync waits until the dead worker's tracker lock has expired
  (``ORDERBRIDGE_SYNC_LOCK_SECONDS``), so the retry is not skipped as "another sync running";
- the sweep claims the job by removing its registry entry (one of several sweeps wins), then
  puts it back on its queue, spending one of its RQ retries (``job.retries_left``) and counting
  ``meta["recovered"]``; with no retries left it fails it with ``AbandonedJobError``, as RQ
  would. Running a job again is safe: a sync is crash-safe by design, an export starts over
  and overwrites its temporary file;
- a "sync again when done" request left behind by a dead sync (its rerun flag, with the lock
  gone) is turned into a queued sync.
"""

from __future__ import annotations

import time

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.results import Result
from rq.utils import parse_composite_key

from jobs import sync
from jobs.queue import ABANDONED_AFTER_BEATS, QUEUE_NAMES, connection, get_queue, heartbeat_seconds

ABANDONED = "AbandonedJobError: the worker running this job died (no heartbeat); no retries left"


def sweep(now: float | None = None) -> list[str]:
    """Requeue (or fail, with no retries left) every started job whose worker is gone, and
    queue the syncs a dead sync was asked to run again; the ids of the jobs requeued."""
    conn = connection()
    now = time.time() if now is None else now
    requeued = []
    for name in QUEUE_NAMES:
        registry = StartedJobRegistry(name, connection=conn)
        for entry, deadline in conn.zrange(registry.key, 0, -1, withscores=True):
            job = _abandoned(conn, entry.decode(), deadline, now)
            if job is None or _waits_for_lock(job):
                continue
            if not conn.zrem(registry.key, entry):  # another sweep (or RQ) took it
                continue
            if _run_again(conn, job, name):
                requeued.append(job.id)
    _resume_reruns(conn)
    return requeued


def _abandoned(conn: Redis, entry: str, deadline: float, now: float) -> Job | None:
    """The job of a started-registry entry if its worker is gone, else None."""
    job_id, _execution = parse_composite_key(entry)
    try:
        job = Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return None  # RQ's cleanup drops the entry
    if job.get_status(refresh=False) != JobStatus.STARTED:
        return None
    beat = job.last_heartbeat or job.started_at
    if beat is None:
        return None
    silent = now - beat.timestamp()
    if silent < ABANDONED_AFTER_BEATS * heartbeat_seconds() and deadline > now:
        return None
    return job


def _waits_for_lock(job: Job) -> bool:
    """A sync must not run again while the dead worker's lock still holds the tracker."""
    return job.func_name == sync.FUNC_NAME and sync.is_running(job.args[0])


def _run_again(conn: Redis, job: Job, queue_name: str) -> bool:
    """Put ``job`` back on its queue spending one retry (True), or fail it (False)."""
    left = job.retries_left or 0
    with conn.pipeline() as pipe:
        if left > 0:
            job.retries_left = left - 1
            job.meta["recovered"] = job.meta.get("recovered", 0) + 1
            get_queue(queue_name).enqueue_job(job, pipeline=pipe)
        else:
            job.set_status(JobStatus.FAILED, pipeline=pipe)
            FailedJobRegistry(queue_name, connection=conn).add(
                job, ttl=job.failure_ttl, exc_string=ABANDONED, pipeline=pipe
            )
            Result.create_failure(job, job.failure_ttl, exc_string=ABANDONED, pipeline=pipe)
        pipe.execute()
    if left > 0 and job.func_name == sync.FUNC_NAME:
        sync.mark_queued(job.args[0], job.id)
    return left > 0


def _resume_reruns(conn: Redis) -> None:
    """Queue a sync for each rerun flag whose sync died (the flag stayed, the lock is gone)."""
    for key in conn.scan_iter(match=sync.rerun_key("*")):
        tracker_id = int(key.decode().rsplit(":", 1)[1])
        if not sync.is_running(tracker_id) and conn.delete(key):
            sync.enqueue_sync(tracker_id)
