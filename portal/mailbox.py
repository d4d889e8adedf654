"""The demo's mailbox: a local SMTP sink that keeps every message as an ``.eml`` file.

``orderbridge demo`` starts the sink as one of its children (:func:`start_sink`) and points
the worker's ``MAIL_SERVER``/``MAIL_PORT`` at it, so the notification outbox drains as it
would against a real mail server, and the Mailbox page (``portal/views/mailbox.py``, demo
mode only) shows each message as the customer would receive it. The sink is never part of a
production deployment: it accepts mail for anyone and relays nothing.

Run on its own: ``python -m portal.mailbox --dir instance/mailbox [--port 0]``. It binds
127.0.0.1 (port 0 picks a free one), writes the port it got to ``<dir>/sink.port`` and stores
each message as ``<dir>/<UTC time>-<n>.eml`` (written to a temporary name, then renamed, so a
reader never sees half a message), headed by ``X-Mailbox-Received`` and ``X-Envelope-To``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

PORT_FILE = "sink.port"
SUFFIX = ".eml"
NAME_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.")


# -- storing ----------------------------------------------------------------------------------


class MailboxHandler:
    """aiosmtpd handler: every message accepted is written to ``folder`` as one file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.store(list(envelope.rcpt_tos), envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"

    def store(self, recipients: list[str], content: bytes) -> Path:
        received = datetime.now(UTC)
        with self._lock:
            seq = next(self._seq)
        name = f"{received:%Y%m%dT%H%M%S%fZ}-{os.getpid()}-{seq:06d}{SUFFIX}"
        head = (
            f"X-Mailbox-Received: {received.isoformat()}\r\n"
            f"X-Envelope-To: {', '.join(recipients)}\r\n"
        ).encode()
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f".{name}.tmp"
        temporary.write_bytes(head + content)
        final = self.folder / name
        temporary.replace(final)
        return final


def serve(folder: Path, host: str = "127.0.0.1", port: int = 0) -> None:
    """Run the sink until SIGINT/SIGTERM; writes the bound port to ``folder/sink.port``."""
    from aiosmtpd.controller import Controller

    folder.mkdir(parents=True, exist_ok=True)
    if port == 0:
        port = _free_port(host)
    controller = Controller(MailboxHandler(folder), hostname=host, port=port)
    controller.start()
    (folder / PORT_FILE).write_text(f"{port}\n")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"mail sink on {host}:{port}, storing into {folder}", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()
        (folder / PORT_FILE).unlink(missing_ok=True)


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def start_sink(folder: Path, timeout: float = 15.0) -> tuple[subprocess.Popen, int]:
    """Start the sink as a child process; returns it and its port once it listens."""
    port_file = folder / PORT_FILE
    port_file.unlink(missing_ok=True)
    # Its own session: a terminal's Ctrl-C reaches the demo, which stops the sink with the
    # others, rather than the sink quitting first and looking like a crash.
    child = subprocess.Popen(
        [sys.executable, "-m", "portal.mailbox", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = port_file.read_text().strip() if port_file.exists() else ""
        if text:
            return child, int(text)
        if child.poll() is not None:
            break
        time.sleep(0.1)
    child.kill()
    raise RuntimeError(f"the mail sink did not start (no {port_file})")


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One stored message, as the Mailbox page shows it."""

    name: str
    received: str
    to: str
    sender: str
    subject: str
    date: str
    body: str
    headers: list[tuple[str, str]]


def _parse(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        return BytesParser(policy=policy.default).parse(handle)  # type: ignore[return-value]


def _summary(path: Path, message: EmailMessage) -> Received:
    part = message.get_body(preferencelist=("plain",))
    body = part.get_content() if part is not None else ""
    return Received(
        name=path.name,
        received=str(message.get("X-Mailbox-Received", "")),
        to=str(message.get("To", "") or message.get("X-Envelope-To", "")),
        sender=str(message.get("From", "")),
        subject=str(message.get("Subject", "")),
        date=str(message.get("Date", "")),
        body=body,
        headers=[(key, str(value)) for key, value in message.items()],
    )


def messages(folder: Path, limit: int = 500) -> list[Received]:
    """The newest ``limit`` stored messages, newest first."""
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob(f"*{SUFFIX}"), reverse=True)[:limit]
    return [_summary(path, _parse(path)) for path in paths]


def count(folder: Path) -> int:
    """How many messages the mailbox holds."""
    return sum(1 for _ in folder.glob(f"*{SUFFIX}")) if folder.is_dir() else 0


def message(folder: Path, name: str) -> Received | None:
    """The stored message called ``name`` (a plain file name of the folder), else None."""
    if not name.endswith(SUFFIX) or name.startswith(".") or not set(name) <= NAME_CHARS:
        return None
    path = folder / name
    if not path.is_file():
        return None
    return _summary(path, _parse(path))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Orderbridge demo mail sink")
    parser.add_argument("--dir", required=True, type=Path, help="where to store the messages")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default=0, type=int, help="0: a free port")
    args = parser.parse_args(argv)
    serve(args.dir.resolve(), args.host, args.port)


if __name__ == "__main__":
    main()
