"""HTTP front of the emulator: Sheets v4 + Drive v3 subset, fake OAuth, quotas, faults, admin.

Routes (paths are the real Google paths, so a client only swaps the host):

- ``POST /token``                                   fake OAuth token endpoint (JWT bearer grant)
- ``/v4/spreadsheets...``                           Sheets API v4 subset
- ``/drive/v3/files...``                            Drive v3 subset (create/get/list/delete)
- ``/_admin/...``                                   test control API (see docs/sheets-emulator.md)
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .admin import admin as admin_route
from .batch import batch_update
from .metadata import apply_fields, metadata, parse_fields
from .state import READ_KINDS, Emulator, quota_error
from .store import ApiError, Spreadsheet, clip, resolve
from .values_api import (
    append_values,
    check_values,
    clear_values,
    updated_data,
    value_range,
    write_values,
)

SPREADSHEET_MIME = "application/vnd.google-apps.spreadsheet"
WRITE_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/spreadsheets",
        "https://www.googleapis.com/auth/drive",
        "https://www.googleapis.com/auth/drive.file",
    }
)
_SHEETS_PATH = re.compile(r"^/v4/spreadsheets/([^/:]+)(.*)$")
_DRIVE_PATH = re.compile(r"^/drive/v3/files(?:/([^/]+))?(/.*)?$")


class DriveError(ApiError):
    """Drive v3 errors carry an ``errors`` list with a reason instead of a status."""

    def __init__(self, code: int, message: str, reason: str) -> None:
        super().__init__(code, message)
        self.reason = reason

    def body(self) -> dict[str, Any]:
        error = {"message": self.message, "domain": "global", "reason": self.reason}
        return {"error": {"code": self.code, "message": self.message, "errors": [error]}}


class _Reply(Exception):
    """Raised to answer with a given status and JSON body (or none for 204)."""

    def __init__(self, status: int, body: Any = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class Handler(BaseHTTPRequestHandler):
    """One request; routing in :meth:`dispatch`."""

    protocol_version = "HTTP/1.1"
    server: EmulatorServer

    def setup(self) -> None:
        super().setup()
        # one response = headers + body in two writes: without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every keep-alive request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (the admin API has a request log)."""

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_PATCH(self) -> None:
        self.dispatch("PATCH")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    # --- plumbing ----------------------------------------------------------------------

    @property
    def emu(self) -> Emulator:
        return self.server.emulator

    def _send(self, status: int, body: Any = None) -> None:
        data = b""
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _json_body(self, raw: bytes) -> dict[str, Any]:
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError(400, "Invalid JSON payload received. Unexpected token.") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received. Expected an object.")
        return body

    def dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        params = {k: v[-1] for k, v in query.items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path.startswith("/_admin/"):
            self._answer(lambda: self.admin(method, path, params, raw))
            return
        if path == "/token":
            self._answer(lambda: self.token(raw))
            return
        kind = classify(method, path)
        entry = {"method": method, "path": path, "query": parts.query, "kind": kind}
        status = 500
        self.emu.begin_request()
        try:
            fault = self.emu.take_fault(kind)
            if fault:
                if fault.get("delay_ms"):
                    time.sleep(fault["delay_ms"] / 1000)
                if fault.get("status"):
                    code = int(fault["status"])
                    if code == 429:
                        config = self.emu.config
                        if kind in READ_KINDS:
                            raise quota_error("Read", config.quota_reads)
                        raise quota_error("Write", config.quota_writes)
                    raise ApiError(code, fault.get("message") or "Internal error encountered.")
            user, scopes = self.authenticate()
            entry["user"] = user
            if path.startswith("/v4/spreadsheets"):
                self.emu.charge_quota(user, kind)
                result = self.sheets(method, path, params, query, raw, user, scopes)
            elif path.startswith("/drive/v3/files"):
                result = self.drive(method, path, params, raw, user)
            else:
                raise ApiError(404, f"emulator: no route for {method} {path}")
            status = 200
            self._send(200, result)
        except _Reply as reply:
            status = reply.status
            self._send(reply.status, reply.body)
        except ApiError as err:
            status = err.code
            self._send(err.code, err.body())
        except Exception as exc:  # an emulator bug must still answer like Google
            status = 500
            self._send(500, ApiError(500, f"emulator internal error: {exc!r}").body())
        finally:
            entry["status"] = status
            entry["time"] = time.time()
            self.emu.end_request(entry)

    def _answer(self, fn: Any) -> None:
        try:
            status, body = 200, fn()
        except _Reply as reply:
            self._send(reply.status, reply.body)
            return
        except ApiError as err:
            status, body = err.code, err.body()
        self._send(status, body)

    # --- auth --------------------------------------------------------------------------

    def token(self, raw: bytes) -> dict[str, Any]:
        form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            raise _Reply(
                400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}
            )
        claims = _jwt_claims(form.get("assertion", ""))
        if claims is None or not claims.get("iss"):
            raise _Reply(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            )
        token = "ya29.emu-" + secrets.token_urlsafe(24)
        with self.emu.lock:
            self.emu.tokens[token] = {"user": claims["iss"], "scopes": claims.get("scope", "")}
            self.emu.counters["token"] += 1
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def authenticate(self) -> tuple[str, str]:
        header = self.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        with self.emu.lock:
            info = self.emu.tokens.get(token)
            required = self.emu.config.auth_required
            default_user = self.emu.config.default_user
        if info:
            return info["user"], info["scopes"]
        if not required:
            return default_user, ""
        if not token:
            raise ApiError(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            )
        raise ApiError(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        )

    # --- Sheets ------------------------------------------------------------------------

    def _spreadsheet(self, sid: str, user: str) -> Spreadsheet:
        ss = self.emu.spreadsheets.get(sid)
        if ss is None:
            raise ApiError(404, "Requested entity was not found.")
        if not ss.can_access(user):
            raise ApiError(403, "The caller does not have permission")
        return ss

    def sheets(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        query: dict[str, list[str]],
        raw: bytes,
        user: str,
        scopes: str,
    ) -> Any:
        body = self._json_body(raw) if method in ("POST", "PUT") else {}
        if method != "GET" and scopes and not set(scopes.split()) & WRITE_SCOPES:
            raise ApiError(403, "Request had insufficient authentication scopes.")
        if path.rstrip("/") == "/v4/spreadsheets" and method == "POST":
            return self.create_via_sheets(body, user)
        m = _SHEETS_PATH.match(path)
        if not m:
            raise ApiError(404, "Requested entity was not found.")
        sid, rest = unquote(m.group(1)), m.group(2)
        with self.emu.lock:
            ss = self._spreadsheet(sid, user)
            if rest == "" and method == "GET":
                merged: dict[str, Any] = dict(params)
                merged["ranges"] = query.get("ranges", [])
                return metadata(ss, merged)
            if rest == ":batchUpdate" and method == "POST":
                return batch_update(ss, body, user)
            if rest == "/values:batchGet" and method == "GET":
                return self.batch_get(ss, params, query.get("ranges", []))
            if rest == "/values:batchUpdate" and method == "POST":
                return self.values_batch_update(ss, body, user)
            if rest == "/values:batchClear" and method == "POST":
                ranges = body.get("ranges") or []
                cleared = [clear_values(ss, r) for r in ranges]
                return {"spreadsheetId": ss.id, "clearedRanges": cleared}
            if rest.startswith("/values/"):
                target = rest[len("/values/") :]
                if target.endswith(":append") and method == "POST":
                    return append_values(ss, unquote(target[:-7]), body, params, user)
                if target.endswith(":clear") and method == "POST":
                    cleared = clear_values(ss, unquote(target[:-6]))
                    return {"spreadsheetId": ss.id, "clearedRange": cleared}
                if method == "GET":
                    sheet, bounds = resolve(ss, unquote(target))
                    return value_range(sheet, clip(sheet, bounds), params)
                if method == "PUT":
                    return self.values_update(ss, unquote(target), body, params, user)
        raise ApiError(404, f"emulator: unsupported Sheets call {method} {path}")

    def create_via_sheets(self, body: dict[str, Any], user: str) -> dict[str, Any]:
        title = body.get("properties", {}).get("title") or "Untitled spreadsheet"
        sheets = body.get("sheets") or [{}]
        with self.emu.lock:
            first = sheets[0].get("properties") or {"title": "Sheet1"}
            ss = self.emu.create_spreadsheet(title, user, first_sheet={"title": "Sheet1", **first})
            for extra in sheets[1:]:
                ss.add_sheet(extra.get("properties"))
            return metadata(ss, {})

    def values_update(
        self, ss: Spreadsheet, range_text: str, body: dict, params: dict, user: str
    ) -> dict[str, Any]:
        body_range = body.get("range")
        if body_range and body_range != range_text:
            sheet_a, bounds_a = resolve(ss, body_range)
            sheet_b, bounds_b = resolve(ss, range_text)
            if (sheet_a, bounds_a) != (sheet_b, bounds_b):
                raise ApiError(
                    400,
                    f"Requested range [{body_range}] must match the range in the URL "
                    f"[{range_text}]",
                )
        values = check_values(body.get("values"))
        sheet, bounds = resolve(ss, range_text)
        result = write_values(
            ss,
            sheet,
            bounds,
            values,
            params.get("valueInputOption", ""),
            body.get("majorDimension") or "ROWS",
            user,
            range_text,
        )
        data = updated_data(sheet, result, params)
        if data is not None:
            result["updatedData"] = data
        return result

    def batch_get(self, ss: Spreadsheet, params: dict, ranges: list[str]) -> dict[str, Any]:
        out = []
        for text in ranges:
            sheet, bounds = resolve(ss, text)
            out.append(value_range(sheet, clip(sheet, bounds), params))
        return {"spreadsheetId": ss.id, "valueRanges": out}

    def values_batch_update(self, ss: Spreadsheet, body: dict, user: str) -> dict[str, Any]:
        option = body.get("valueInputOption", "")
        saved = ss.snapshot()
        responses = []
        touched: set[tuple[int, str, int]] = set()
        try:
            for i, vr in enumerate(body.get("data") or []):
                values = check_values(vr.get("values"), f"data[{i}].values")
                sheet, bounds = resolve(ss, vr.get("range", ""))
                result = write_values(
                    ss,
                    sheet,
                    bounds,
                    values,
                    option,
                    vr.get("majorDimension") or "ROWS",
                    user,
                    vr.get("range", ""),
                    touched,
                )
                data = updated_data(sheet, result, body)
                if data is not None:
                    result["updatedData"] = data
                responses.append(result)
        except ApiError:
            ss.restore(saved)
            raise
        out: dict[str, Any] = {"spreadsheetId": ss.id}
        written = [r for r in responses if "updatedRange" in r]
        if written:
            out["totalUpdatedRows"] = sum(1 for t in touched if t[1] == "row")
            out["totalUpdatedColumns"] = sum(1 for t in touched if t[1] == "col")
            out["totalUpdatedCells"] = sum(r["updatedCells"] for r in written)
            out["totalUpdatedSheets"] = len({r["updatedRange"].rsplit("!", 1)[0] for r in written})
            out["responses"] = responses
        return out

    # --- Drive -------------------------------------------------------------------------

    def drive(self, method: str, path: str, params: dict, raw: bytes, user: str) -> Any:
        m = _DRIVE_PATH.match(path)
        if not m or m.group(2):
            raise DriveError(404, "emulator: unsupported Drive call", "notFound")
        file_id = unquote(m.group(1)) if m.group(1) else None
        fields = params.get("fields")
        with self.emu.lock:
            if file_id is None and method == "POST":
                body = self._json_body(raw)
                if body.get("mimeType") != SPREADSHEET_MIME:
                    raise DriveError(
                        400, "emulator: only spreadsheets can be created", "badRequest"
                    )
                ss = self.emu.create_spreadsheet(body.get("name") or "Untitled spreadsheet", user)
                return self._file(ss, fields, created=True)
            if file_id is None and method == "GET":
                return self.drive_list(params, user)
            if file_id is None:
                raise DriveError(405, "Method not allowed", "methodNotAllowed")
            ss = self.emu.spreadsheets.get(file_id)
            if ss is None or not ss.can_access(user):
                raise DriveError(404, f"File not found: {file_id}.", "notFound")
            if method == "GET":
                return self._file(ss, fields)
            if method == "PATCH":
                body = self._json_body(raw)
                if "name" in body:
                    ss.properties["title"] = body["name"]
                    ss.touch()
                return self._file(ss, fields)
            if method == "DELETE":
                if ss.owner != user:
                    raise DriveError(
                        403,
                        "The user does not have sufficient permissions for this file.",
                        "insufficientFilePermissions",
                    )
                del self.emu.spreadsheets[file_id]
                raise _Reply(204)
        raise DriveError(405, "Method not allowed", "methodNotAllowed")

    @staticmethod
    def _file(ss: Spreadsheet, fields: str | None, created: bool = False) -> dict[str, Any]:
        full = {
            "kind": "drive#file",
            "id": ss.id,
            "name": ss.properties["title"],
            "mimeType": SPREADSHEET_MIME,
            "createdTime": ss.created,
            "modifiedTime": ss.modified,
            "owners": [{"kind": "drive#user", "emailAddress": ss.owner}],
        }
        if not fields:
            return {k: full[k] for k in ("kind", "id", "name", "mimeType")}
        return apply_fields(full, parse_fields(fields))

    def drive_list(self, params: dict, user: str) -> dict[str, Any]:
        matches = [
            ss
            for ss in self.emu.spreadsheets.values()
            if ss.can_access(user) and _drive_query_matches(params.get("q", ""), ss)
        ]
        matches.sort(key=lambda s: s.modified, reverse=True)
        files = [self._file(ss, "kind,id,name,mimeType,createdTime,modifiedTime") for ss in matches]
        full = {"kind": "drive#fileList", "incompleteSearch": False, "files": files}
        fields = params.get("fields")
        if not fields:
            return {
                "kind": "drive#fileList",
                "incompleteSearch": False,
                "files": [{k: f[k] for k in ("kind", "id", "name", "mimeType")} for f in files],
            }
        return apply_fields(full, parse_fields(fields))

    # --- admin -------------------------------------------------------------------------

    def admin(self, method: str, path: str, params: dict, raw: bytes) -> Any:
        body = self._json_body(raw) if raw else {}
        return admin_route(self.emu, method, path, params, body)


def classify(method: str, path: str) -> str:
    """Request kind for quotas and counters."""
    if path.startswith("/drive/"):
        return "drive"
    if not path.startswith("/v4/spreadsheets"):
        return "other"
    if path.rstrip("/") == "/v4/spreadsheets":
        return "create"
    if path.endswith(":batchUpdate") and "/values" not in path:
        return "batch_update"
    if "/values" in path:
        return "values_read" if method == "GET" else "values_write"
    return "metadata_read" if method == "GET" else "batch_update"


def _jwt_claims(assertion: str) -> dict[str, Any] | None:
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


_Q_CLAUSE = re.compile(
    r"""^\s*(?:(mimeType|name)\s*(=|!=|contains)\s*(["'])(.*?)\3|(["'])(.*?)\5\s+in\s+parents|trashed\s*=\s*(?:false|true))\s*$"""
)


def _drive_query_matches(q: str, ss: Spreadsheet) -> bool:
    if not q.strip():
        return True
    for clause in re.split(r"\s+and\s+", q):
        m = _Q_CLAUSE.match(clause)
        if not m:
            raise ApiError(400, f"Invalid Value: q ({clause})")
        field, op, value = m.group(1), m.group(2), m.group(4)
        if field is None:
            continue
        actual = SPREADSHEET_MIME if field == "mimeType" else ss.properties["title"]
        ok = {"=": actual == value, "!=": actual != value, "contains": value in actual}[op]
        if not ok:
            return False
    return True


class EmulatorServer(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the shared :class:`Emulator` state."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator | None = None) -> None:
        super().__init__(address, Handler)
        self.emulator = emulator or Emulator()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"
