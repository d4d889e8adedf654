"""The glue between the sync engine and the record kinds: rows in, service calls out.

:func:`portal_rows` is the portal side of the merge; :func:`apply_update` and
:func:`apply_create` apply the engine's plan through the kinds (service errors become row
errors and never raise). Every write uses the actor ``sheet:<tracker>``, or the person who
synced (``actor``: the xlwings client in Excel), with that person's permissions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from operator import itemgetter
from typing import Any

from portal.services.base import Actor, ConflictError, ServiceError, unit_of_work
from portal.services.transactions import each_in_savepoint, rehearsal
from portal.sync.base import Kind, Row, sheet_actor
from portal.sync.kinds import kind_for
from sheets.engine import CreateResult, RecordCreate, RecordUpdate, UpdateResult
from sheets.trackers import TrackerSpec
from sheets.values import ValueParseError, normalize, to_cell


def _header_row(spec: TrackerSpec, record: Row) -> Row:
    return {c.header: record.get(c.field) for c in spec.columns}


def portal_rows(
    spec: TrackerSpec, filter: str | None, keys: list[str] | None = None
) -> dict[str, Row]:
    """The portal side of the merge: key -> header -> typed value, every header present
    (only the records ``keys`` names, if given)."""
    kind = kind_for(spec)
    records = kind.records(filter, [c.field for c in spec.columns], keys=keys)
    headers = [c.header for c in spec.columns]
    getter = itemgetter(*(c.field for c in spec.columns))
    if len(headers) == 1:
        return {key: {headers[0]: getter(rec)} for key, rec in records.items()}
    return {key: dict(zip(headers, getter(rec), strict=True)) for key, rec in records.items()}


def new_workbook_rows(spec: TrackerSpec, filter: str | None) -> list[list[Any]]:
    """Rows for a new tracker workbook (key, mapped columns, empty status), sorted by key."""
    rows = portal_rows(spec, filter)
    return [
        [key, *(to_cell(c.type, rows[key][c.header]) for c in spec.columns), None]
        for key in sorted(rows)
    ]


def workbook_base(spec: TrackerSpec, rows: list[list[Any]]) -> dict[str, Row]:
    """The base of a tab just written from ``rows`` (:func:`new_workbook_rows`): both sides
    hold every one of these values, so the first sync merges edits against them."""
    return {
        str(row[0]): {c.header: row[i] for i, c in enumerate(spec.columns, start=1)} for row in rows
    }


def workbook_choices(spec: TrackerSpec) -> dict[str, tuple[str, ...]]:
    """header -> dropdown values for a new tracker workbook."""
    choices = kind_for(spec).choices
    return {c.header: choices[c.field] for c in spec.columns if c.field in choices}


def tab_layout(spec: TrackerSpec) -> dict[str, Any]:
    """What a new tracker tab needs besides its rows (``xlsx_init.write_tracker``,
    ``gsheets_init.init_google_tracker``): key and status headers, dropdowns."""
    return {
        "key_header": spec.key_header,
        "status_header": spec.status_header,
        "status_choices": workbook_choices(spec),
    }


def _stale_fields(spec: TrackerSpec, now: Row, expected: Mapping[str, Any]) -> list[str]:
    types = {c.field: c.type for c in spec.columns}
    stale = []
    for name, value in expected.items():
        try:
            if normalize(types[name], now.get(name)) != value:
                stale.append(name)
        except ValueParseError:
            stale.append(name)
    return stale


def apply_update(
    spec: TrackerSpec,
    filter: str | None,
    update: RecordUpdate,
    also: Callable[[], None] | None = None,
    actor: Actor | None = None,
) -> UpdateResult:
    """Apply a sheet edit through the services in one unit of work (with ``also``, if given).

    Refuses an update whose record changed in the portal since the merge read it (the next
    sync merges again). A service error becomes ``UpdateResult.error``; nothing raises.
    """
    kind = kind_for(spec)
    wanted = [c.field for c in spec.columns]
    try:
        with unit_of_work():
            now = kind.current(update.key, filter, wanted)
            stale = _stale_fields(spec, now, update.expected)
            if stale:
                raise ConflictError(_stale_message(stale))
            kind.update(update.key, update.changes, sheet_actor(spec.name, actor), spec.name)
            if also is not None:
                also()
    except ServiceError as error:
        return UpdateResult(update.key, error=error.message)
    after = kind.records(filter, wanted, keys=[update.key]).get(update.key)
    return UpdateResult(update.key, values=None if after is None else _header_row(spec, after))


BATCH_ROWS = 1000  # sheet edits applied per transaction by a kind's batch path
Patch = Callable[[list[RecordUpdate]], list[int]]  # records the base cells of applied edits
Applied = tuple[list[UpdateResult], list[int]]  # results in order, the committed patches' ids


def apply_updates(
    spec: TrackerSpec,
    filter: str | None,
    updates: Sequence[RecordUpdate],
    patch: Patch,
    actor: Actor | None = None,
) -> Applied:
    """Apply the sheet's edits; the results in order, and the ids ``patch`` returned for the
    edits that were committed.

    ``patch(applied)`` runs in the same transaction as the edits it is given (it records the
    base cells they agree on). A kind with a batch path applies :data:`BATCH_ROWS` edits per
    transaction (:func:`apply_chunk`); others, and a chunk in which a record changed while
    it was written, one edit per transaction (:func:`apply_update`). Each edit gets the same
    outcome either way.
    """
    if not kind_for(spec).batch_updates:
        return _one_by_one(spec, filter, list(updates), patch, actor)
    results: list[UpdateResult] = []
    patches: list[int] = []
    for start in range(0, len(updates), BATCH_ROWS):
        chunk = list(updates[start : start + BATCH_ROWS])
        try:
            done, made = apply_chunk(spec, filter, chunk, patch, actor)
        except ConflictError:  # a record changed meanwhile: edit by edit, each its outcome
            done, made = _one_by_one(spec, filter, chunk, patch, actor)
        results.extend(done)
        patches.extend(made)
    return results, patches


def _one_by_one(
    spec: TrackerSpec, filter: str | None, updates: list, patch: Patch, actor: Actor | None
) -> Applied:
    results: list[UpdateResult] = []
    patches: list[int] = []
    for update in updates:
        made: list[int] = []
        result = apply_update(
            spec, filter, update, lambda u=update, m=made: m.extend(patch([u])), actor
        )
        results.append(result)
        patches.extend(made if result.error is None else ())
    return results, patches


def apply_chunk(
    spec: TrackerSpec,
    filter: str | None,
    updates: list,
    patch: Patch,
    actor: Actor | None = None,
) -> Applied:
    """Apply edits through the kind's batch path in one unit of work (see
    :func:`apply_updates`); ``ConflictError`` if a record changed while it was written."""
    kind = kind_for(spec)
    wanted = [c.field for c in spec.columns]
    keys = [update.key for update in updates]
    errors: dict[str, str] = {}
    with unit_of_work():
        now = kind.records(filter, wanted, keys=keys)
        todo = []
        for update in updates:
            row = now.get(update.key)
            stale = None if row is None else _stale_fields(spec, row, update.expected)
            if row is None:
                errors[update.key] = (
                    f"{kind.name.replace('_', ' ')} record {update.key} is not in this tracker"
                )
            elif stale:
                errors[update.key] = _stale_message(stale)
            else:
                todo.append(update)
        items = [(update.key, update.changes) for update in todo]
        outcomes = kind.update_many(items, sheet_actor(spec.name, actor), spec.name)
        applied = []
        for update, error in zip(todo, outcomes, strict=True):
            if error is None:
                applied.append(update)
            else:
                errors[update.key] = error.message
        patches = patch(applied) if applied else []
    after = kind.records(filter, wanted, keys=[u.key for u in applied])
    results = [
        UpdateResult(u.key, error=errors[u.key])
        if u.key in errors
        else UpdateResult(u.key, values=_row_or_none(spec, after.get(u.key)))
        for u in updates
    ]
    return results, patches


def rehearse_updates(spec: TrackerSpec, updates: Sequence[RecordUpdate]) -> dict[int, str]:
    """The sheet edits the services would refuse, by row, with the reason: each edit applied
    as the sync applies it (the kind's batch path, or a savepoint per edit; the tracker's
    actor and its permissions, state transitions, quantities, dates, every validation) in a
    transaction that is then rolled back (``transactions.rehearsal``): nothing is written."""
    if not updates:
        return {}
    kind = kind_for(spec)
    apply = kind.update_many if kind.batch_updates else partial(Kind.update_many, kind)
    actor = sheet_actor(spec.name)
    refused: dict[int, str] = {}
    with rehearsal():
        for start in range(0, len(updates), BATCH_ROWS):
            chunk = list(updates[start : start + BATCH_ROWS])
            outcomes = apply([(u.key, u.changes) for u in chunk], actor, spec.name)
            for update, error in zip(chunk, outcomes, strict=True):
                if error is not None:
                    refused[update.row] = error.message
    return refused


def _row_or_none(spec: TrackerSpec, record: Row | None) -> Row | None:
    return None if record is None else _header_row(spec, record)


def _stale_message(stale: list[str]) -> str:
    return (
        f"{', '.join(stale)} changed in the portal during this sync; merged again on the next sync"
    )


def record_values(spec: TrackerSpec, key: str) -> Row | None:
    """header -> value of the record ``key`` (whatever the filter), for created rows."""
    rec = kind_for(spec).records(None, [c.field for c in spec.columns], keys=[key]).get(key)
    return None if rec is None else _header_row(spec, rec)


def _create(
    spec: TrackerSpec,
    create: RecordCreate,
    also: Callable[[str], None] | None,
    actor: Actor | None,
) -> str:
    """The record a blank-key row makes (in the caller's unit of work); its key."""
    kind = kind_for(spec)
    if not kind.can_create:
        raise ServiceError(f"a tracker cannot add {kind.name.replace('_', ' ')}")
    portal_owned = {c.field for c in spec.columns if c.owner == "portal"}
    values = {
        f: v
        for f, v in create.values.items()
        if f not in portal_owned or (f in kind.fields and kind.fields[f].creatable)
    }
    key = kind.create(values, sheet_actor(spec.name, actor))
    if also is not None:
        also(key)
    return key


def apply_create(
    spec: TrackerSpec,
    create: RecordCreate,
    also: Callable[[str], None] | None = None,
    actor: Actor | None = None,
) -> CreateResult:
    """Create a record from a blank-key row; ``also(key)`` runs in the same unit of work."""
    try:
        with unit_of_work():
            key = _create(spec, create, also, actor)
    except ServiceError as error:
        return CreateResult(create.row, error=error.message)
    return CreateResult(create.row, key=key, values=record_values(spec, key))


Remember = Callable[[RecordCreate, str], None]  # stores a new record's create token


def apply_creates(
    spec: TrackerSpec,
    creates: Sequence[RecordCreate],
    also: Remember | None = None,
    actor: Actor | None = None,
) -> list[CreateResult]:
    """New rows, :data:`BATCH_ROWS` records per transaction, each in a savepoint of its own
    (``transactions.each_in_savepoint``): a row the services refuse is rolled back alone
    with its reason. ``also(create, key)`` runs in the record's savepoint (its create
    token). A batch whose transaction fails is created again one row per transaction."""
    results: list[CreateResult] = []
    fields = [c.field for c in spec.columns]

    def then(create: RecordCreate) -> Callable[[str], None] | None:
        return None if also is None else partial(also, create)

    for start in range(0, len(creates), BATCH_ROWS):
        chunk = list(creates[start : start + BATCH_ROWS])
        try:
            with unit_of_work():
                made = each_in_savepoint(chunk, lambda c: _create(spec, c, then(c), actor))
        except ConflictError:  # the batch could not commit: a row per transaction
            results.extend(apply_create(spec, c, then(c), actor) for c in chunk)
            continue
        keys = [key for key in made if isinstance(key, str)]
        after = kind_for(spec).records(None, fields, keys=keys) if keys else {}
        results.extend(
            CreateResult(c.row, key=key, values=_row_or_none(spec, after.get(key)))
            if isinstance(key, str)
            else CreateResult(c.row, error=key.message)
            for c, key in zip(chunk, made, strict=True)
        )
    return results
