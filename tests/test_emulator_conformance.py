"""Conformance: gspread's recorded Google traffic replayed against the emulator.

Run the report by hand with ``python -m sheets.emulator.conformance [-v]``.
"""

from __future__ import annotations

from sheets.emulator.conformance import DEFAULT_DIR as CASSETTES
from sheets.emulator.conformance import run
from tests.conftest import shared_path

# measured 2026-11: 1758/1758 in-scope interactions match; both floors fail the suite when a
# change breaks a recorded behaviour or silently narrows what counts as in scope
REQUIRED_MATCH_RATE = 1.0
REQUIRED_IN_SCOPE = 1758


def test_recorded_google_traffic_matches() -> None:
    results = run(shared_path(CASSETTES))
    matched = sum(r.matched for r in results)
    in_scope = sum(r.in_scope for r in results)
    mismatches = [m for r in results for m in r.mismatches]
    assert in_scope >= REQUIRED_IN_SCOPE, "fewer interactions are in scope than measured"
    assert matched / in_scope >= REQUIRED_MATCH_RATE, "\n".join(mismatches[:10])
