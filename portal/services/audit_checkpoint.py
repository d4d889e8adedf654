"""Checkpoints of the audit chain, kept outside the database (``AUDIT_CHECKPOINT_FILE``).

A checkpoint is one JSON line naming the chain's last event (id, hash), when it was taken,
how many events (and legacy unkeyed events) the chain had, and an HMAC of all that with the
current audit key. Lines are only ever appended. Someone who can write the database but not
this file (or the auditors' mailboxes it is sent to) cannot make the chain agree with it
again: :func:`check` wants every checkpointed event still on the chain with the same hash.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, utcnow
from portal.services import audit_keys

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain head at one moment, signed with an audit key."""

    event_id: int
    hash: str
    count: int
    legacy: int
    at: str
    key_id: str
    sig: str = ""

    def payload(self) -> bytes:
        fields = asdict(self)
        del fields["sig"]
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Problem:
    """A checkpoint that does not hold: its line number, the event it names, why."""

    line: int
    event_id: int | None
    text: str


def path() -> Path:
    return Path(current_app.config["AUDIT_CHECKPOINT_FILE"])


def sign(event_id: int, hash_: str, count: int, legacy: int) -> Checkpoint:
    """A checkpoint of the head (``event_id``, ``hash_``) signed with the current key."""
    key_id = audit_keys.current_id()
    unsigned = Checkpoint(
        event_id, hash_, count, legacy, utcnow().isoformat(timespec="seconds"), key_id
    )
    sig = audit_keys.digest(key_id, unsigned.payload())
    return Checkpoint(event_id, hash_, count, legacy, unsigned.at, key_id, sig)


def append(checkpoint: Checkpoint) -> Path:
    """Append ``checkpoint`` as one line to the checkpoint file and flush it to disk."""
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as file:
        file.write(checkpoint.line() + "\n")
        file.flush()
        os.fsync(file.fileno())
    return target


def parse(text: str) -> Checkpoint | str:
    """One line → its checkpoint if the signature holds, else what is wrong with it."""
    try:
        data = json.loads(text)
        checkpoint = Checkpoint(
            event_id=int(data["event_id"]),
            hash=str(data["hash"]),
            count=int(data["count"]),
            legacy=int(data["legacy"]),
            at=str(data["at"]),
            key_id=str(data["key_id"]),
            sig=str(data["sig"]),
        )
    except (ValueError, KeyError, TypeError):
        return "is not a checkpoint record"
    try:
        expected = audit_keys.digest(checkpoint.key_id, checkpoint.payload())
    except audit_keys.UnknownKeyError as error:
        return f"is signed with a {error}"
    if not audit_keys.same(expected, checkpoint.sig):
        return "has a bad signature: the checkpoint file was altered"
    return checkpoint


def read() -> list[tuple[int, Checkpoint | str]]:
    """Every non-blank line of the checkpoint file (none if it does not exist), parsed."""
    try:
        lines = path().read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [(number, parse(text)) for number, text in enumerate(lines, 1) if text.strip()]


def _hashes(event_ids: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        rows = db.session.execute(
            select(AuditEvent.id, AuditEvent.hash).where(AuditEvent.id.in_(chunk))
        )
        found.update({event_id: hash_ for event_id, hash_ in rows})
    return found


def _mismatch(
    number: int, checkpoint: Checkpoint, chain_end: int, legacy: int, hashes: dict[int, str]
) -> Problem | None:
    where = f"checkpoint line {number} (taken {checkpoint.at})"
    if checkpoint.event_id > chain_end:
        return Problem(
            number,
            checkpoint.event_id,
            f"{where} names event {checkpoint.event_id}, but the chain ends at event "
            f"{chain_end}: the latest events were removed",
        )
    on_chain = hashes.get(checkpoint.event_id, GENESIS_HASH if checkpoint.event_id == 0 else None)
    if not audit_keys.same(on_chain, checkpoint.hash):
        return Problem(
            number,
            checkpoint.event_id,
            f"event {checkpoint.event_id} no longer has the hash {where} recorded: the chain "
            "was rewritten",
        )
    if checkpoint.legacy != legacy:
        return Problem(
            number,
            None,
            f"the chain has {legacy} legacy unkeyed events but {where} recorded "
            f"{checkpoint.legacy}: events were rewritten as unkeyed",
        )
    return None


def check(chain_end: int, legacy: int) -> tuple[int, Problem | None]:
    """Hold every checkpoint against the (verified) chain: how many held, the first failure.

    ``chain_end`` is the id of the chain's last event and ``legacy`` its number of unkeyed
    events, as the chain walk found them.
    """
    entries = read()
    wanted = {c.event_id for _, c in entries if isinstance(c, Checkpoint)}
    hashes = _hashes(sorted(event_id for event_id in wanted if 0 < event_id <= chain_end))
    for held, (number, entry) in enumerate(entries):
        if isinstance(entry, str):
            return held, Problem(number, None, f"checkpoint line {number} {entry}")
        problem = _mismatch(number, entry, chain_end, legacy, hashes)
        if problem is not None:
            return held, problem
    return len(entries), None
