"""Helpers to run the emulator in-process and to point real gspread at it (no pytest needed).

    url, server, stop = start_emulator()
    gc = gspread_client(url)          # real service-account login against url + "/token"
    sh = gc.create("Orders")          # real HTTP to the emulator
    stop()

``mount_emulator(session, url)`` is the underlying trick: a requests transport adapter that
sends ``https://sheets.googleapis.com/...`` and ``https://www.googleapis.com/...`` to the
emulator, so any gspread HTTP client class (retrying ones included) works unchanged.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any

import gspread
import requests
from google.oauth2.service_account import Credentials
from gspread.http_client import HTTPClient
from requests.adapters import HTTPAdapter

from .server import EmulatorServer
from .state import Config, Emulator

GOOGLE_HOSTS = ("https://sheets.googleapis.com", "https://www.googleapis.com")
DEFAULT_EMAIL = "orderbridge-test@orderbridge-emulator.iam.gserviceaccount.com"
SCOPES = (
    "https://www.googleapis.com/auth/spreadsheets",
    "https://www.googleapis.com/auth/drive",
)


def start_emulator(
    port: int = 0, config: Config | None = None
) -> tuple[str, EmulatorServer, Callable[[], None]]:
    """Start a server on 127.0.0.1 in a daemon thread; returns (base_url, server, stop)."""
    server = EmulatorServer(("127.0.0.1", port), Emulator(config))
    thread = threading.Thread(target=server.serve_forever, name="sheets-emulator", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return server.url, server, stop


class EmulatorAdapter(HTTPAdapter):
    """Rewrites Google API URLs to the emulator before sending."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        for host in GOOGLE_HOSTS:
            if request.url and request.url.startswith(host + "/"):
                request.url = self.base_url + request.url[len(host) :]
                break
        return super().send(request, **kwargs)


def mount_emulator(session: requests.Session, base_url: str) -> requests.Session:
    """Route this session's Google API calls to the emulator at base_url."""
    adapter = EmulatorAdapter(base_url)
    for host in GOOGLE_HOSTS:
        session.mount(host + "/", adapter)
    return session


@functools.cache
def _private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account_info(base_url: str, email: str = DEFAULT_EMAIL) -> dict[str, str]:
    """A service-account JSON (throwaway RSA key) whose token_uri is the emulator's /token."""
    return {
        "type": "service_account",
        "project_id": "orderbridge-emulator",
        "private_key_id": "emulator-key",
        "private_key": _private_key_pem(),
        "client_email": email,
        "client_id": "000000000000000000000",
        "token_uri": base_url.rstrip("/") + "/token",
    }


def write_service_account_file(path: str, base_url: str, email: str = DEFAULT_EMAIL) -> str:
    """Write :func:`service_account_info` to path (for code that reads a key file)."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(service_account_info(base_url, email), fh)
    return path


def gspread_client(
    base_url: str,
    email: str = DEFAULT_EMAIL,
    scopes: tuple[str, ...] = SCOPES,
    http_client: type[HTTPClient] = HTTPClient,
) -> gspread.Client:
    """A real gspread.Client talking HTTP to the emulator, logged in as a service account."""
    creds = Credentials.from_service_account_info(
        service_account_info(base_url, email), scopes=list(scopes)
    )
    client = gspread.Client(auth=creds, http_client=http_client)
    mount_emulator(client.http_client.session, base_url)
    return client
