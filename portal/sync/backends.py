"""Open a tracker's sheet backend with the settings of the running app (config, then env)."""

from __future__ import annotations

import os

from flask import current_app, has_app_context

from sheets.backends import BackendSettings, BackendTarget, open_backend
from sheets.backends.xlsx_limits import SETTINGS, XlsxLimits
from sheets.grid import SheetBackend
from sheets.header_row import HeaderRowBackend
from sheets.line_keys import LineKeyBackend


def _setting(name: str) -> str:
    if has_app_context() and current_app.config.get(name):
        return str(current_app.config[name])
    return os.environ.get(name, "")


def _number(name: str, kind: type[int] | type[float]) -> int | float | None:
    text = _setting(name)
    return kind(text) if text else None


def xlsx_limits() -> XlsxLimits:
    """The XLSX_* settings (config, then env; unset ones keep the XlsxLimits default)."""
    defaults = XlsxLimits()
    values = {}
    for field, name in SETTINGS.items():
        default = getattr(defaults, field)
        if has_app_context() and current_app.config.get(name) is not None:
            values[field] = type(default)(current_app.config[name])
        elif os.environ.get(name):
            values[field] = type(default)(os.environ[name])
    return XlsxLimits(**values)


def backend_settings() -> BackendSettings:
    """The backends' settings: GOOGLE_SERVICE_ACCOUNT_FILE, SHEETS_API_URL,
    SHEETS_RETRY_MAX_ATTEMPTS / _MAX_SECONDS / _BASE_DELAY, XLWINGS_LICENSE_KEY and the
    XLSX_* read limits."""
    return BackendSettings(
        credentials_file=_setting("GOOGLE_SERVICE_ACCOUNT_FILE") or None,
        api_url=_setting("SHEETS_API_URL") or None,
        retry_max_attempts=_number("SHEETS_RETRY_MAX_ATTEMPTS", int),  # type: ignore[arg-type]
        retry_max_seconds=_number("SHEETS_RETRY_MAX_SECONDS", float),
        retry_base_delay=_number("SHEETS_RETRY_BASE_DELAY", float),
        xlwings_license_key=_setting("XLWINGS_LICENSE_KEY") or None,
        xlsx_limits=xlsx_limits(),
    )


def open_tracker_backend(tracker: BackendTarget, book: SheetBackend | None = None) -> SheetBackend:
    """The backend reading and writing ``tracker``'s tab (``book``, if given: a workbook
    posted from Excel), configured from the app; a tab whose headers are below row 1
    (``header_row``) is seen from its header row down, and a tab of lines without a line id
    (``line_key``) with the derived key column."""
    backend = book if book is not None else open_backend(tracker, backend_settings())
    header_row = getattr(tracker, "header_row", 1) or 1
    if header_row > 1:
        backend = HeaderRowBackend(backend, header_row)
    line_key = getattr(tracker, "line_key", None)
    if line_key:  # no line id in the sheet: the key "<order id>/<n>" is derived on read
        order = next(c.header for c in tracker.column_list() if c.field == "order_ref")
        backend = LineKeyBackend(backend, tracker.key_header, order, line_key)
    return backend
