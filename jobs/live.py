"""Live sync: a tracker syncs within seconds of a change on either side (docs/sync-jobs.md).

Three things ask for a sync *soon*:

- a committed portal change to a kind of record a tracker holds (the services' audit events,
  announced as ``records_changed``; :func:`on_records_changed`, subscribed by
  ``jobs.handlers``); the tracker's own sheet actor's writes do not count for it;
- an ``.xlsx`` tracker's file saved on the server (:class:`FileWatcher`, polled by the
  scheduler's loop every second);
- a Google tracker's edit trigger calling the signed webhook ``POST /sheets/hook/<tracker>``.

:func:`sync_soon` debounces in Redis: the first change of a burst sets
``orderbridge:sync:soon:<id>`` (``SET NX``) and schedules :func:`live_sync` on the ``sync``
queue with RQ's ``enqueue_in`` (run by a worker's RQ scheduler, ``orderbridge worker``);
later changes only stamp ``…:changed:<id>``. When it runs, :func:`live_sync` waits until the
changes have been quiet for ``SHEETS_LIVE_QUIET_SECONDS`` (at most
``SHEETS_LIVE_MAX_WAIT_SECONDS`` after the first), and for a Google tracker until
``SHEETS_GOOGLE_MIN_INTERVAL_SECONDS`` have passed since its last live sync (the quota
budget), then asks for one sync (:func:`jobs.sync.request_sync`). A burst of changes gives
one sync.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import Connection, select

from jobs.context import app_job
from jobs.queue import connection, get_queue
from jobs.sync import file_key, file_stamp, request_sync
from portal.extensions import db
from portal.models import Tracker
from portal.sync.kinds import KINDS

_PREFIX = "orderbridge:sync"
DEFAULTS = {
    "SHEETS_LIVE_QUIET_SECONDS": 1.0,
    "SHEETS_LIVE_MAX_WAIT_SECONDS": 5.0,
    "SHEETS_GOOGLE_MIN_INTERVAL_SECONDS": 5.0,
}


@dataclass(frozen=True)
class LiveSettings:
    """How live syncs are paced (config, then environment, then :data:`DEFAULTS`)."""

    enabled: bool
    quiet: float
    max_wait: float
    google_min_interval: float

    def min_interval(self, backend: str) -> float:
        """Seconds between two live syncs of one tracker: the Google quota budget."""
        return self.google_min_interval if backend == "gsheets" else 0.0


def _setting(name: str) -> Any:
    if has_app_context() and current_app.config.get(name) not in (None, ""):
        return current_app.config[name]
    return os.environ.get(name) or DEFAULTS.get(name)


def settings() -> LiveSettings:
    """The live-sync settings of the running app (``SHEETS_LIVE_SYNC`` switches it)."""
    enabled = _setting("SHEETS_LIVE_SYNC")
    if isinstance(enabled, str):
        enabled = enabled.strip().lower() in {"1", "true", "yes", "on"}
    return LiveSettings(
        enabled=bool(enabled),
        quiet=float(_setting("SHEETS_LIVE_QUIET_SECONDS")),
        max_wait=float(_setting("SHEETS_LIVE_MAX_WAIT_SECONDS")),
        google_min_interval=float(_setting("SHEETS_GOOGLE_MIN_INTERVAL_SECONDS")),
    )


def _key(kind: str, tracker_id: int) -> str:
    return f"{_PREFIX}:{kind}:{tracker_id}"


def _float(raw: bytes | None) -> float | None:
    return None if raw is None else float(raw)


# -- what asks for a sync ---------------------------------------------------------------------


def covering_trackers(
    changed: Iterable[tuple[str, str]], records: Iterable[tuple[str, str, str, str]] = ()
) -> list[tuple[int, str]]:
    """``(id, backend)`` of the enabled trackers whose kind the changed ``(entity, actor)``
    pairs touch, leaving out a tracker whose own sheet actor made all of those changes.

    Given the changed ``records`` (entity, actor, id, status left: ``records_changed``), a
    tracker with a filter is left out too when none of them can be one of its rows: not
    inside the filter now, and not moved out of a status inside it (``Kind.may_hold``)."""
    changed = list(changed)
    records = list(records)
    kinds = {
        name
        for name, kind in KINDS.items()
        if any(entity in kind.entities for entity, _ in changed)
    }
    if not kinds:
        return []
    query = select(Tracker.id, Tracker.name, Tracker.kind, Tracker.backend).where(
        Tracker.enabled.is_(True), Tracker.kind.in_(kinds)
    )
    query = query.add_columns(Tracker.filter)
    out = []
    # after a commit the session cannot query: a connection of its own
    with db.engine.connect() as conn:
        for tracker_id, name, kind, backend, filter in conn.execute(query).all():
            entities = KINDS[kind].entities
            actors = {actor for entity, actor in changed if entity in entities}
            if actors == {f"sheet:{name}"}:
                continue
            if records and filter:
                ours = [r for r in records if r[0] in entities and r[1] != f"sheet:{name}"]
                if not _may_hold(conn, kind, filter, ours):
                    continue
            out.append((tracker_id, backend))
    return out


def _may_hold(conn: Connection, kind: str, filter: str, records: list[tuple[str, ...]]) -> bool:
    changed: dict[str, set[str]] = {}
    left: dict[str, set[str]] = {}
    for entity, _, record_id, status in records:
        changed.setdefault(entity, set()).add(record_id)
        if status:
            left.setdefault(entity, set()).add(status)
    return KINDS[kind].may_hold(conn, filter, changed, left)


def on_records_changed(
    changed: tuple[tuple[str, str], ...], records: tuple[tuple[str, str, str, str], ...] = ()
) -> None:
    """``records_changed`` handler: a debounced sync of each tracker the change touches."""
    live = settings()
    if not live.enabled:
        return
    for tracker_id, backend in covering_trackers(changed, records):
        sync_soon(tracker_id, backend, live)


def sync_soon(tracker_id: int, backend: str, live: LiveSettings | None = None) -> bool:
    """Ask for a debounced sync of the tracker; True if this change started a new one (the
    others join the sync already scheduled)."""
    live = live or settings()
    conn = connection()
    now = time.time()
    ttl = int(live.max_wait + live.min_interval(backend) + 60)  # a lost job frees the tracker
    conn.set(_key("changed", tracker_id), now, ex=ttl)
    if not conn.set(_key("soon", tracker_id), now, nx=True, ex=ttl):
        return False
    _schedule(tracker_id, backend, live.quiet)
    return True


def _schedule(tracker_id: int, backend: str, seconds: float) -> None:
    get_queue("sync").enqueue_in(
        timedelta(seconds=max(0.0, seconds)),
        live_sync,
        tracker_id,
        backend,
        job_id=f"live-{tracker_id}-{uuid.uuid4().hex[:12]}",
        result_ttl=600,
        failure_ttl=86400,
    )


@app_job
def live_sync(tracker_id: int, backend: str) -> dict[str, Any]:
    """The debounced job: wait for quiet (bounded) and the tracker's minimum interval, then
    ask for one sync."""
    live = settings()
    conn = connection()
    now = time.time()
    first = _float(conn.get(_key("soon", tracker_id))) or now
    last = _float(conn.get(_key("changed", tracker_id))) or 0.0
    wait = 0.0 if now - first >= live.max_wait else last + live.quiet - now
    previous = _float(conn.get(_key("live", tracker_id)))
    if previous is not None:
        wait = max(wait, previous + live.min_interval(backend) - now)
    if wait > 0.05:
        _schedule(tracker_id, backend, wait)
        return {"status": "postponed", "seconds": round(wait, 2)}
    conn.delete(_key("soon", tracker_id))
    conn.set(_key("live", tracker_id), now, ex=int(live.min_interval(backend)) + 60)
    return {"status": "requested", "message": request_sync(tracker_id)}


# -- the .xlsx file watcher -------------------------------------------------------------------


class FileWatcher:
    """Polls the files of enabled ``.xlsx`` trackers (a ``stat`` each) and asks for a sync of
    each one saved since the last poll. ``refresh`` reloads the tracker list."""

    def __init__(self) -> None:
        self.files: dict[int, str] = {}
        self.seen: dict[int, str | None] = {}

    def refresh(self) -> None:
        """The enabled xlsx trackers, from the database."""
        rows = db.session.execute(
            select(Tracker.id, Tracker.location).where(
                Tracker.enabled.is_(True), Tracker.backend == "xlsx"
            )
        ).all()
        db.session.rollback()
        self.files = dict(rows)
        for tracker_id in list(self.seen):
            if tracker_id not in self.files:
                del self.seen[tracker_id]
        for tracker_id, path in self.files.items():
            self.seen.setdefault(tracker_id, file_stamp(path))

    def poll(self) -> list[int]:
        """Ask for a sync of each tracker whose file changed since the last poll (not by a
        sync); the ids asked for."""
        asked = []
        for tracker_id, path in self.files.items():
            stamp = file_stamp(path)
            if stamp is None or stamp == self.seen.get(tracker_id):
                continue
            self.seen[tracker_id] = stamp
            synced = connection().get(file_key(tracker_id))
            if synced is not None and synced.decode() == stamp:
                continue  # the sync's own write
            sync_soon(tracker_id, "xlsx")
            asked.append(tracker_id)
        return asked
