"""REST show of an order (``GET /api/v1/sales_order/<id>``), served by one lean statement
(issue 18): the same answer FAB's show gives, the same refusals for every way of signing in,
and reads (show and list) outside a transaction, so no ``BEGIN``/``ROLLBACK`` round trip."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import pytest
from flask import Flask
from flask_appbuilder.api import ModelRestApi
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import event, update

from portal import auth
from portal.api.sales_orders import SalesOrderApi
from portal.extensions import appbuilder, db
from portal.models import SalesOrder, utcnow
from portal.services import api_tokens, orders
from tests.conftest import TEST_PASSWORD, actor, api_headers, login
from tests.factories import SETUP, make_catalog

SHOW = "/api/v1/sales_order/{}"


@pytest.fixture
def order_id(clean_db: Flask) -> int:
    """An order with lines and its optional header fields filled (notes, the team's id)."""
    data = make_catalog()
    order = orders.orders.create_with_lines(
        {
            "customer_id": data.customer.id,
            "requested_date": utcnow().date() + timedelta(days=14),
            "ship_to_id": data.customer.addresses[0].id,
            "notes": "Gate 4, mornings only",
            "external_ref": "TEAM-17",
        },
        [{"product_id": p.id, "quantity": 2} for p in data.products],
        SETUP,
    ).id
    db.session.remove()
    return order


def _api() -> SalesOrderApi:
    return next(view for view in appbuilder.baseviews if isinstance(view, SalesOrderApi))


def _fabs_answer(app: Flask, pk: int) -> tuple[int, dict]:
    """What FAB's own show (its record query and schema) answers for ``pk``."""
    with app.test_request_context(SHOW.format(pk)):
        response = ModelRestApi.get_headless(_api(), pk, rison={})
        status, body = response.status_code, json.loads(response.get_data())
    db.session.remove()
    return status, body


@pytest.mark.parametrize("username", ["specialist", "auditor", "admin"])
def test_the_show_answers_what_fabs_show_answers(order_id, clean_db, username) -> None:
    client = clean_db.test_client()
    response = client.get(SHOW.format(order_id), headers=api_headers(clean_db, username))
    assert response.status_code == 200
    assert _fabs_answer(clean_db, order_id) == (200, response.json)
    result = response.json["result"]
    assert result["notes"] == "Gate 4, mornings only" and result["external_ref"] == "TEAM-17"
    assert result["customer"] == {"name": "Acme Ltd"}


def test_the_show_reads_the_order_and_its_customers_name_only(order_id, clean_db) -> None:
    """One statement, the sign-in's checks included, joining the customer and nothing else
    (FAB's record query also joined the customer's payment terms, twice)."""
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:
        seen.append(" ".join(statement.split()))

    client = clean_db.test_client()
    headers = api_headers(clean_db, "specialist")
    client.get(SHOW.format(order_id), headers=headers)
    event.listen(db.engine, "before_cursor_execute", note)
    try:
        assert client.get(SHOW.format(order_id), headers=headers).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert len(seen) == 1, seen  # the user, their auth version, the stamp and the order
    assert "JOIN customer " in seen[0] and "payment_term " not in seen[0].replace(",", " ")


def test_an_order_that_does_not_exist_is_fabs_404(order_id, clean_db) -> None:
    client = clean_db.test_client()
    missing = client.get(SHOW.format(order_id + 1), headers=api_headers(clean_db, "specialist"))
    assert (missing.status_code, missing.json) == _fabs_answer(clean_db, order_id + 1)
    assert missing.status_code == 404


def test_a_q_argument_goes_fabs_way(order_id, clean_db) -> None:
    """``keys`` and ``columns`` in ``q`` are FAB's: the answer holds what they ask for."""
    client = clean_db.test_client()
    headers = api_headers(clean_db, "specialist")
    keyed = client.get(SHOW.format(order_id) + "?q=(keys:!(show_title))", headers=headers)
    assert set(keyed.json) == {"id", "result", "show_title"}
    narrow = client.get(SHOW.format(order_id) + "?q=(columns:!(number,total))", headers=headers)
    assert set(narrow.json["result"]) == {"number", "total"}


def test_the_show_refuses_as_before(order_id, clean_db) -> None:
    """No credentials, a bad JWT, a revoked JWT, unknown or revoked API tokens: 401; a user
    whose roles do not read orders: 403; an Auditor and a personal API token read it."""
    client = clean_db.test_client()
    url = SHOW.format(order_id)
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer not.a.jwt"}).status_code in (
        401,
        422,
    )
    revoked = api_headers(clean_db, "supervisor")
    assert client.get(url, headers=revoked).status_code == 200
    auth.revoke_sessions_and_tokens(appbuilder.sm.find_user(username="supervisor"))
    assert client.get(url, headers=revoked).status_code == 401

    token = api_tokens.create(actor("auditor"), "reader", None)
    bearer = {"Authorization": f"Bearer {token.plaintext}"}
    by_token = client.get(url, headers=bearer)
    assert by_token.status_code == 200 and by_token.json["result"]["id"] == order_id
    api_tokens.revoke(actor("auditor"), token.record.id)
    refused = client.get(url, headers=bearer)
    assert refused.status_code == 401 and "revoked" in refused.json["message"]
    unknown = client.get(url, headers={"Authorization": "Bearer obt_" + "x" * 43})
    assert unknown.status_code == 401 and unknown.json["message"] == "Unknown API token."

    name = f"nobody_{secrets.token_hex(3)}"
    sm = appbuilder.sm
    sm.add_user(name, "No", "Body", f"{name}@example.test", sm.find_role("Public"), TEST_PASSWORD)
    db.session.commit()
    forbidden = client.get(url, headers=api_headers(clean_db, name))
    assert forbidden.status_code == 403 and forbidden.json == {"message": "Forbidden"}


def _as_fab_answers(client, url: str, headers: dict[str, str]) -> tuple[int, object]:
    """The same request through FAB's ``@protect`` (a ``q`` keeps the one-statement path
    out; a refusal's body does not depend on it)."""
    answer = client.get(url + "?q=(keys:!(result))", headers=headers)
    return answer.status_code, answer.json


def test_a_jwt_the_one_statement_path_does_not_accept_is_refused_as_fab_refuses(
    order_id, clean_db
) -> None:
    """Revoked, of a deactivated user, a refresh token, of a user without the right: each
    answered as FAB answers it."""
    client = clean_db.test_client()
    url = SHOW.format(order_id)
    sm = appbuilder.sm
    cases = {}
    revoked = api_headers(clean_db, "supervisor")
    auth.revoke_sessions_and_tokens(sm.find_user(username="supervisor"))
    cases["revoked"] = revoked
    name = f"leaver_{secrets.token_hex(3)}"
    sm.add_user(name, "Lea", "Ver", f"{name}@example.test", sm.find_role("Auditor"), TEST_PASSWORD)
    db.session.commit()
    cases["deactivated"] = api_headers(clean_db, name)
    assert client.get(url, headers=cases["deactivated"]).status_code == 200
    # deactivated in SQL, as another tool would: no auth version bumped, only ``active`` tells
    db.session.execute(update(User).where(User.username == name).values(active=False))
    db.session.commit()
    refresh = client.post(
        "/api/v1/security/login",
        json={"username": "auditor", "password": TEST_PASSWORD, "provider": "db", "refresh": True},
    ).json["refresh_token"]
    cases["refresh token"] = {"Authorization": f"Bearer {refresh}"}
    nobody = f"nobody_{secrets.token_hex(3)}"
    sm.add_user(
        nobody, "No", "Body", f"{nobody}@example.test", sm.find_role("Public"), TEST_PASSWORD
    )
    db.session.commit()
    cases["no right"] = api_headers(clean_db, nobody)
    for case, headers in cases.items():
        answer = client.get(url, headers=headers)
        assert answer.status_code in (401, 403, 422), (case, answer.status_code, answer.json)
        assert (answer.status_code, answer.json) == _as_fab_answers(client, url, headers), case


def test_a_browser_session_is_checked_before_a_jwt(order_id, clean_db) -> None:
    """FAB checks the user a session cookie signs in before any JWT: a browser signed in as a
    user without the right is refused even with another user's valid JWT."""
    sm = appbuilder.sm
    nobody = f"nobody_{secrets.token_hex(3)}"
    sm.add_user(
        nobody, "No", "Body", f"{nobody}@example.test", sm.find_role("Public"), TEST_PASSWORD
    )
    db.session.commit()
    browser = login(clean_db, nobody)
    headers = api_headers(clean_db, "specialist")
    assert clean_db.test_client().get(SHOW.format(order_id), headers=headers).status_code == 200
    assert browser.get(SHOW.format(order_id), headers=headers).status_code == 403


def test_a_browser_session_reads_the_show(order_id, clean_db) -> None:
    response = login(clean_db, "auditor").get(SHOW.format(order_id))
    assert response.status_code == 200 and response.json["id"] == order_id


def test_reads_run_outside_a_transaction_and_writes_inside_one(order_id, clean_db) -> None:
    """The show's and the list's statements run with the connection in autocommit; a write
    afterwards, on the same pool, runs in a transaction again."""
    modes: list[tuple[str, object]] = []

    def note(conn, cursor, statement, *args) -> None:
        modes.append((statement.split()[0], conn.get_execution_options().get("isolation_level")))

    client = clean_db.test_client()
    headers = api_headers(clean_db, "specialist")
    event.listen(db.engine, "before_cursor_execute", note)
    try:
        assert client.get(SHOW.format(order_id), headers=headers).status_code == 200
        assert client.get("/api/v1/sales_order/", headers=headers).status_code == 200
        reads, modes[:] = list(modes), []
        confirmed = client.post(f"/api/v1/sales_order/{order_id}/confirm", headers=headers)
        assert confirmed.status_code == 200, confirmed.json
        writes = list(modes)
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert reads and all(mode == "AUTOCOMMIT" for _, mode in reads), reads
    assert any(kind in ("UPDATE", "INSERT") for kind, _ in writes)
    assert all(mode != "AUTOCOMMIT" for _, mode in writes), writes
    assert db.session.get(SalesOrder, order_id).status != "draft"  # the write was committed
