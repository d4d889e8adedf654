"""The emulator's state behind one lock: spreadsheets, tokens, quotas, faults and the log."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from .store import ApiError, Spreadsheet, new_id

READ_KINDS = ("metadata_read", "values_read")
WRITE_KINDS = ("values_write", "batch_update", "create")
LOG_SIZE = 10_000  # request log entries kept (counters are exact)


@dataclass
class Config:
    """Behaviour knobs, changeable at runtime through ``POST /_admin/config``."""

    quota_reads: int = 60
    quota_writes: int = 60
    quota_window_s: float = 60.0
    auth_required: bool = True
    default_user: str = "anonymous@emulator.local"


class Emulator:
    """All emulator state behind one lock."""

    def __init__(self, config: Config | None = None) -> None:
        self.lock = threading.RLock()
        self.idle = threading.Condition(self.lock)  # notified when a counted request ends
        self.in_flight = 0  # API requests started and not yet counted
        self.config = config or Config()
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.reset()

    def reset(self) -> None:
        """Forget spreadsheets, quotas, faults and the request log (tokens stay valid)."""
        with self.lock:
            self.spreadsheets.clear()
            self.quota: dict[tuple[str, str], deque[float]] = {}
            self.faults: list[dict[str, Any]] = []
            self.counters: Counter[str] = Counter()
            self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)

    # --- helpers used by the handler and by tests --------------------------------------

    def begin_request(self) -> None:
        """An API request starts: it is counted by :meth:`end_request`, after its reply."""
        with self.lock:
            self.in_flight += 1

    def end_request(self, entry: dict[str, Any]) -> None:
        """Count a finished API request and log ``entry``; wake :meth:`wait_idle`."""
        with self.lock:
            self.counters[entry["kind"]] += 1
            self.log.append(entry)
            self.in_flight -= 1
            self.idle.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every API request started so far is counted (False on timeout)."""
        with self.lock:
            return self.idle.wait_for(lambda: self.in_flight == 0, timeout)

    def create_spreadsheet(
        self, title: str, owner: str, sid: str | None = None, first_sheet: dict | None = None
    ) -> Spreadsheet:
        """A new spreadsheet with one sheet (id 0, 1000 x 26 unless first_sheet says)."""
        with self.lock:
            ss = Spreadsheet(sid or new_id(), title, owner)
            ss.add_sheet(first_sheet or {"title": "Sheet1"}, sheet_id=0)
            self.spreadsheets[ss.id] = ss
            return ss

    def take_fault(self, kind: str) -> dict[str, Any] | None:
        """Consume one pending injected fault matching this request kind, if any."""
        with self.lock:
            for fault in self.faults:
                if fault.get("kind") in (None, kind) and fault["remaining"] > 0:
                    fault["remaining"] -= 1
                    if fault["remaining"] == 0:
                        self.faults.remove(fault)
                    return dict(fault)
        return None

    def charge_quota(self, user: str, kind: str) -> None:
        """Count one request against the per-user per-minute quota, 429 when it is used up."""
        if kind in READ_KINDS:
            bucket, limit, label = "read", self.config.quota_reads, "Read"
        elif kind in WRITE_KINDS:
            bucket, limit, label = "write", self.config.quota_writes, "Write"
        else:
            return
        now = time.monotonic()
        with self.lock:
            stamps = self.quota.setdefault((user, bucket), deque())
            while stamps and now - stamps[0] >= self.config.quota_window_s:
                stamps.popleft()
            if len(stamps) >= limit:
                raise quota_error(label, limit)
            stamps.append(now)


def quota_error(label: str, limit: int) -> ApiError:
    """Google's 429 for an exhausted per-minute-per-user quota."""
    metric = f"{label.lower()}_requests"
    return ApiError(
        429,
        f"Quota exceeded for quota metric '{label} requests' and limit '{label} requests per "
        "minute per user' of service 'sheets.googleapis.com' for consumer "
        "'project_number:000000000000'.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "quota_metric": f"sheets.googleapis.com/{metric}",
                    "quota_limit": f"{label}RequestsPerMinutePerUser",
                    "quota_limit_value": str(limit),
                    "service": "sheets.googleapis.com",
                    "consumer": "projects/000000000000",
                },
            }
        ],
    )
