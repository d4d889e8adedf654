"""Google Sheets tracker backend over gspread: one values read, one values write per sync.

``read()`` is ONE ``values.get`` of the whole tab (UNFORMATTED_VALUE, dates as serial numbers);
``write()`` is ONE ``values:batchUpdate`` (RAW) holding only the changed cells, plus one
``spreadsheets:batchUpdate`` only when the sync appends rows past the grid or dates in new rows.
Every call retries 429/5xx with a bounded exponential backoff with jitter. See
docs/gsheets-backend.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

import gspread
import requests
from google.oauth2.service_account import Credentials
from gspread.exceptions import APIError
from gspread.http_client import BackOffHTTPClient, HTTPClient
from gspread.urls import SPREADSHEET_VALUES_URL
from gspread.utils import a1_to_rowcol, rowcol_to_a1
from requests.adapters import HTTPAdapter

from sheets.grid import CellBlock, CellValue, CellWrite, SheetSnapshot, cell_blocks

SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
GOOGLE_HOSTS = ("https://sheets.googleapis.com", "https://www.googleapis.com")
RETRYABLE = frozenset({429, 500, 502, 503, 504})
READ_PARAMS = {
    "valueRenderOption": "UNFORMATTED_VALUE",
    "dateTimeRenderOption": "SERIAL_NUMBER",
    "majorDimension": "ROWS",
}
DATE_FORMAT = {"type": "DATE", "pattern": "yyyy-mm-dd"}
DATETIME_FORMAT = {"type": "DATE_TIME", "pattern": "yyyy-mm-dd hh:mm:ss"}
_EPOCH = date(1899, 12, 30)
_EPOCH_DT = datetime(1899, 12, 30)
_MAX_EXACT_INT = 2**53
_MAX_GAP = 2  # unchanged cells (sent as null = "leave alone") allowed inside one range

T = TypeVar("T")


class SheetsError(RuntimeError):
    """A Google Sheets call failed for good; nothing of this call was applied."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class SheetsQuotaError(SheetsError):
    """429 RESOURCE_EXHAUSTED until the retry budget ran out: try the sync again later."""


class SheetsUnavailableError(SheetsError):
    """5xx or connection failures until the retry budget ran out: try the sync again later."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter for 429, 5xx and connection errors.

    Attempt ``n`` (0-based) that fails waits ``min(max_delay, base_delay * 2**n)`` scaled by a
    random factor in [0.5, 1] (or the server's ``Retry-After`` if longer). It gives up after
    ``max_attempts`` attempts, or as soon as the next wait would end past ``max_seconds`` since
    the first attempt.
    """

    max_attempts: int = 7
    max_seconds: float = 90.0
    base_delay: float = 1.0
    max_delay: float = 32.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0-based)."""
        cap = min(self.max_delay, self.base_delay * 2**attempt)
        wait = cap * (0.5 + random.random() / 2)
        return max(wait, retry_after or 0.0)

    def run(self, what: str, call: Callable[[], T]) -> T:
        """``call()``, retried on retryable failures; raises a :class:`SheetsError` subclass."""
        start = self.clock()
        attempt = 0
        while True:
            try:
                return call()
            except APIError as exc:
                status = exc.response.status_code
                if status not in RETRYABLE:
                    raise
                error: Exception = exc
                retry_after = _retry_after(exc.response)
            except (requests.ConnectionError, requests.Timeout) as exc:
                status, error, retry_after = None, exc, None
            attempt += 1
            wait = self.delay(attempt - 1, retry_after)
            elapsed = self.clock() - start
            if attempt >= self.max_attempts or elapsed + wait > self.max_seconds:
                kind = SheetsQuotaError if status == 429 else SheetsUnavailableError
                raise kind(
                    f"{what}: gave up after {attempt} attempt(s) in {elapsed:.1f} s "
                    f"(retry budget {self.max_attempts} attempts / {self.max_seconds:g} s); "
                    f"last error: {error}. Nothing of this call was applied; retry later.",
                    status=status,
                    attempts=attempt,
                ) from error
            self.sleep(wait)


def _retry_after(response: requests.Response | None) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class SheetMeta:
    """What a sync needs from spreadsheets.get: the tab's numeric id and its exact title."""

    sheet_id: int
    title: str


class MetadataCache:
    """Process-wide ``(spreadsheet key, tab) -> SheetMeta`` with a time to live (thread safe).

    Grid size and header row are not cached: every values read returns them for free (the
    header is ``rows[0]``; the echoed range spans the grid), so caching would only go stale.
    """

    def __init__(self, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[float, SheetMeta]] = {}

    def get(self, key: str, tab: str) -> SheetMeta | None:
        with self._lock:
            entry = self._entries.get((key, tab))
            if entry is None or self.clock() - entry[0] > self.ttl:
                return None
            return entry[1]

    def put(self, key: str, tab: str, meta: SheetMeta) -> None:
        with self._lock:
            self._entries[key, tab] = (self.clock(), meta)

    def invalidate(self, key: str, tab: str) -> None:
        with self._lock:
            self._entries.pop((key, tab), None)


METADATA_CACHE = MetadataCache()


class GoogleApiRouter(HTTPAdapter):
    """Transport adapter sending ``https://sheets.googleapis.com/...`` and
    ``https://www.googleapis.com/...`` to another base URL (SHEETS_API_URL: an emulator)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        for host in GOOGLE_HOSTS:
            if request.url and request.url.startswith(host + "/"):
                request.url = self.base_url + request.url[len(host) :]
                break
        return super().send(request, **kwargs)


def route_google_apis(session: requests.Session, api_url: str) -> None:
    """Send this session's Google API traffic to ``api_url`` (path kept, host replaced)."""
    adapter = GoogleApiRouter(api_url)
    for host in GOOGLE_HOSTS:
        session.mount(host + "/", adapter)


def build_client(credentials_file: str, api_url: str | None = None) -> gspread.Client:
    """A gspread client logged in with a service-account key file, plain (non-retrying)
    HTTP client, 10 s connect / 120 s read timeouts; ``api_url`` reroutes all API traffic."""
    creds = Credentials.from_service_account_file(credentials_file, scopes=list(SCOPES))
    client = gspread.Client(auth=creds, http_client=HTTPClient)
    client.set_timeout((10, 120))
    if api_url:
        route_google_apis(client.http_client.session, api_url)
    return client


def quote_tab(title: str) -> str:
    """A tab title as an A1 range prefix, always quoted (``'Bob''s'``)."""
    return "'" + title.replace("'", "''") + "'"


def encode_cell(value: CellValue) -> str | int | float | bool:
    """The JSON value a RAW write stores for ``value``.

    ``None`` -> ``""`` (clears the cell); dates -> serial day numbers (1899-12-30 epoch);
    aware datetimes -> UTC serials, naive ones are taken as UTC; ``Decimal`` and ``int`` ->
    numbers, or their exact text when a double would lose digits (Sheets stores doubles).
    """
    if value is None:
        return ""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= _MAX_EXACT_INT else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be stored in a cell")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value!r} cannot be stored in a cell")
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return (value - _EPOCH_DT).total_seconds() / 86400
    if isinstance(value, date):
        return (value - _EPOCH).days
    raise TypeError(f"cannot write a {type(value).__name__} to a cell")


def cell_ranges(cells: dict[tuple[int, int], Any]) -> list[CellBlock]:
    """Group ``{(row, col): json_value}`` into rectangles (:func:`~sheets.grid.cell_blocks`),
    bridging gaps of up to two unchanged cells with ``None``, which a RAW write leaves alone."""
    return cell_blocks(cells, max_gap=_MAX_GAP)


def _grid_of(echoed: str) -> tuple[int, int]:
    """(rows, cols) of the grid from the range Google echoes for a whole-tab read."""
    end = echoed.rsplit("!", 1)[-1].split(":")[-1]
    return a1_to_rowcol(end)


class GSheetsBackend:
    """One tab of a Google spreadsheet, read and written through gspread's HTTP client."""

    def __init__(
        self,
        spreadsheet_key: str,
        tab: str,
        *,
        credentials_file: str | None = None,
        api_url: str | None = None,
        client: gspread.Client | None = None,
        retry: RetryPolicy | None = None,
        metadata_cache: MetadataCache | None = None,
    ) -> None:
        if client is None:
            if credentials_file is None:
                raise ValueError("GSheetsBackend needs credentials_file or client")
            client = build_client(credentials_file, api_url)
        elif api_url:
            route_google_apis(client.http_client.session, api_url)
        if isinstance(client.http_client, BackOffHTTPClient):
            raise ValueError(
                "pass a client with gspread's plain HTTPClient: BackOffHTTPClient retries "
                "forever, GSheetsBackend retries with a bounded RetryPolicy"
            )
        self.spreadsheet_key = spreadsheet_key
        self.tab = tab
        self.client = client
        self.http: HTTPClient = client.http_client
        self.retry = retry or RetryPolicy()
        self.cache = metadata_cache if metadata_cache is not None else METADATA_CACHE

    def __repr__(self) -> str:
        return f"GSheetsBackend({self.spreadsheet_key!r}, {self.tab!r})"

    # --- metadata ----------------------------------------------------------------------

    def metadata(self) -> SheetMeta:
        """The tab's id (cached; a cold cache costs one spreadsheets.get)."""
        meta = self.cache.get(self.spreadsheet_key, self.tab)
        if meta is not None:
            return meta
        data = self.retry.run(
            f"reading the tabs of spreadsheet {self.spreadsheet_key}",
            lambda: self.http.fetch_sheet_metadata(
                self.spreadsheet_key, params={"fields": "sheets.properties(sheetId,title)"}
            ),
        )
        props = [s["properties"] for s in data.get("sheets", [])]
        match = [p for p in props if p["title"] == self.tab] or [
            p for p in props if p["title"].casefold() == self.tab.casefold()
        ]
        if not match:
            raise KeyError(f"no tab named {self.tab!r} in spreadsheet {self.spreadsheet_key}")
        meta = SheetMeta(int(match[0].get("sheetId", 0)), match[0]["title"])
        self.cache.put(self.spreadsheet_key, self.tab, meta)
        return meta

    # --- read --------------------------------------------------------------------------

    def read(self) -> SheetSnapshot:
        """The whole tab: ``rows[0]`` is the header; numbers, booleans and text as stored,
        date/time cells as serial numbers, empty cells ``None``; trailing empties trimmed."""
        url = SPREADSHEET_VALUES_URL % (self.spreadsheet_key, quote(quote_tab(self.tab)))
        try:
            response = self.retry.run(
                f"reading {self.tab!r} of spreadsheet {self.spreadsheet_key}",
                lambda: self.http.request("get", url, params=READ_PARAMS),
            )
        except APIError as exc:
            if exc.code == 400 and "Unable to parse range" in str(exc):
                self.cache.invalidate(self.spreadsheet_key, self.tab)
                raise KeyError(
                    f"no tab named {self.tab!r} in spreadsheet {self.spreadsheet_key}"
                ) from exc
            raise
        body = response.content
        data = json.loads(body)
        rows: list[list[CellValue]] = data.get("values", [])
        for row in rows:
            if "" in row:  # an empty cell inside a row
                row[:] = [None if v == "" else v for v in row]
        grid = _grid_of(data["range"])
        fingerprint = "sha256:" + hashlib.sha256(body).hexdigest()
        meta = {"spreadsheet_key": self.spreadsheet_key, "tab": self.tab, "grid": grid}
        return SheetSnapshot(rows, fingerprint, meta)

    # --- write -------------------------------------------------------------------------

    def write(self, writes: Sequence[CellWrite], expected: SheetSnapshot) -> None:
        """Set exactly these cells with ONE values:batchUpdate (RAW); nothing else is touched.

        There is no version check in the Sheets API: a person's edit to any other cell since
        ``expected`` was read is kept because only the target cells are sent. Dates are written
        as serial numbers and shown as dates by the column's number format (a tracker made by
        :func:`~sheets.backends.gsheets_init.init_google_tracker` formats its spare rows), so a
        sync never spends a call on formatting. Only rows past the grid cost one more call
        (``appendDimension``), and init leaves spare rows so that is rare.
        """
        if not writes:
            return
        cells: dict[tuple[int, int], Any] = {}
        for w in writes:
            if w.row < 1 or w.col < 1 or w.col > 18_278:
                raise ValueError(f"cell ({w.row}, {w.col}) is outside a sheet")
            cells[w.row, w.col] = encode_cell(w.value)
        self._grow_grid(cells, expected)
        q = quote_tab(self.tab)
        data = []
        for b in cell_ranges(cells):
            start = rowcol_to_a1(b.row, b.col)
            end = rowcol_to_a1(b.row + len(b.values) - 1, b.col + b.width - 1)
            where = f"{q}!{start}" if start == end else f"{q}!{start}:{end}"
            data.append({"range": where, "values": b.values})
        body = {"valueInputOption": "RAW", "data": data}
        self.retry.run(
            f"writing {len(cells)} cell(s) to {self.tab!r} of {self.spreadsheet_key}",
            lambda: self.http.values_batch_update(self.spreadsheet_key, body),
        )

    def _grow_grid(self, cells: dict[tuple[int, int], Any], expected: SheetSnapshot) -> None:
        """Add rows/columns so ``cells`` fit the grid: one batchUpdate, only when needed."""
        grid = expected.meta.get("grid")  # None: not read by this backend, do not grow
        rows, cols = grid if isinstance(grid, tuple) else (math.inf, math.inf)
        need_rows = max(r for r, _ in cells)
        need_cols = max(c for _, c in cells)
        if need_rows <= rows and need_cols <= cols:
            return
        meta = self.metadata()
        requests_: list[dict[str, Any]] = []
        for dimension, have, need in (("ROWS", rows, need_rows), ("COLUMNS", cols, need_cols)):
            if need > have:
                requests_.append(
                    {
                        "appendDimension": {
                            "sheetId": meta.sheet_id,
                            "dimension": dimension,
                            "length": need - have,
                        }
                    }
                )
        try:
            self.retry.run(
                f"adding rows to {self.tab!r} in {self.spreadsheet_key}",
                lambda: self.http.batch_update(self.spreadsheet_key, {"requests": requests_}),
            )
        except APIError as exc:
            if exc.code == 400:  # e.g. the tab was deleted and re-created: new sheet id
                self.cache.invalidate(self.spreadsheet_key, self.tab)
            raise
