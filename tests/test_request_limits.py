"""Bounded requests: body size (413), lines per order, bulk calls, text lengths (422) and
write rates (429), each answer naming the limit; a huge order is refused at once, while other
clients keep being answered."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from flask import Flask
from werkzeug.serving import make_server

from portal.extensions import db
from portal.models import SalesOrder
from portal.requestlimits import write_limiter
from portal.services import orders
from portal.services.base import ValidationFailed
from tests.conftest import api_headers, login
from tests.factories import SETUP, make_catalog

HUGE = 100_000


@pytest.fixture
def api(clean_db):
    app: Flask = clean_db
    data = make_catalog()
    return SimpleNamespace(
        app=app,
        client=app.test_client(),
        headers=api_headers(app, "specialist"),
        data=data,
        body={"customer_id": data.customer.id},
    )


@contextmanager
def settings(app: Flask, **values) -> Iterator[None]:
    saved = {name: app.config.get(name) for name in values}
    app.config.update(values)
    try:
        yield
    finally:
        app.config.update(saved)


def _lines(api, count: int) -> list[dict]:
    return [{"product_id": api.data.products[0].id, "quantity": 1}] * count


# -- body size --------------------------------------------------------------------------------


def test_a_10_mib_body_is_413_naming_the_limit(api) -> None:
    note = "x" * (10 * 1024 * 1024)
    response = api.client.post(
        "/api/v1/sales_order/", json={**api.body, "notes": note}, headers=api.headers
    )
    assert response.status_code == 413
    assert "2 MiB" in response.json["message"]
    assert "MAX_CONTENT_LENGTH" in response.json["message"]
    page = login(api.app, "specialist").post("/salesorderview/add", data={"notes": note})
    assert page.status_code == 413 and "2 MiB" in page.text
    assert db.session.query(SalesOrder).count() == 0


def test_a_long_note_under_the_body_limit_is_422_naming_the_field(api) -> None:
    response = api.client.post(
        "/api/v1/sales_order/", json={**api.body, "notes": "x" * 1_000_000}, headers=api.headers
    )
    assert response.status_code == 422, response.json
    assert response.json["errors"]["notes"] == ["is longer than 4000 characters"]
    assert db.session.query(SalesOrder).count() == 0


# -- lines per order --------------------------------------------------------------------------


def test_more_lines_than_allowed_is_422_naming_lines_and_the_limit(api) -> None:
    response = api.client.post(
        "/api/v1/sales_order/", json={**api.body, "lines": _lines(api, 501)}, headers=api.headers
    )
    assert response.status_code == 422, response.json
    assert response.json["errors"]["lines"] == ["at most 500 lines per order (501 given)"]
    # The service refuses it too, for every other path (views, sheets, imports).
    with pytest.raises(ValidationFailed, match="lines: at most 500 lines per order"):
        orders.orders.create_with_lines(api.body, _lines(api, 501), SETUP)
    order = orders.orders.create_with_lines(api.body, _lines(api, 499), SETUP)
    with pytest.raises(ValidationFailed, match=r"at most 500 lines per order \(502 given\)"):
        orders.add_lines(order, _lines(api, 3), SETUP)


@pytest.mark.parametrize("body_limit", [None, 64 * 1024 * 1024])
def test_a_100000_line_order_is_refused_at_once_while_others_are_served(api, body_limit) -> None:
    """Under a real threaded server: the huge order is refused before any per-line work —
    413 at the default body limit, else 422 from the line count, not the malformed first
    line that per-line validation would have reported — and a sign-in page asked for at the
    same moment by another client is answered."""
    lines = _lines(api, HUGE)
    lines[0] = {**lines[0], "quantity": "many"}  # what per-line validation would refuse
    body = json.dumps({**api.body, "lines": lines}).encode()
    overrides = {"MAX_CONTENT_LENGTH": body_limit} if body_limit else {}
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    barrier = threading.Barrier(2)
    results: dict[str, tuple[int, bytes]] = {}

    def request(name: str, method: str, path: str, payload: bytes | None, headers: dict) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        barrier.wait()
        try:
            conn.request(method, path, body=payload, headers=headers)
            answer = conn.getresponse()
            results[name] = (answer.status, answer.read())
        except (ConnectionError, http.client.HTTPException):
            results[name] = (-1, b"")  # the server may close a refused upload while it is sent
        conn.close()

    heavy_headers = {**api.headers, "Content-Type": "application/json"}
    clients = [
        threading.Thread(
            target=request, args=("heavy", "POST", "/api/v1/sales_order/", body, heavy_headers)
        ),
        threading.Thread(target=request, args=("light", "GET", "/login/", None, {})),
    ]
    try:
        with settings(api.app, **overrides):
            for client in clients:
                client.start()
            for client in clients:
                client.join(30)
    finally:
        server.shutdown()
        thread.join(5)
    heavy_status, heavy_body = results["heavy"]
    if body_limit:
        assert heavy_status == 422, results["heavy"]
        errors = json.loads(heavy_body)["errors"]
        assert errors == {"lines": [f"at most 500 lines per order ({HUGE} given)"]}, errors
    else:
        assert heavy_status == 413, results["heavy"]
    assert results["light"][0] == 200, results["light"][0]
    assert db.session.query(SalesOrder).count() == 0


# -- bulk -------------------------------------------------------------------------------------


def test_a_bulk_action_over_the_limit_is_422(api) -> None:
    page = login(api.app, "supervisor").post(
        "/creditapprovalview/action_post",
        data={"action": "approve", "rowid": [str(n) for n in range(1, 1002)]},
    )
    assert page.status_code == 422
    assert "at most 1000 records at once" in page.text and "MAX_BULK_ITEMS" in page.text


# -- write rates ------------------------------------------------------------------------------


@pytest.fixture
def rate_limited(api) -> Iterator[SimpleNamespace]:
    write_limiter().reset()
    with settings(api.app, WRITE_RATE_LIMIT="3/minute", WRITE_IP_RATE_LIMIT="5/minute"):
        yield api
    write_limiter().reset()


def test_writes_over_the_per_user_limit_get_429_with_retry_after(rate_limited) -> None:
    api = rate_limited
    url = "/api/v1/sales_order/"
    for _ in range(3):
        assert api.client.post(url, json=api.body, headers=api.headers).status_code == 201
    refused = api.client.post(url, json=api.body, headers=api.headers)
    assert refused.status_code == 429
    assert "at most 3/minute per user" in refused.json["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert db.session.query(SalesOrder).count() == 3
    assert api.client.get(url, headers=api.headers).status_code == 200  # reads are not limited
    other = api_headers(api.app, "specialist2")
    assert api.client.post(url, json=api.body, headers=other).status_code == 201
    # The browser's form posts count against the same user limit.
    browser = login(api.app, "specialist2")
    for _ in range(2):
        browser.post("/salesorderview/add", data={"customer": str(api.data.customer.id)})
    page = browser.post("/salesorderview/add", data={"customer": str(api.data.customer.id)})
    assert page.status_code == 429 and "Retry-After" in page.headers


def test_writes_over_the_per_address_limit_get_429(rate_limited) -> None:
    api = rate_limited
    url = "/api/v1/sales_order/"
    users = ["specialist", "specialist2", "admin"]
    headers = {name: api_headers(api.app, name) for name in users}
    statuses = [
        api.client.post(url, json=api.body, headers=headers[users[n % 3]]).status_code
        for n in range(6)
    ]
    assert statuses == [201] * 5 + [429]
