"""The record kinds trackers may hold, as the tracker service sees them.

The sync glue (``portal/sync``) registers its kinds at start (:func:`register_kind`); a kind
keyed on another field (the team's own references) is registered as a variant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from portal.models import Tracker
from portal.services.base import Actor
from sheets.trackers import Column


class KindField(Protocol):
    """A field of a record kind: its column type, and whether a sheet may edit or set it."""

    type: str
    editable: bool
    creatable: bool


class RecordKind(Protocol):
    """What trackers need of a record kind (the sync glue, ``portal/sync``, implements it)."""

    name: str
    key_field: str
    key_header: str
    fields: Mapping[str, KindField]
    filters: Mapping[str, str]
    can_create: bool
    preset: tuple[Column, ...]

    def current(self, key: str, filter: str | None, wanted: Iterable[str]) -> dict[str, Any]:
        """The record ``key``: field -> value."""
        ...

    def update(self, key: str, changes: Mapping[str, Any], actor: Actor, tracker_name: str) -> None:
        """Apply ``changes`` (field -> value) to the record ``key`` through its service."""
        ...

    can_cancel: bool

    def cancel(self, key: str, actor: Actor, tracker_name: str) -> None:
        """Cancel the record ``key`` (its row was deleted from a tracker) through its service."""
        ...


_KINDS: dict[str, RecordKind] = {}
_KEYED: dict[tuple[str, str], RecordKind] = {}  # kinds keyed on another field (team keys)


def register_kind(kind: RecordKind, *, variant: bool = False) -> None:
    """Let trackers hold records of ``kind`` (the app registers the glue's kinds at start);
    a ``variant`` is the same kind keyed on another field (the team's own references)."""
    if not variant:
        _KINDS[kind.name] = kind
    _KEYED[kind.name, kind.key_field] = kind


def kind_of(tracker: Tracker) -> RecordKind | None:
    """The kind a tracker holds, keyed as the tracker is (None: not registered)."""
    return _KEYED.get((tracker.kind, tracker.key_field)) or _KINDS.get(tracker.kind)


def require_kind(tracker: Tracker) -> RecordKind:
    """The kind a tracker holds; ``ValueError`` for kinds not supported yet."""
    kind = kind_of(tracker)
    if kind is None:
        raise ValueError(f"trackers of {tracker.kind.replace('_', ' ')} are not supported yet")
    return kind


__all__ = ["RecordKind", "kind_of", "register_kind", "require_kind"]
