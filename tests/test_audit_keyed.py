"""The keyed audit chain and its checkpoints outside the database (issue 11).

The attacker of these tests can write the database (plain SQL, the head row included) and
knows the hash format from the source, but has neither the audit key nor the checkpoint file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

import config
from portal.extensions import db
from portal.models import AuditEvent, Customer
from portal.services import audit, audit_checkpoint, audit_keys, catalog
from tests.conftest import REPO
from tests.factories import SETUP, make_catalog

K1 = bytes.fromhex("11" * 32)
K2 = bytes.fromhex("22" * 32)


@pytest.fixture
def keyed(clean_db, tmp_path, monkeypatch):
    """Key ``k1`` and a checkpoint file of the test's own (also for CLI subprocesses)."""
    app = clean_db
    checkpoints = tmp_path / "audit-checkpoints.log"
    monkeypatch.setitem(app.config, "AUDIT_HMAC_KEYS", {"k1": K1})
    monkeypatch.setitem(app.config, "AUDIT_CHECKPOINT_FILE", str(checkpoints))
    monkeypatch.setitem(app.config, "AUDIT_CHECKPOINT_MAIL_TO", "")
    return app


def _cli(app, *args: str, keys: str = f"k1:{K1.hex()}") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(AUDIT_HMAC_KEYS=keys, AUDIT_CHECKPOINT_FILE=app.config["AUDIT_CHECKPOINT_FILE"])
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _more_events(count: int) -> None:
    customer = db.session.query(Customer).filter_by(code="C1").one()
    for n in range(count):
        catalog.customers.update(customer, {"name": f"Acme {n}"}, SETUP)


def _payload(event: AuditEvent, key_id: str | None) -> bytes:
    """The canonical content, as anyone reading portal/services/audit.py can build it."""
    content = {
        "prev": event.prev_hash,
        "at": event.occurred_at.isoformat(timespec="microseconds"),
        "actor": event.actor,
        "source": event.source,
        "entity": event.entity,
        "entity_id": event.entity_id,
        "action": event.action,
        "changes": event.changes,
    }
    if key_id is not None:
        content["key"] = key_id
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def _forge(hasher, *, key_id: str | None, start: int = 0, actor: str = "mallory") -> None:
    """Rewrite every event from the ``start``-th on (actor changed) with plain SQL and
    recompute their hashes, the links and the head row with ``hasher(payload)``."""
    events = db.session.query(AuditEvent).order_by(AuditEvent.id).all()
    previous = events[start - 1].hash if start else audit.GENESIS_HASH
    rows = []
    for event in events[start:]:
        db.session.expunge(event)
        event.actor, event.prev_hash = actor, previous
        previous = hasher(_payload(event, key_id))
        rows.append({"id": event.id, "actor": actor, "p": event.prev_hash, "h": previous})
    db.session.execute(
        text("UPDATE audit_event SET actor = :actor, prev_hash = :p, hash = :h WHERE id = :id"),
        rows,
    )
    db.session.execute(
        text("UPDATE audit_event SET key_id = :k WHERE id >= :id"),
        {"k": key_id, "id": rows[0]["id"]},
    )
    db.session.execute(
        text("UPDATE audit_chain_head SET last_event_id = :id, last_hash = :h"),
        {"id": events[-1].id, "h": previous},
    )
    db.session.commit()


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _first_id() -> int:
    return db.session.query(AuditEvent.id).order_by(AuditEvent.id).first().id


def test_events_carry_the_current_key_id_and_an_hmac(keyed) -> None:
    make_catalog()
    events = db.session.query(AuditEvent).order_by(AuditEvent.id).all()
    assert {event.key_id for event in events} == {"k1"}
    for event in events:
        assert event.hash == hmac.new(K1, _payload(event, "k1"), hashlib.sha256).hexdigest()
        assert event.hash != _sha256(_payload(event, "k1"))
    result = audit.verify()
    assert result.ok and result.checked == len(events) and result.legacy == 0


def test_recomputing_the_chain_with_unkeyed_sha256_is_detected(keyed) -> None:
    make_catalog()
    first = _first_id()
    _forge(_sha256, key_id="k1")
    result = audit.verify()
    assert not result.ok and result.bad_event_id == first
    assert "hash mismatch" in result.problem
    done = _cli(keyed, "audit", "verify")
    assert done.returncode == 1 and f"event {first}" in done.stderr, done.stderr


def test_recomputing_part_of_the_chain_as_legacy_unkeyed_events_is_detected(keyed) -> None:
    make_catalog()
    target = db.session.query(AuditEvent.id).order_by(AuditEvent.id).offset(3).first().id
    _forge(_sha256, key_id=None, start=3)
    result = audit.verify()
    assert not result.ok and result.bad_event_id == target
    assert "no key id after keyed events" in result.problem


def test_downgrading_the_whole_chain_to_legacy_is_caught_by_a_checkpoint(keyed) -> None:
    make_catalog()
    assert audit.checkpoint()[1] is not None
    _more_events(2)
    _forge(_sha256, key_id=None)
    result = audit.verify()
    assert not result.ok and result.bad_checkpoint == 1
    assert "was rewritten" in result.problem
    # Without the checkpoint the all-legacy forgery would pass: the checkpoint is what holds.
    assert audit.verify(checkpoints=False).ok


def test_recomputing_with_a_wrong_key_is_detected(keyed) -> None:
    make_catalog()
    first = _first_id()
    wrong = bytes.fromhex("33" * 32)
    _forge(lambda p: hmac.new(wrong, p, hashlib.sha256).hexdigest(), key_id="k1")
    result = audit.verify()
    assert not result.ok and result.bad_event_id == first and "key 'k1'" in result.problem


def test_an_event_naming_an_unknown_key_is_reported(keyed) -> None:
    make_catalog()
    first = _first_id()
    _forge(lambda p: hmac.new(K2, p, hashlib.sha256).hexdigest(), key_id="k9")
    result = audit.verify()
    assert not result.ok and result.bad_event_id == first
    assert "'k9' is not in AUDIT_HMAC_KEYS" in result.problem


def test_deleting_the_latest_events_and_fixing_the_head_is_caught_by_a_checkpoint(keyed) -> None:
    make_catalog()

    def cut_latest_two() -> int:
        last = db.session.query(AuditEvent.id).order_by(AuditEvent.id.desc()).first().id
        db.session.execute(text("DELETE FROM audit_event WHERE id >= :id"), {"id": last - 1})
        kept = db.session.get(AuditEvent, last - 2)
        db.session.execute(
            text("UPDATE audit_chain_head SET last_event_id = :id, last_hash = :h"),
            {"id": kept.id, "h": kept.hash},
        )
        db.session.commit()
        return last

    cut_latest_two()
    assert audit.verify().ok  # without a checkpoint this is invisible: the chain is consistent
    _more_events(3)
    result, point = audit.checkpoint()
    assert result.ok and point.event_id == result.last_id
    last = cut_latest_two()
    result = audit.verify()
    assert not result.ok and result.bad_checkpoint == 1 and result.bad_event_id == last
    assert "the latest events were removed" in result.problem
    done = _cli(keyed, "audit", "verify")
    assert done.returncode == 1 and "checkpoint line 1" in done.stderr, done.stderr
    assert f"event {last}" in done.stderr


def test_key_rotation_keeps_old_events_and_checkpoints_verifiable(keyed, monkeypatch) -> None:
    make_catalog()
    audit.checkpoint()
    old = db.session.query(AuditEvent.id).count()
    monkeypatch.setitem(keyed.config, "AUDIT_HMAC_KEYS", {"k2": K2, "k1": K1})
    _more_events(2)
    ids = [e.key_id for e in db.session.query(AuditEvent).order_by(AuditEvent.id)]
    assert ids == ["k1"] * old + ["k2"] * 2
    result, point = audit.checkpoint()
    assert result.ok and result.checkpoints == 1 and point.key_id == "k2"
    result = audit.verify()
    assert result.ok and result.checked == old + 2 and result.checkpoints == 2
    done = _cli(keyed, "audit", "verify", keys=f"k2:{K2.hex()},k1:{K1.hex()}")
    assert done.returncode == 0 and "2 checkpoints hold" in done.stdout, done.stderr
    # Dropping the old key too early is reported, naming the first event it signed.
    monkeypatch.setitem(keyed.config, "AUDIT_HMAC_KEYS", {"k2": K2})
    result = audit.verify()
    assert not result.ok and result.bad_event_id == _first_id()
    assert "'k1' is not in AUDIT_HMAC_KEYS" in result.problem


def _rewrite_line(path: Path, number: int, change) -> None:
    lines = path.read_text().splitlines()
    data = json.loads(lines[number - 1])
    change(data)
    lines[number - 1] = json.dumps(data)
    path.write_text("\n".join(lines) + "\n")


def test_a_tampered_checkpoint_line_is_reported(keyed) -> None:
    make_catalog()
    audit.checkpoint()
    _more_events(1)
    audit.checkpoint()
    path = Path(keyed.config["AUDIT_CHECKPOINT_FILE"])
    assert audit.verify().checkpoints == 2
    _rewrite_line(path, 2, lambda data: data.update(event_id=data["event_id"] - 1))
    result = audit.verify()
    assert not result.ok and result.bad_checkpoint == 2 and result.checkpoints == 1
    assert "bad signature" in result.problem
    done = _cli(keyed, "audit", "verify")
    assert done.returncode == 1 and "checkpoint line 2" in done.stderr, done.stderr


def test_checkpoint_lines_signed_with_other_keys_or_unreadable_are_reported(keyed) -> None:
    make_catalog()
    audit.checkpoint()
    path = Path(keyed.config["AUDIT_CHECKPOINT_FILE"])
    _rewrite_line(path, 1, lambda data: data.update(key_id="k7"))
    assert "'k7' is not in AUDIT_HMAC_KEYS" in audit.verify().problem
    path.write_text("not json\n")
    result = audit.verify()
    assert result.bad_checkpoint == 1 and "not a checkpoint record" in result.problem


def _legacy_events(monkeypatch) -> None:
    """Write events as the code before keyed hashing did (no key id, plain SHA-256)."""
    with monkeypatch.context() as patch:
        patch.setattr(audit_keys, "current_id", lambda: None)
        make_catalog()


def test_legacy_unkeyed_events_still_verify_and_are_counted(keyed, monkeypatch) -> None:
    _legacy_events(monkeypatch)
    legacy = db.session.query(AuditEvent).order_by(AuditEvent.id).all()
    assert legacy and {event.key_id for event in legacy} == {None}
    for event in legacy:  # the pre-migration definition, verbatim
        assert event.hash == _sha256(_payload(event, None))
    _more_events(2)
    result = audit.verify()
    assert result.ok and result.legacy == len(legacy) and result.checked == len(legacy) + 2
    audit.checkpoint()
    done = _cli(keyed, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert f"({len(legacy)} legacy unkeyed), 1 checkpoints hold" in done.stdout
    # A legacy event altered in place still fails its own (unkeyed) hash.
    db.session.execute(
        text("UPDATE audit_event SET actor = 'mallory' WHERE id = :id"), {"id": legacy[2].id}
    )
    db.session.commit()
    result = audit.verify()
    assert not result.ok and result.bad_event_id == legacy[2].id


def test_keyed_events_rewritten_as_legacy_after_a_legacy_checkpoint_are_detected(
    keyed, monkeypatch
) -> None:
    _legacy_events(monkeypatch)
    legacy = db.session.query(AuditEvent.id).count()
    audit.checkpoint()  # taken right after the upgrade: every event so far is legacy
    _more_events(3)
    _forge(_sha256, key_id=None, start=legacy)
    result = audit.verify()
    assert not result.ok and result.bad_checkpoint == 1
    assert f"{legacy + 3} legacy unkeyed events" in result.problem
    assert audit.verify(checkpoints=False).ok


def test_a_broken_chain_gets_no_checkpoint(keyed) -> None:
    make_catalog()
    db.session.execute(
        text("UPDATE audit_event SET actor = 'mallory' WHERE id = :id"), {"id": _first_id()}
    )
    db.session.commit()
    result, point = audit.checkpoint()
    assert not result.ok and point is None
    assert not Path(keyed.config["AUDIT_CHECKPOINT_FILE"]).exists()
    done = _cli(keyed, "audit", "checkpoint")
    assert done.returncode == 1 and "BROKEN" in done.stderr


def test_checkpoint_cli_and_daily_job_append_signed_lines_and_mail_them(keyed, monkeypatch):
    from jobs.maintenance import checkpoint_audit_chain
    from jobs.schedule import PERIODIC

    assert PERIODIC["checkpoint_audit_chain"][0] == 86_400
    make_catalog()
    done = _cli(keyed, "audit", "checkpoint")
    assert done.returncode == 0 and "checkpoint appended" in done.stdout, done.stderr
    sent = []

    class FakeSMTP:
        def __init__(self, host, port, timeout):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def send_message(self, message):
            sent.append(message)

    monkeypatch.setattr("portal.services.notifications.smtplib.SMTP", FakeSMTP)
    monkeypatch.setitem(keyed.config, "AUDIT_CHECKPOINT_MAIL_TO", "auditors@ob.test")
    outcome = checkpoint_audit_chain()
    assert outcome["ok"] and outcome["mailed"] == "auditors@ob.test"
    lines = Path(keyed.config["AUDIT_CHECKPOINT_FILE"]).read_text().splitlines()
    assert len(lines) == 2 and lines[1] == outcome["line"]
    assert sent and sent[0]["To"] == "auditors@ob.test" and lines[1] in sent[0].get_content()
    checkpoint = audit_checkpoint.parse(lines[1])
    assert checkpoint.key_id == "k1" and checkpoint.count == checkpoint.event_id
    assert audit.verify().checkpoints == 2


def test_production_requires_an_audit_key_and_reads_a_key_file(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ORDERBRIDGE_MODE", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.delenv("AUDIT_HMAC_KEYS", raising=False)
    monkeypatch.delenv("AUDIT_KEY_FILE", raising=False)
    with pytest.raises(config.ConfigError, match="AUDIT_HMAC_KEYS is not set") as error:
        config.build_settings()
    assert "\n" not in str(error.value)
    key_file = tmp_path / "audit.keys"
    key_file.write_text(f"# current first\nk2:{K2.hex()}\nk1:{K1.hex()}\n")
    monkeypatch.setenv("AUDIT_KEY_FILE", str(key_file))
    assert list(config.build_settings()["AUDIT_HMAC_KEYS"].items()) == [("k2", K2), ("k1", K1)]
    monkeypatch.setenv("AUDIT_HMAC_KEYS", f"k3:{K1.hex()}")
    assert config.build_settings()["AUDIT_HMAC_KEYS"] == {"k3": K1}
    for bad in ("k1", "k1:zz", "k1:abcd", f":{K1.hex()}", f"k1:{K1.hex()},k1:{K2.hex()}"):
        monkeypatch.setenv("AUDIT_HMAC_KEYS", bad)
        with pytest.raises(config.ConfigError, match="AUDIT_HMAC_KEYS") as error:
            config.build_settings()
        assert K1.hex() not in str(error.value)
    monkeypatch.setenv("ORDERBRIDGE_MODE", "demo")
    monkeypatch.delenv("AUDIT_HMAC_KEYS")
    monkeypatch.delenv("AUDIT_KEY_FILE")
    assert list(config.build_settings()["AUDIT_HMAC_KEYS"]) == ["dev"]
