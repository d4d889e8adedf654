"""Sheet backends: :func:`open_backend` picks the one a tracker names.

``xlsx`` (a local .xlsx file: calamine read, in-place XML patch), ``gsheets`` (Google Sheets
through gspread, or the local emulator with ``api_url``) and ``xlwings`` (Excel on a Windows
or macOS worker here; a workbook posted from Excel through ``xlwings.remote_book``). The
caller passes the settings in (:class:`BackendSettings`); nothing here reads configuration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from sheets.backends.xlsx_limits import XlsxLimits
from sheets.grid import SheetBackend


class BackendTarget(Protocol):
    """What :func:`open_backend` needs of a tracker."""

    backend: str
    location: str
    tab: str


@dataclass(frozen=True)
class BackendSettings:
    """Settings of the backends: the Google service-account key file, the Sheets API base URL
    (an emulator; Google's when blank), the retry budget of Google API calls (``None``: the
    :class:`~sheets.backends.gsheets.RetryPolicy` default), the xlwings license key and the
    bounds of an .xlsx read (``None``: the :class:`XlsxLimits` defaults)."""

    credentials_file: str | None = None
    api_url: str | None = None
    retry_max_attempts: int | None = None
    retry_max_seconds: float | None = None
    retry_base_delay: float | None = None
    xlwings_license_key: str | None = None
    xlsx_limits: XlsxLimits | None = None


class BackendUnavailable(RuntimeError):
    """The tracker's backend cannot run here; the message says why and what to use."""


def open_backend(tracker: BackendTarget, settings: BackendSettings) -> SheetBackend:
    """The backend reading and writing ``tracker``'s tab."""
    if tracker.backend == "xlsx":
        from sheets.backends.xlsx import XlsxBackend

        return XlsxBackend(
            os.path.expanduser(tracker.location), tracker.tab, limits=settings.xlsx_limits
        )
    if tracker.backend == "gsheets":
        from sheets.backends.gsheets import GSheetsBackend, RetryPolicy

        budget = {
            "max_attempts": settings.retry_max_attempts,
            "max_seconds": settings.retry_max_seconds,
            "base_delay": settings.retry_base_delay,
        }
        return GSheetsBackend(
            tracker.location,
            tracker.tab,
            credentials_file=settings.credentials_file or None,
            api_url=settings.api_url or None,
            retry=RetryPolicy(**{k: v for k, v in budget.items() if v is not None}),
        )
    if tracker.backend == "xlwings":
        # Microsoft Excel on a Windows or macOS worker (the ``excel`` queue); a workbook
        # posted by the xlwings client is opened by the caller (``xlwings.remote_book``)
        from sheets.backends.xlwings import XlwingsBackend, desktop_book

        return XlwingsBackend(desktop_book(tracker.location), tracker.tab, live=True)
    raise BackendUnavailable(f"unknown backend {tracker.backend!r} (xlsx, gsheets or xlwings)")
