"""Sheet backends: :func:`open_backend` picks the one a tracker names.

``xlsx`` (a local .xlsx file: calamine read, in-place XML patch), ``gsheets`` (Google Sheets
through gspread, or the local emulator with ``SHEETS_API_URL``) and ``xlwings``.
"""

from __future__ import annotations

import os
from typing import Protocol

from sheets.grid import SheetBackend


class BackendTarget(Protocol):
    """What :func:`open_backend` needs of a tracker."""

    backend: str
    location: str
    tab: str


class BackendUnavailable(RuntimeError):
    """The tracker's backend cannot run here; the message says why and what to use."""


def _setting(name: str) -> str:
    from flask import current_app, has_app_context

    if has_app_context() and current_app.config.get(name):
        return str(current_app.config[name])
    return os.environ.get(name, "")


def open_backend(tracker: BackendTarget) -> SheetBackend:
    """The backend reading and writing ``tracker``'s tab."""
    if tracker.backend == "xlsx":
        from sheets.backends.xlsx import XlsxBackend

        return XlsxBackend(os.path.expanduser(tracker.location), tracker.tab)
    if tracker.backend == "gsheets":
        from sheets.backends.gsheets import GSheetsBackend

        return GSheetsBackend(
            tracker.location,
            tracker.tab,
            credentials_file=_setting("GOOGLE_SERVICE_ACCOUNT_FILE") or None,
            api_url=_setting("SHEETS_API_URL") or None,
        )
    if tracker.backend == "xlwings":
        raise BackendUnavailable(
            "the xlwings backend needs Microsoft Excel (a Windows or macOS worker), or a live "
            "workbook posted by the xlwings client (xw.Book(json=...)) together with "
            "XLWINGS_LICENSE_KEY; neither is available here. On Linux use the xlsx backend "
            "(the default) for .xlsx files."
        )
    raise BackendUnavailable(f"unknown backend {tracker.backend!r} (xlsx, gsheets or xlwings)")
