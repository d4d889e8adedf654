"""Tracker actions from the "My trackers" pages and the deleted-rows review: upload an edited
copy of a tracker's workbook (``tracker_work.store_copy``), share a tracker
(``tracker_work.share_with``) and a Supervisor's decision on a row deleted from a sheet
(``sync_review.decide``)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from portal.actions import Action
from portal.models import SyncDeletedRow, Tracker
from portal.services import sync_review, tracker_work
from portal.services.base import Actor
from portal.sync.backends import xlsx_limits


class DecideForm(Schema):
    """The deleted-row decision form."""

    choice = fields.String(required=True, validate=validate.OneOf(list(sync_review.DECISIONS)))


class ShareForm(Schema):
    """The "Share with" form of a tracker's page: a username."""

    username = fields.String(required=True, validate=validate.Length(1, 100))


def _share(tracker: Tracker, actor: Actor, body: dict[str, Any]) -> Tracker:
    tracker = tracker_work.tracker_for(actor, tracker.id)
    tracker_work.share_with(tracker, body["username"], actor)
    return tracker


def _upload(tracker: Tracker, actor: Actor, body: dict[str, Any]) -> tuple[Tracker, str]:
    tracker = tracker_work.tracker_for(actor, tracker.id)
    said = tracker_work.store_copy(
        tracker, body["file"], body.get("origin"), actor, body["kept"], xlsx_limits()
    )
    return tracker, said


def _decide(row: SyncDeletedRow, actor: Actor, body: dict[str, Any]) -> SyncDeletedRow:
    return sync_review.decide(row, body["choice"], actor)


UPLOAD_COPY = Action("upload", Tracker, _upload, schema=None)
SHARE_TRACKER = Action("share", Tracker, _share, ShareForm)
DECIDE_DELETED_ROW = Action("decide", SyncDeletedRow, _decide, DecideForm)
