"""Replay gspread's recorded Google traffic (vcrpy cassettes) against the emulator.

``python -m sheets.emulator.conformance [--cassettes DIR] [--verbose] [--only SUBSTRING]``

Each cassette runs against a fresh emulator, requests in recorded order. Spreadsheet ids are
mapped from the recorded Drive ``files.create`` replies to the ids the emulator hands out;
sheet / protected-range / named-range / metadata ids are learnt the same way from replies.
A response matches when the status code and the JSON body are equal after normalising ids
and Drive timestamps. Interactions outside the emulated surface are reported as skipped,
with the reason, and are not sent.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from .batch import SUPPORTED_REQUESTS
from .state import Config
from .testing import start_emulator

# ../shared/conformance/gspread-cassettes relative to the repository root
DEFAULT_DIR = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "gspread-cassettes"
ID_KEYS = ("sheetId", "protectedRangeId", "namedRangeId", "metadataId")
TIME_KEYS = ("createdTime", "modifiedTime")
_EMAIL = re.compile(r"[\w.-]+@[\w.-]+\.iam\.gserviceaccount\.com")
_SHEET_ID_IN_URI = re.compile(r"/(?:spreadsheets|drive/v3/files|upload/drive/v2/files)/([^/?:]+)")
# out-of-scope batchUpdate kinds whose effect later reads would observe
_TAINTS = {
    "mergeCells": {"metadata", "values"},
    "unmergeCells": {"metadata", "values"},
    "copyPaste": {"values"},
    "cutPaste": {"values"},
    "updateCells": {"values", "metadata"},
    "setBasicFilter": {"metadata"},
    "clearBasicFilter": {"metadata"},
    "addDimensionGroup": {"metadata"},
    "deleteDimensionGroup": {"metadata"},
    "updateDimensionProperties": {"metadata"},
    "autoResizeDimensions": {"metadata"},
}


@dataclass
class Result:
    """Outcome of one cassette."""

    name: str
    matched: int = 0
    in_scope: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.matched / self.in_scope if self.in_scope else 1.0


def _body_json(text: Any) -> Any:
    if text is None or text == "" or text == b"":
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _response_text(resp: dict[str, Any]) -> str:
    body = resp.get("body") or {}
    return body.get("string", "") if isinstance(body, dict) else str(body)


def out_of_scope(method: str, uri: str, body: Any) -> str | None:
    """Why an interaction is outside the emulated surface, or None when it is in scope."""
    parts = urlsplit(uri)
    path, query = parts.path, parse_qs(parts.query)
    if parts.netloc == "www.googleapis.com":
        if path.startswith("/upload/"):
            return "Drive v2 upload (import_csv)"
        if re.search(r"/files/[^/]+/(export|comments|copy|permissions)", path):
            return "Drive " + path.rsplit("/", 1)[-1]
        if path == "/drive/v3/files" and method == "GET":
            return "Drive files.list sees the recorder's whole Drive account"
        return None
    fields = " ".join(query.get("fields", []))
    if "data" in fields.replace("/", ".").split(".") or query.get("includeGridData") == ["true"]:
        if "note" in fields:
            return "cell notes (grid data)"
        return "grid data (column widths, formats)"
    if path.endswith(":batchUpdate") and "/values" not in path and isinstance(body, dict):
        kinds = [next(iter(r)) for r in body.get("requests", []) if isinstance(r, dict) and r]
        unsupported = sorted({k for k in kinds if k not in SUPPORTED_REQUESTS})
        if unsupported:
            return "batchUpdate " + ",".join(unsupported)
    if "/sheets/" in path and ":copyTo" in path:
        return "sheets.copyTo"
    return None


class Replayer:
    """Replays one cassette against a running emulator."""

    def __init__(self, url: str, server: Any) -> None:
        self.url = url
        self.server = server
        self.http = requests.Session()

    def run(self, path: Path) -> Result:
        data = json.loads(path.read_text())
        result = Result(path.stem)
        emu = self.server.emulator
        emu.reset()
        raw = path.read_text()
        email = (_EMAIL.findall(raw) or ["recorder@emulator.iam.gserviceaccount.com"])[0]
        token = self._token(email)
        ids: dict[Any, Any] = {}
        tainted: dict[str, set[str]] = {}
        for interaction in data["interactions"]:
            req, resp = interaction["request"], interaction["response"]
            method, uri = req["method"], req["uri"]
            req_body = _body_json(req.get("body"))
            rec_status = resp["status"]["code"]
            rec_body = _body_json(_response_text(resp))
            m = _SHEET_ID_IN_URI.search(urlsplit(uri).path)
            rec_sid = m.group(1) if m else None
            reason = out_of_scope(method, uri, req_body)
            if reason is None and rec_sid and rec_sid not in ids:
                if rec_status == 403:
                    emu.create_spreadsheet("private", "someone-else@example.com", sid=rec_sid)
                    ids[rec_sid] = rec_sid
                elif rec_status != 404:
                    reason = "spreadsheet created outside the recording"
            if reason is None and rec_sid in tainted:
                area = "values" if "/values" in uri else "metadata"
                if area in tainted[rec_sid] and method == "GET":
                    reason = "reads state of an earlier out-of-scope request"
            if reason is not None:
                result.skipped[reason] += 1
                if rec_sid and reason.startswith("batchUpdate"):
                    for kind in reason.split(" ", 1)[1].split(","):
                        tainted.setdefault(rec_sid, set()).update(_TAINTS.get(kind, set()))
                if rec_sid and reason.startswith("Drive v2 upload"):
                    tainted.setdefault(rec_sid, set()).update({"values", "metadata"})
                continue
            target = self.url + re.sub(r"^https://[^/]+", "", _map(uri, ids))
            payload = _map(req_body, ids) if req_body is not None else None
            headers = {"Authorization": f"Bearer {token}"}
            if isinstance(payload, dict | list):
                reply = self.http.request(method, target, json=payload, headers=headers)
            else:
                reply = self.http.request(method, target, data=payload, headers=headers)
            got = _body_json(reply.text) if reply.content else None
            if method == "POST" and urlsplit(uri).path == "/drive/v3/files" and reply.ok:
                ids[rec_body["id"]] = got["id"]
            _learn(rec_body, got, ids)
            result.in_scope += 1
            normal_got = _normalise(_unmap(got, ids))
            normal_rec = _normalise(rec_body)
            if reply.status_code == rec_status and normal_got == normal_rec:
                result.matched += 1
            else:
                result.mismatches.append(
                    f"{method} {uri}\n    recorded {rec_status}: {json.dumps(normal_rec)[:600]}"
                    f"\n    emulator {reply.status_code}: {json.dumps(normal_got)[:600]}"
                )
        return result

    def _token(self, email: str) -> str:
        claims = base64.urlsafe_b64encode(json.dumps({"iss": email}).encode()).decode()
        form = {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": f"e30.{claims.rstrip('=')}.sig",
        }
        return self.http.post(self.url + "/token", data=form).json()["access_token"]


def _map(value: Any, ids: dict[Any, Any]) -> Any:
    """Recorded ids -> emulator ids, in a URI string or a JSON request body."""
    if isinstance(value, str):
        for rec, act in ids.items():
            if isinstance(rec, str) and rec in value:
                value = value.replace(rec, act)
        return value
    if isinstance(value, list):
        return [_map(v, ids) for v in value]
    if isinstance(value, dict):
        return {
            k: ids.get(v, v) if k in ID_KEYS and not isinstance(v, dict | list) else _map(v, ids)
            for k, v in value.items()
        }
    return value


def _unmap(value: Any, ids: dict[Any, Any]) -> Any:
    """Emulator ids -> recorded ids in a response body."""
    reverse = {act: rec for rec, act in ids.items()}
    return _map(value, reverse)


def _learn(recorded: Any, got: Any, ids: dict[Any, Any]) -> None:
    """Pair up ids the emulator chose differently (new sheet ids, protected range ids...)."""
    if isinstance(recorded, dict) and isinstance(got, dict):
        for key, rec in recorded.items():
            if key not in got:
                continue
            if key in ID_KEYS and not isinstance(rec, dict | list):
                if rec != got[key] and rec not in ids:
                    ids[rec] = got[key]
            else:
                _learn(rec, got[key], ids)
    elif isinstance(recorded, list) and isinstance(got, list):
        for rec, act in zip(recorded, got, strict=False):
            _learn(rec, act, ids)


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<time>" if k in TIME_KEYS else _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def run(directory: Path, only: str | None = None) -> list[Result]:
    """Replay every cassette in directory (optionally those whose name contains ``only``)."""
    url, server, stop = start_emulator(config=Config(quota_reads=10**9, quota_writes=10**9))
    try:
        replayer = Replayer(url, server)
        files = sorted(directory.glob("*.json"))
        return [replayer.run(p) for p in files if only is None or only in p.name]
    finally:
        stop()


def report(results: list[Result], verbose: bool = False) -> float:
    """Print per-cassette and overall match rates; returns the overall rate."""
    matched = sum(r.matched for r in results)
    total = sum(r.in_scope for r in results)
    skipped: Counter[str] = Counter()
    groups: dict[str, list[int]] = {}
    for r in results:
        skipped.update(r.skipped)
        group = groups.setdefault(r.name.split(".")[0], [0, 0])
        group[0] += r.matched
        group[1] += r.in_scope
        skipped_here = sum(r.skipped.values())
        print(f"{r.rate:7.1%}  {r.matched:4d}/{r.in_scope:<4d} skipped {skipped_here:3d}  {r.name}")
        if verbose:
            for mismatch in r.mismatches:
                print("    MISMATCH " + mismatch)
    print("\nskipped as out of scope:")
    for reason, count in skipped.most_common():
        print(f"  {count:5d}  {reason}")
    print("\nper group:")
    for name, (m, t) in groups.items():
        print(f"  {m / t if t else 1:7.1%}  {m}/{t}  {name}")
    rate = matched / total if total else 1.0
    print(f"\noverall: {rate:.1%} ({matched}/{total} in-scope interactions match)")
    return rate


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m sheets.emulator.conformance")
    parser.add_argument("--cassettes", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--only", help="only cassettes whose file name contains this")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every mismatch")
    args = parser.parse_args(argv)
    if not args.cassettes.is_dir():
        print(f"no cassettes at {args.cassettes}", file=sys.stderr)
        return 2
    report(run(args.cassettes, args.only), args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
