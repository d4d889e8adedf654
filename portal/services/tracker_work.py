"""A Specialist's own trackers: who works with which tracker, and the workbook copies.

A user works with the trackers they own (``Tracker.owner_id``) or that are shared with them
(:class:`TrackerShare`); Admins with all of them. They sync them, download the current
workbook (Excel trackers) and upload an edited copy, which replaces the server's file
atomically if the file is still the one they downloaded; if a sync wrote to it meanwhile,
the copy's edits (against the downloaded copy, kept per user) are written into its tab
instead (``sheets.copy_merge``). The view then queues a sync, which merges them like any
sheet edit.
"""

from __future__ import annotations

from pathlib import Path

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Select, exists, or_, select

from portal.extensions import db
from portal.models import Tracker, TrackerShare, utcnow
from portal.services import audit
from portal.services.base import (
    Actor,
    ConflictError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    unit_of_work,
)
from sheets.backends.xlsx import XlsxBackend
from sheets.backends.xlsx_copy import has_content, read_copy, replace_with_copy, tab_rows
from sheets.backends.xlsx_files import NotAWorkbook
from sheets.backends.xlsx_limits import WorkbookTooLarge, XlsxLimits
from sheets.copy_merge import copy_edits
from sheets.grid import SheetChangedError

WORK_VIEW = "TrackerWork"


def visible_query(actor: Actor) -> Select:
    """The trackers ``actor`` works with (all for an Admin), by name."""
    query = select(Tracker).order_by(Tracker.name)
    if actor.is_admin or actor.is_system:
        return query
    shared = exists().where(
        TrackerShare.tracker_id == Tracker.id, TrackerShare.user_id == actor.user_id
    )
    return query.where(or_(Tracker.owner_id == actor.user_id, shared))


def visible(actor: Actor) -> list[Tracker]:
    """The trackers ``actor`` works with."""
    return list(db.session.execute(visible_query(actor)).scalars())


def tracker_for(actor: Actor, tracker_id: int) -> Tracker:
    """The tracker ``tracker_id`` if ``actor`` works with it: NotFound (404) if there is none,
    PermissionDenied (403) if it is neither theirs nor shared with them."""
    if not actor.can("can_work", WORK_VIEW):
        raise PermissionDenied(f"{actor.name} does not work with trackers")
    tracker = db.session.get(Tracker, tracker_id)
    if tracker is None:
        raise NotFound(f"tracker {tracker_id} does not exist")
    query = visible_query(actor).where(Tracker.id == tracker_id)
    if db.session.execute(query).first() is None:
        raise PermissionDenied(f"tracker {tracker.name} is neither yours nor shared with you")
    return tracker


def may_share(tracker: Tracker, actor: Actor) -> bool:
    """Whether ``actor`` may share ``tracker`` (its owner, an Admin)."""
    return actor.is_admin or actor.is_system or tracker.owner_id == actor.user_id


def share_with(tracker: Tracker, username: str, actor: Actor) -> TrackerShare:
    """Share ``tracker`` with the user ``username`` (422 naming it if there is none)."""
    user_id = db.session.execute(
        select(User.id).where(User.username == username.strip())
    ).scalar_one_or_none()
    if user_id is None:
        raise ValidationFailed({"username": [f"no user named {username.strip()!r}"]})
    return share(tracker, user_id, actor)


def share(tracker: Tracker, user_id: int, actor: Actor) -> TrackerShare:
    """Share ``tracker`` with a user (its owner or an Admin may; once per user)."""
    if not may_share(tracker, actor):
        raise PermissionDenied("only the tracker's owner or an Admin shares it")
    if (
        tracker.owner_id == user_id
        or db.session.execute(
            select(TrackerShare.id).where(
                TrackerShare.tracker_id == tracker.id, TrackerShare.user_id == user_id
            )
        ).first()
    ):
        raise ConflictError(f"{tracker.name} is already theirs or shared with them")
    with unit_of_work() as sess:
        row = TrackerShare(tracker_id=tracker.id, user_id=user_id, created_at=utcnow())
        sess.add(row)
        sess.flush()
        audit.record(actor, "tracker", tracker.id, "share", after={"user_id": user_id})
    return row


def workbook_path(tracker: Tracker) -> Path:
    """The server's file of an Excel tracker (ValidationFailed for other backends, NotFound
    while it does not exist)."""
    if tracker.backend != "xlsx":
        where = "open it in Google Sheets" if tracker.backend == "gsheets" else "open it in Excel"
        raise ValidationFailed({"backend": [f"{tracker.name} has no file to download: {where}"]})
    path = Path(tracker.location).expanduser()
    if not path.is_file():
        raise NotFound(f"{tracker.name}'s workbook has not been written yet (sheets init)")
    return path


def _kept_copy(kept: Path, tracker: Tracker, actor: Actor) -> Path:
    return kept / f"{tracker.id}-{actor.user_id}.xlsx"


def download(tracker: Tracker, actor: Actor, kept: Path, limits: XlsxLimits) -> tuple[bytes, str]:
    """The workbook's bytes to hand ``actor`` and their fingerprint (the origin their upload
    names). The copy is kept under ``kept`` (one per user and tracker), so an upload made
    after a sync wrote to the file can still tell the user's edits apart."""
    data, origin = read_copy(workbook_path(tracker), limits)
    kept.mkdir(parents=True, exist_ok=True)
    _kept_copy(kept, tracker, actor).write_bytes(data)
    return data, origin


def store_copy(
    tracker: Tracker, data: bytes, origin: str | None, actor: Actor, kept: Path, limits: XlsxLimits
) -> str:
    """Put an edited copy in place of the tracker's workbook (atomically) if the workbook is
    still the one downloaded (``origin``, its fingerprint); if a sync wrote to it meanwhile,
    write the copy's edits to its tab instead (cells the user changed, rows they added). The
    caller then queues a sync. What was done, as a sentence."""
    path = workbook_path(tracker)
    if not origin:
        raise ValidationFailed({"file": ["download the workbook first, then upload your copy"]})
    try:
        replace_with_copy(path, tracker.tab, data, origin, limits)
        said = "your copy is in place"
    except (NotAWorkbook, WorkbookTooLarge) as error:
        raise ValidationFailed({"file": [str(error)]}) from None
    except SheetChangedError:
        said = _merge_copy(tracker, path, data, _kept_copy(kept, tracker, actor), origin, limits)
    with unit_of_work():
        audit.record(actor, "tracker", tracker.id, "upload", after={"bytes": len(data)})
    return said


def _merge_copy(
    tracker: Tracker, path: Path, data: bytes, kept: Path, origin: str, limits: XlsxLimits
) -> str:
    """The workbook changed since the download: carry the copy's edits into its tab."""
    downloaded = kept.read_bytes() if kept.is_file() else b""
    if not has_content(downloaded, origin):
        raise ConflictError(
            f"{tracker.name}'s workbook changed on the server since you downloaded it (a sync "
            "wrote to it); download it again and make your edits in the new copy"
        )
    backend = XlsxBackend(path, tracker.tab, limits=limits)
    snapshot = backend.read()
    edits = copy_edits(
        tracker.key_header,
        tab_rows(downloaded, tracker.tab, limits),
        tab_rows(data, tracker.tab, limits),
        snapshot.rows,
    )
    try:
        backend.write(edits.writes, snapshot)
    except SheetChangedError:
        raise ConflictError(f"{tracker.name}'s workbook is being written; upload again") from None
    said = (
        f"the workbook changed on the server since your download, so your edits to tab "
        f"{tracker.tab} were written into it ({edits.edited_rows} rows edited, "
        f"{edits.added_rows} added; other tabs of your copy were not taken)"
    )
    if edits.deleted_keys:
        said += f"; rows you deleted were kept: {', '.join(edits.deleted_keys[:10])}"
    return said


__all__ = [
    "WORK_VIEW",
    "download",
    "may_share",
    "share",
    "share_with",
    "store_copy",
    "tracker_for",
    "visible",
    "visible_query",
    "workbook_path",
]
