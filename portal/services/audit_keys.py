"""The audit trail's HMAC keys: secrets kept outside the database (``AUDIT_HMAC_KEYS``).

The setting maps key ids to secrets, the current key first. New events and checkpoints are
signed with the current key and record its id; verification picks each one's key by its id,
so rotating is adding a new key at the front and keeping the old ones for verification.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app

import config


class UnknownKeyError(LookupError):
    """An event or checkpoint names a key id that is not configured."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"key id {key_id!r} is not in AUDIT_HMAC_KEYS")
        self.key_id = key_id


def keys() -> dict[str, bytes]:
    """The configured keys by id, the current one first."""
    configured = current_app.config["AUDIT_HMAC_KEYS"]
    if isinstance(configured, str):  # an override given as the environment's text form
        configured = config.parse_audit_keys(configured)
    if not configured:
        raise config.ConfigError(f"AUDIT_HMAC_KEYS is empty: {config.AUDIT_KEYS_HELP}.")
    return configured


def current_id() -> str:
    """The id of the key new events and checkpoints are signed with."""
    return next(iter(keys()))


def digest(key_id: str | None, payload: bytes) -> str:
    """HMAC-SHA256 of ``payload`` with key ``key_id``; plain SHA-256 for ``None`` (legacy)."""
    if key_id is None:
        return hashlib.sha256(payload).hexdigest()
    secret = keys().get(key_id)
    if secret is None:
        raise UnknownKeyError(key_id)
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two hex digests."""
    return a is not None and b is not None and hmac.compare_digest(a, b)
