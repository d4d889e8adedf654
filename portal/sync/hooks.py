"""The signed edit webhook of Google trackers: ``POST /sheets/hook/<tracker>``.

A Google tracker can run the Apps Script :func:`apps_script` gives (installed from the
tracker's page): an installable edit/change trigger that POSTs
``{"tracker": name, "ts": unix seconds, "range": "B7"}`` to the webhook with the header
``X-Orderbridge-Signature: sha256=<hex HMAC-SHA256 of the body>``, keyed with the tracker's
own secret (:func:`hook_secret`, derived from ``SECRET_KEY``, the tracker's id and name). The
portal checks the signature and the timestamp (:func:`check`) and asks for a debounced sync;
the scheduler's interval sync stays the fallback when the trigger is not installed or a call
is lost.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from flask import current_app

from portal.models import Tracker
from portal.services.base import PermissionDenied, ServiceError

SIGNATURE_HEADER = "X-Orderbridge-Signature"
MAX_SKEW_SECONDS = 300  # a signed call older (or newer) than this is refused: no replays


class Unsigned(ServiceError):
    """The call carries no signature (401)."""

    status = 401


def hook_secret(tracker: Tracker) -> str:
    """The tracker's webhook secret (hex), derived from ``SECRET_KEY``, its id and its name."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    message = f"orderbridge sheets hook {tracker.id} {tracker.name}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check(tracker: Tracker, body: bytes, signature: str | None, now: float | None = None) -> None:
    """Refuse a call that is unsigned (401), wrongly signed, for another tracker or out of
    date (403), or whose body is not the JSON the script sends (400)."""
    if not signature:
        raise Unsigned(f"the {SIGNATURE_HEADER} header is missing")
    if not hmac.compare_digest(signature.strip(), sign(hook_secret(tracker), body)):
        raise PermissionDenied(f"the signature does not match tracker {tracker.name}'s secret")
    try:
        data: Any = json.loads(body)
        stamp = float(data["ts"])
        named = data["tracker"]
    except (ValueError, TypeError, KeyError):
        raise ServiceError('the body must be JSON with "tracker" and "ts" (unix seconds)') from None
    if named != tracker.name:
        raise PermissionDenied(f"the call names tracker {named!r}, not {tracker.name!r}")
    if abs((now or time.time()) - stamp) > MAX_SKEW_SECONDS:
        raise PermissionDenied(
            f"the call's timestamp is more than {MAX_SKEW_SECONDS} s away from now"
        )


SCRIPT = """\
// Orderbridge: sync tracker %(name)s within seconds of an edit in this spreadsheet.
// 1. In the spreadsheet: Extensions > Apps Script; paste this file and save.
// 2. Run installOrderbridgeTrigger once and allow it (it installs the edit trigger).
// The portal still syncs on its interval if a call is lost.
var ORDERBRIDGE_URL = %(url)s;
var ORDERBRIDGE_TRACKER = %(name)s;
var ORDERBRIDGE_TAB = %(tab)s;
var ORDERBRIDGE_SECRET = %(secret)s;

function installOrderbridgeTrigger() {
  var book = SpreadsheetApp.getActive();
  ScriptApp.getProjectTriggers().forEach(function (trigger) {
    if (trigger.getHandlerFunction() === "orderbridgeChanged") ScriptApp.deleteTrigger(trigger);
  });
  ScriptApp.newTrigger("orderbridgeChanged").forSpreadsheet(book).onEdit().create();
  ScriptApp.newTrigger("orderbridgeChanged").forSpreadsheet(book).onChange().create();
}

function orderbridgeChanged(e) {
  var range = e && e.range ? e.range : null;
  if (range && range.getSheet().getName() !== ORDERBRIDGE_TAB) return;
  var body = JSON.stringify({
    tracker: ORDERBRIDGE_TRACKER,
    ts: Math.floor(Date.now() / 1000),
    range: range ? range.getA1Notation() : ""
  });
  var mac = Utilities.computeHmacSha256Signature(body, ORDERBRIDGE_SECRET);
  var hex = mac.map(function (b) { return ("0" + (b & 0xff).toString(16)).slice(-2); }).join("");
  UrlFetchApp.fetch(ORDERBRIDGE_URL, {
    method: "post",
    contentType: "application/json",
    payload: body,
    headers: {"%(header)s": "sha256=" + hex},
    muteHttpExceptions: true
  });
}
"""


def apps_script(tracker: Tracker, hook_url: str) -> str:
    """The Apps Script (``.gs``) that installs the tracker's edit trigger."""
    return SCRIPT % {
        "name": json.dumps(tracker.name),
        "url": json.dumps(hook_url),
        "tab": json.dumps(tracker.tab),
        "secret": json.dumps(hook_secret(tracker)),
        "header": SIGNATURE_HEADER,
    }
