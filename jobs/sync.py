"""The sync job: one tracker's two-way sync, under a per-tracker lock (docs/sync-jobs.md).

``sync_tracker(tracker_id)`` runs as an RQ job on the ``sync`` queue (or inline from the CLI):

1. take the tracker's Redis lock (``SET NX`` with a TTL kept alive by a heartbeat); if another
   sync of the tracker holds it, record a *skipped* run and ask the holder to run once more;
2. ``read`` the tab, load the base (stored base + base patches), list the portal records,
   ``plan_sync``;
3. ``apply`` the sheet edits (in batches where the kind has a batch path) and new rows
   through the services, each transaction also patching the base (edits) or storing the
   create token (new rows);
4. ``finalize``, ``write`` the cells (``SheetChangedError``: read and merge again, bounded);
5. ``commit``: base, conflicts, create-token cleanup and the run's counts in one transaction.

Every step can be killed and the job re-run: see the commit points in docs/sync-jobs.md.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
import uuid
from collections.abc import Iterator, Set
from dataclasses import dataclass, replace
from typing import Any

from flask import has_app_context
from redis.exceptions import LockError
from rq import Retry, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select

from jobs.context import app_job, get_app
from jobs.queue import EXCEL_QUEUE, connection, get_queue
from portal.extensions import db
from portal.models import Tracker
from portal.services import sync_review, sync_runs, trackers
from portal.services.base import Actor, unit_of_work
from portal.sync import adapters, adopt
from portal.sync.backends import open_tracker_backend
from sheets.backends.xlsx_files import NotAWorkbook
from sheets.backends.xlsx_limits import WorkbookTooLarge
from sheets.engine import (
    ERROR,
    Base,
    CreateResult,
    RecordCreate,
    RecordUpdate,
    SyncPlan,
    SyncResult,
    UpdateResult,
    finalize,
    normalize_key,
    plan_sync,
)
from sheets.grid import CellWrite, SheetBackend, SheetChangedError, SheetSnapshot
from sheets.header_row import sheet_rows
from sheets.outcomes import DELETED, RowOutcome, result_outcomes
from sheets.trackers import TrackerSpec, header_id

QUEUE = "sync"
MAX_ATTEMPTS = 4  # reads-and-merges per run when the sheet changes under us
RETRY = Retry(max=3, interval=[10, 60, 300])  # whole-job retries (transient errors)
JOB_TIMEOUT = 1800
_PREFIX = "orderbridge:sync"
FUNC_NAME = "jobs.sync.sync_tracker"  # the job's RQ name, for jobs.recovery


def lock_seconds() -> int:
    """TTL of the per-tracker lock; a heartbeat renews it every third of it.

    ``ORDERBRIDGE_SYNC_LOCK_SECONDS`` (default 60): how long a killed worker blocks the tracker.
    """
    return max(1, int(os.environ.get("ORDERBRIDGE_SYNC_LOCK_SECONDS", "60")))


def _key(kind: str, tracker_id: int | str) -> str:
    return f"{_PREFIX}:{kind}:{tracker_id}"


def rerun_key(tracker_id: int | str) -> str:
    """The flag that asks a running sync to sync once more (a pattern with ``"*"``)."""
    return _key("rerun", tracker_id)


# -- queueing ---------------------------------------------------------------------------------


def is_running(tracker_id: int) -> bool:
    """Whether a sync of the tracker holds its lock."""
    return bool(connection().exists(_key("lock", tracker_id)))


def is_pending(tracker_id: int) -> bool:
    """Whether a sync of the tracker is queued or running."""
    return bool(connection().exists(_key("queued", tracker_id), _key("lock", tracker_id)))


def sync_queue(tracker_id: int) -> str:
    """The queue of the tracker's syncs: ``excel`` for an xlwings tracker (Microsoft Excel on
    a Windows or macOS worker), ``sync`` for the others (and when no app is at hand to ask:
    the scheduler's sweep of a process without one)."""
    if not has_app_context():
        try:
            app = get_app()
        except RuntimeError:
            return QUEUE
        with app.app_context():
            try:
                return sync_queue(tracker_id)
            finally:
                db.session.remove()
    backend = db.session.execute(
        select(Tracker.backend).where(Tracker.id == tracker_id)
    ).scalar_one_or_none()
    return EXCEL_QUEUE if backend == "xlwings" else QUEUE


def enqueue_sync(tracker_id: int) -> Job | None:
    """Queue a sync of the tracker (on :func:`sync_queue`) unless one is already queued
    (then None)."""
    conn = connection()
    marker = _key("queued", tracker_id)
    for _ in range(2):
        job_id = f"sync-{tracker_id}-{uuid.uuid4().hex[:12]}"
        if conn.set(marker, job_id, nx=True, ex=JOB_TIMEOUT):
            return get_queue(sync_queue(tracker_id)).enqueue(
                sync_tracker,
                tracker_id,
                job_id=job_id,
                retry=RETRY,
                job_timeout=JOB_TIMEOUT,
                result_ttl=3600,
                failure_ttl=7 * 86400,
            )
        queued = conn.get(marker)
        try:
            status = Job.fetch(queued.decode(), connection=conn).get_status() if queued else None
        except NoSuchJobError:
            status = None
        if status in ("queued", "scheduled", "deferred"):
            return None
        conn.delete(marker)  # the marked job is gone, started or finished
    return None


def mark_queued(tracker_id: int, job_id: str) -> None:
    """Record ``job_id`` as the tracker's queued sync (a requeued job), unless one is."""
    connection().set(_key("queued", tracker_id), job_id, nx=True, ex=JOB_TIMEOUT)


def request_sync(tracker_id: int) -> str:
    """ "Sync now": queue a sync, or have the running one sync again when it ends."""
    if is_running(tracker_id):
        connection().set(_key("rerun", tracker_id), 1, ex=JOB_TIMEOUT)
        return "a sync of this tracker is running; it will sync again when it finishes"
    job = enqueue_sync(tracker_id)
    return f"sync queued as job {job.id}" if job else "a sync of this tracker is already queued"


def file_stamp(path: str) -> str | None:
    """``mtime_ns:size`` of a tracker's file (None if it cannot be read)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def file_key(tracker_id: int) -> str:
    """Where the sync notes its own write of a tracker's file (for ``jobs.live``'s watcher)."""
    return _key("file", tracker_id)


def remember_file(tracker_id: int, path: str) -> None:
    """Note the file as this sync left it, so the file watcher does not take the sync's own
    write for a person's save."""
    stamp = file_stamp(path)
    if stamp is not None:
        connection().set(file_key(tracker_id), stamp, ex=86400)


# -- the job ----------------------------------------------------------------------------------


@dataclass
class Counts:
    """What one run did, across its attempts."""

    rows_read: int = 0
    applied: int = 0
    created: int = 0
    written: int = 0
    conflicts: int = 0
    errors: int = 0
    attempts: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            name: getattr(self, name)
            for name in (
                "rows_read",
                "applied",
                "created",
                "written",
                "conflicts",
                "errors",
                "attempts",
            )
        }


@contextlib.contextmanager
def _tracker_lock(tracker_id: int) -> Iterator[bool]:
    """Hold the tracker's lock (yields False if another sync holds it), renewed by a
    heartbeat thread so a long sync keeps it and a killed one loses it after the TTL."""
    ttl = lock_seconds()
    lock = connection().lock(_key("lock", tracker_id), timeout=ttl, thread_local=False)
    if not lock.acquire(blocking=False):
        yield False
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(ttl / 3):
            try:
                lock.reacquire()
            except LockError:
                return

    heart = threading.Thread(target=beat, name=f"sync-lock-{tracker_id}", daemon=True)
    heart.start()
    try:
        yield True
    finally:
        stop.set()
        heart.join()
        with contextlib.suppress(LockError):
            lock.release()


@app_job
def sync_tracker(tracker_id: int, rows: list[RowOutcome] | None = None) -> dict[str, Any]:
    """Sync one tracker (an RQ job on the ``sync`` queue, or called inline); ``rows``, if
    given, receives every row's outcome (numbered as the sheet's rows)."""
    job = get_current_job()
    job_id = job.id if job else f"inline-{uuid.uuid4().hex[:12]}"
    conn = connection()
    marker = _key("queued", tracker_id)
    if job is not None and conn.get(marker) == job.id.encode():
        conn.delete(marker)
    with _tracker_lock(tracker_id) as locked:
        if not locked:
            conn.set(_key("rerun", tracker_id), 1, ex=JOB_TIMEOUT)
            run = trackers.skip_run(
                tracker_id,
                job_id,
                "skipped: another sync of this tracker was running (it syncs again when done)",
            )
            return {"status": "skipped", "run_id": run.id}
        outcome = run_sync(tracker_id, job_id, rows)
    if conn.delete(_key("rerun", tracker_id)):
        enqueue_sync(tracker_id)
    return outcome


def sync_posted(
    tracker_id: int, book: SheetBackend, actor: Actor, rows: list[RowOutcome] | None = None
) -> dict[str, Any] | None:
    """Sync a workbook posted from Excel (the xlwings client) now, in the request, as
    ``actor``, under the tracker's lock like any sync; None (nothing done) while another
    sync of the tracker holds the lock."""
    with _tracker_lock(tracker_id) as locked:
        if not locked:
            return None
        job_id = f"xlwings-{uuid.uuid4().hex[:12]}"
        outcome = run_sync(tracker_id, job_id, rows, book=book, actor=actor)
    if connection().delete(_key("rerun", tracker_id)):
        enqueue_sync(tracker_id)
    return outcome


def run_sync(
    tracker_id: int,
    job_id: str,
    rows: list[RowOutcome] | None = None,
    *,
    book: SheetBackend | None = None,
    actor: Actor | None = None,
) -> dict[str, Any]:
    """One run (the caller holds the tracker's lock): attempts until the write lands.

    ``book``: the tab to sync instead of the tracker's own (a workbook posted from Excel by
    the xlwings client, ``sheets.backends.xlwings``). ``actor``: who syncs (the signed-in
    user, recorded as the run's ``started_by``, with their permissions on every write);
    default the tracker's system actor ``sheet:<tracker>``.

    A workbook breaking an XLSX_* limit, or a file that is not an .xlsx package, ends the run
    as failed with the one-line message, without raising (so the job is not retried); other
    errors raise (RQ retries).
    """
    tracker = db.session.get(Tracker, tracker_id)
    if tracker is None:
        raise LookupError(f"tracker {tracker_id} does not exist")
    person = actor.name if actor is not None and not actor.is_system else None
    run = trackers.start_run(tracker_id, job_id, started_by=person)
    run_id = run.id
    started = time.monotonic()
    counts = Counts()
    try:
        spec = tracker.spec()
        actor = actor or Actor.system(spec.actor)
        backend = open_tracker_backend(tracker, book)
        for attempt in range(1, MAX_ATTEMPTS):
            counts.attempts = attempt
            try:
                return _attempt(tracker, spec, backend, run_id, counts, started, rows, actor)
            except SheetChangedError:
                db.session.rollback()
                time.sleep(0.2 * attempt)
        counts.attempts = MAX_ATTEMPTS
        return _attempt(tracker, spec, backend, run_id, counts, started, rows, actor)
    except (WorkbookTooLarge, NotAWorkbook) as exc:
        # permanent, not retried: the same workbook breaks the same limit, or is still not an
        # .xlsx package (nothing written); the message is one line naming the file
        db.session.rollback()
        trackers.fail_run(run_id, str(exc), counts.as_dict(), time.monotonic() - started)
        return {"status": "failed", "error": str(exc), **counts.as_dict()}
    except Exception as exc:
        db.session.rollback()
        trackers.fail_run(
            run_id, f"{type(exc).__name__}: {exc}", counts.as_dict(), time.monotonic() - started
        )
        raise


def _attempt(
    tracker: Tracker,
    spec: TrackerSpec,
    backend: SheetBackend,
    run_id: int,
    counts: Counts,
    started: float,
    rows: list[RowOutcome] | None,
    actor: Actor,
) -> dict[str, Any]:
    snapshot = _read(backend)
    base, patches = trackers.load_base(tracker.id, spec)
    hidden = _hidden(tracker, spec, snapshot, actor)
    db.session.rollback()  # end the read transaction: the merge holds no database snapshot
    tokens = trackers.create_tokens(tracker.id)
    # rows keyed on the team's own references that name no record yet (docs/sync-attach.md)
    adoption = adopt.adopt_rows(spec, tracker.filter, snapshot.rows, dry=False, actor=actor)
    portal = adopt.portal_side(spec, tracker.filter, snapshot.rows, tracker.append_records)
    plan, claimed = _plan(spec, portal, base, snapshot, tokens, hidden)
    adoption.mark(plan)
    counts.created += len(adoption.created)
    counts.rows_read = plan.rows_read
    if plan.fatal:
        trackers.finish_sync(
            tracker,
            spec,
            run_id,
            base=None,
            counts=counts.as_dict(),
            duration=time.monotonic() - started,
            error=plan.fatal,
        )
        return {"status": "failed", "error": plan.fatal, **counts.as_dict()}
    with _collector_paused():
        results = _apply(tracker, spec, plan, claimed, patches, counts, actor)
    result = finalize(plan, results)
    _write(backend, result.writes, snapshot)
    if result.writes and tracker.backend == "xlsx":
        remember_file(tracker.id, tracker.location)
    counts.written = len(result.writes)
    counts.conflicts = len(plan.conflicts)
    counts.errors = sum(1 for issue in result.issues if issue.kind == ERROR)
    outcomes = sheet_rows(adoption.outcomes(result_outcomes(plan, result)), tracker.header_row)
    outcomes = _commit(
        tracker, spec, run_id, result, plan, base, patches, counts, started, outcomes, actor
    )
    if rows is not None:
        rows.extend(outcomes)
    return {"status": "succeeded", **counts.as_dict(), "warnings": plan.warnings}


def _read(backend: SheetBackend) -> SheetSnapshot:
    """Step 1: one values read of the tab."""
    return backend.read()


def _sheet_keys(spec: TrackerSpec, rows: list[list[Any]]) -> set[str]:
    if not rows:
        return set()
    wanted = header_id(spec.key_header)
    idx = next((i for i, h in enumerate(rows[0]) if header_id(h) == wanted), None)
    if idx is None:
        return set()
    keys = (normalize_key(row[idx]) for row in rows[1:] if idx < len(row))
    return {k for k in keys if k is not None}


def _hidden(tracker: Tracker, spec: TrackerSpec, snapshot: SheetSnapshot, actor: Actor) -> set[str]:
    """Records whose row was deleted from the sheet: kept out of it (not appended again).
    A key typed back into the sheet ends its deletion (restored by ``actor``)."""
    hidden = sync_review.hidden_keys(tracker.id)
    back = hidden & _sheet_keys(spec, snapshot.rows) if hidden else set()
    if back:
        sync_review.restore_typed_back(tracker.id, back, actor)
    return hidden - back


def _plan(
    spec: TrackerSpec,
    portal: dict[str, dict[str, Any]],
    base: Base,
    snapshot: SheetSnapshot,
    tokens: dict[str, str],
    hidden: Set[str] = frozenset(),
) -> tuple[SyncPlan, dict[str, str]]:
    """Step 2: merge. Records created by an earlier, interrupted sync whose key is not in the
    sheet yet are kept out of the portal side while their blank row is still there (the row
    gets the existing key instead of a second record, see :func:`_apply`); so are records
    whose row was deleted (``hidden``)."""
    if hidden:
        portal = {k: v for k, v in portal.items() if k not in hidden}
    in_sheet = _sheet_keys(spec, snapshot.rows) if tokens else set()
    waiting = {t: k for t, k in tokens.items() if k not in in_sheet}
    if not waiting:
        return plan_sync(spec, base, snapshot.rows, portal), {}
    hidden = set(waiting.values())
    visible = {k: v for k, v in portal.items() if k not in hidden}
    plan = plan_sync(spec, base, snapshot.rows, visible)
    claimed = {c.token: waiting[c.token] for c in plan.creates if c.token in waiting}
    if len(claimed) < len(waiting):  # a row was edited meanwhile: append those records instead
        keep_out = set(claimed.values())
        plan = plan_sync(
            spec, base, snapshot.rows, {k: v for k, v in portal.items() if k not in keep_out}
        )
        claimed = {c.token: waiting[c.token] for c in plan.creates if c.token in waiting}
    return plan, claimed


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the edits are applied (reference counting still
    frees what they drop): its full collections, set off by the many records a batch makes,
    would walk the snapshot, base, portal rows and plan (millions of objects for a 50,000-row
    tab) again and again. Cycles made meanwhile are collected afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _apply(
    tracker: Tracker,
    spec: TrackerSpec,
    plan: SyncPlan,
    claimed: dict[str, str],
    patches: list[int],
    counts: Counts,
    actor: Actor,
) -> list[UpdateResult | CreateResult]:
    """Step 3: sheet edits and new rows through the services: edits in batches where the
    kind has a batch path (``adapters.apply_updates``), new rows a batch per transaction with
    a savepoint per row (``adapters.apply_creates``).

    Applied edits store their base patches in their transaction, so a crash before the final
    commit never loses them (their ids join ``patches``); a new record stores its create
    token with it."""
    headers = {c.field: c.header for c in spec.columns}
    tracker_id, filter = tracker.id, tracker.filter

    def patch(applied: list[RecordUpdate]) -> list[int]:
        cells = {u.key: {headers[f]: v for f, v in u.changes.items()} for u in applied}
        return trackers.patch_base(tracker_id, spec, cells)

    updated, made = adapters.apply_updates(spec, filter, plan.updates, patch, actor)
    counts.applied += sum(1 for result in updated if result.error is None)
    patches.extend(made)
    results: list[UpdateResult | CreateResult] = list(updated)
    new = []
    for create in plan.creates:
        existing = claimed.get(create.token)
        if existing is None:
            new.append(create)
            continue
        values = adapters.record_values(spec, existing)
        results.append(CreateResult(create.row, key=existing, values=values))

    def remember(create: RecordCreate, key: str) -> None:
        trackers.add_create_token(tracker_id, create.token, key)

    made = adapters.apply_creates(spec, new, also=remember, actor=actor)
    counts.created += sum(1 for result in made if result.key)
    results.extend(made)
    return results


def _write(backend: SheetBackend, writes: list[CellWrite], snapshot: SheetSnapshot) -> None:
    """Step 4: one values write, only if something changed (compare-and-replace)."""
    if writes:
        backend.write(writes, snapshot)


def _commit(
    tracker: Tracker,
    spec: TrackerSpec,
    run_id: int,
    result: SyncResult,
    plan: SyncPlan,
    loaded: Base,
    patches: list[int],
    counts: Counts,
    started: float,
    outcomes: list[RowOutcome],
    actor: Actor,
) -> list[RowOutcome]:
    """Step 5: deleted rows (the tracker's policy, one transaction each), then base,
    conflicts, create tokens, the run's counts and its row outcomes in one transaction.
    Returns the outcomes as recorded (a deleted row's says what became of its record)."""
    said = sync_review.record_deletions(tracker, run_id, plan.deleted, actor)
    outcomes = [
        replace(o, message=said[o.key]) if o.outcome == DELETED and o.key in said else o
        for o in outcomes
    ]
    with unit_of_work():
        trackers.finish_sync(
            tracker,
            spec,
            run_id,
            base=result.base,
            loaded=loaded,
            patches=patches,
            conflicts=plan.conflicts,
            counts=counts.as_dict(),
            duration=time.monotonic() - started,
            actor=actor,
        )
        sync_runs.record_rows(run_id, outcomes)
    return outcomes
